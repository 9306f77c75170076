package io.mugs.core;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Optional;

/**
 * Schedules sized to a time budget: how many steps fit {@code budgetMinutes} of training at the measured step
 * time, so that the learning-rate, weight-decay, teacher-momentum and teacher-temperature schedules end exactly at
 * the last step instead of being cut off part-way (what {@code --max-minutes}, a hard stop, does to a schedule
 * sized in epochs).
 *
 * <p>The plan is made once, at the first start of a run, from the time of {@code measuredSteps} steps taken after
 * warm-up steps (compilation, allocation and the data pipeline's start are not counted), and written to the run
 * folder as {@value #FILE}; a resumed run reads it back and keeps it, whatever the machine's speed is then.
 *
 * <pre>{@code
 * BudgetPlan plan = BudgetPlan.of(60, 0.27, 20, 1875);   // 13,333 steps: 7 epochs and 208 steps of an eighth
 * plan.write(runFolder);
 * }</pre>
 *
 * @param budgetMinutes  the training minutes asked for
 * @param stepSeconds    the measured seconds per step (data wait included)
 * @param measuredSteps  how many steps the measurement timed
 * @param stepsPerEpoch  steps in one pass over the data
 * @param totalSteps     the steps the schedules are laid over: {@code floor(budgetMinutes * 60 / stepSeconds)}
 */
public record BudgetPlan(double budgetMinutes, double stepSeconds, int measuredSteps, int stepsPerEpoch,
                         long totalSteps) {

    /** The plan's file name in a run folder. */
    public static final String FILE = "budget-plan.json";

    private static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

    public BudgetPlan {
        if (!(budgetMinutes > 0) || !Double.isFinite(budgetMinutes)) {
            throw new IllegalArgumentException("the budget must be a positive number of minutes, got "
                    + budgetMinutes);
        }
        if (!(stepSeconds > 0) || !Double.isFinite(stepSeconds)) {
            throw new IllegalArgumentException("the measured step time must be positive seconds, got "
                    + stepSeconds);
        }
        if (stepsPerEpoch < 1 || measuredSteps < 1 || totalSteps < 1) {
            throw new IllegalArgumentException("a plan needs steps per epoch, measured steps and total steps >= 1, "
                    + "got " + stepsPerEpoch + ", " + measuredSteps + " and " + totalSteps);
        }
    }

    /** The plan for {@code budgetMinutes} at {@code stepSeconds} per step; at least one step. */
    public static BudgetPlan of(double budgetMinutes, double stepSeconds, int measuredSteps, int stepsPerEpoch) {
        if (!(stepSeconds > 0) || !(budgetMinutes > 0)) {
            throw new IllegalArgumentException("budget and step time must be positive, got " + budgetMinutes
                    + " minutes and " + stepSeconds + " s");
        }
        long steps = Math.max(1, (long) Math.floor(budgetMinutes * 60 / stepSeconds));
        return new BudgetPlan(budgetMinutes, stepSeconds, measuredSteps, stepsPerEpoch, steps);
    }

    /** Epochs the plan touches: whole epochs plus a last partial one, {@code ceil(totalSteps / stepsPerEpoch)}. */
    public int epochs() {
        return Math.toIntExact((totalSteps + stepsPerEpoch - 1) / stepsPerEpoch);
    }

    /** Writes the plan to {@code dir}/{@value #FILE} (atomically). */
    public void write(Path dir) throws IOException {
        Path tmp = dir.resolve(FILE + ".tmp");
        JSON.writeValue(tmp.toFile(), this);
        Files.move(tmp, dir.resolve(FILE), StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
    }

    /** The plan recorded in {@code dir}, if there is one. */
    public static Optional<BudgetPlan> read(Path dir) throws IOException {
        Path file = dir.resolve(FILE);
        if (!Files.exists(file)) {
            return Optional.empty();
        }
        if (Files.size(file) > 64 * 1024) {
            throw new IOException(file + " is " + Files.size(file) + " bytes, not a budget plan; remove it to plan "
                    + "again");
        }
        try {
            return Optional.of(JSON.readValue(file.toFile(), BudgetPlan.class));
        } catch (IOException | IllegalArgumentException e) {
            throw new IOException(file + " cannot be read as a budget plan (" + e.getMessage().lines().findFirst()
                    .orElse("") + "); remove it to plan again", e);
        }
    }
}
