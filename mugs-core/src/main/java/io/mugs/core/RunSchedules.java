package io.mugs.core;

import io.mugs.engine.optim.CosineSchedule;
import io.mugs.losses.TeacherTemperatureSchedule;
import java.util.Optional;

/**
 * Every schedule of a pretraining run (reference §6, §2.3): the learning rate (linear warm-up, then cosine to
 * {@code minLr}), the weight decay and the teacher momentum (cosines to their end values), the teacher temperature
 * (linear warm-up over epochs, then constant) and the frozen last layer. They span {@code epochs x itersPerEpoch}
 * steps, or the steps of a time budget ({@link BudgetPlan}): the recipe's curves are then stretched or squeezed to
 * the plan, every warm-up keeping its fraction of the run. Values are computed per step (constant memory for any
 * length).
 *
 * <pre>{@code
 * RunSchedules s = new RunSchedules(config, 1875);      // 1,875 steps per epoch
 * s.follow(plan);                                        // optional: lay them over a budget plan's steps
 * double lr = s.lr(s.index(iteration));
 * }</pre>
 */
final class RunSchedules {

    private final MugsConfig config;
    private final int itersPerEpoch;
    private final TeacherTemperatureSchedule teacherTemperature;
    private Optional<BudgetPlan> plan = Optional.empty();
    private long totalSteps;
    private CosineSchedule lr;
    private CosineSchedule weightDecay;
    private CosineSchedule momentum;

    RunSchedules(MugsConfig config, int itersPerEpoch) {
        this.config = config;
        this.itersPerEpoch = itersPerEpoch;
        this.teacherTemperature = new TeacherTemperatureSchedule(config.warmupTeacherTemp(), config.teacherTemp(),
                config.warmupTeacherTempEpochs());
        lay((long) config.epochs() * itersPerEpoch);
    }

    private void lay(long steps) {
        this.totalSteps = steps;
        double perEpoch = stepsPerRecipeEpoch();
        this.lr = CosineSchedule.overSteps(config.scaledLr(), config.minLr(), steps,
                Math.min(steps, Math.round(config.warmupEpochs() * perEpoch)), 0);
        this.weightDecay = CosineSchedule.overSteps(config.weightDecay(), config.weightDecayEnd(), steps, 0, 0);
        this.momentum = CosineSchedule.overSteps(config.momentumTeacher(), 1, steps, 0, 0);
    }

    /** Steps per epoch of the recipe's schedules: {@code itersPerEpoch}, or a budget plan's steps / epochs. */
    private double stepsPerRecipeEpoch() {
        return plan.isPresent() ? totalSteps / (double) config.epochs() : itersPerEpoch;
    }

    /**
     * Lays every schedule over {@code plan.totalSteps()} steps instead of {@code config.epochs()} epochs.
     *
     * @throws IllegalArgumentException when the plan was made for another number of steps per epoch
     */
    void follow(BudgetPlan plan) {
        if (plan.stepsPerEpoch() != itersPerEpoch) {
            throw new IllegalArgumentException("the budget plan was made for " + plan.stepsPerEpoch() + " steps per "
                    + "epoch, this data gives " + itersPerEpoch + ": resume on the same data and batch size, or "
                    + "start a new run folder");
        }
        this.plan = Optional.of(plan);
        lay(plan.totalSteps());
    }

    Optional<BudgetPlan> plan() {
        return plan;
    }

    /** Steps of the whole run: {@code epochs x itersPerEpoch}, or the budget plan's. */
    long totalSteps() {
        return totalSteps;
    }

    /** Epochs the run touches: {@code config.epochs()}, or with a budget plan its whole and partial epochs. */
    int epochs() {
        return Math.toIntExact((totalSteps + itersPerEpoch - 1) / itersPerEpoch);
    }

    /** The schedules' index of step {@code iteration}: the step itself, held at the last one past the end. */
    long index(long iteration) {
        return Math.min(iteration, lr.length() - 1);
    }

    /**
     * The recipe epoch whose per-epoch settings (the teacher temperature) step {@code iteration} uses: its epoch,
     * or with a budget plan the epoch of the recipe's {@code epochs} that this step's fraction of the plan falls in.
     */
    int recipeEpoch(long iteration) {
        return plan.isPresent() ? (int) Math.min(config.epochs() - 1, (long) (iteration / stepsPerRecipeEpoch()))
                : (int) (iteration / itersPerEpoch);
    }

    /** Whether the group head's last layer is still frozen at step {@code iteration} ({@code freezeLastLayer}). */
    boolean lastLayerFrozen(long iteration) {
        return iteration < Math.round(config.freezeLastLayer() * stepsPerRecipeEpoch());
    }

    double lr(long it) {
        return lr.at(it);
    }

    double weightDecay(long it) {
        return weightDecay.at(it);
    }

    double momentum(long it) {
        return momentum.at(it);
    }

    /** The teacher temperature of the group targets at recipe epoch {@code epoch}. */
    double teacherTemperature(int epoch) {
        return teacherTemperature.at(epoch);
    }

    double[] lrValues() {
        return lr.toArray();
    }

    double[] weightDecayValues() {
        return weightDecay.toArray();
    }

    double[] momentumValues() {
        return momentum.toArray();
    }
}
