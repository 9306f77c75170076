package io.mugs.core;

import io.mugs.core.health.TrainingHealth;
import java.util.Map;
import java.util.Optional;

/**
 * What one training step did.
 *
 * @param iteration    global step index (0-based) of this step
 * @param epoch        epoch of this step
 * @param losses       {@code loss} and each enabled component
 * @param lr           learning rate used (after batch scaling)
 * @param weightDecay  weight decay used
 * @param momentum     teacher EMA momentum used
 * @param teacherTemp  group-loss teacher temperature used
 * @param weakFraction fraction of images with weak student globals
 * @param clipped      parameters whose gradient was clipped
 * @param times        wall time per phase: teacher, student, collectives, update, ema, state
 * @param health       the label-free training health of this step, on every {@link MugsTrainer#healthEvery()}-th
 *                     step (empty on the others)
 */
public record StepResult(long iteration, int epoch, Map<String, Double> losses, double lr, double weightDecay,
                         double momentum, double teacherTemp, double weakFraction, int clipped, PhaseTimes times,
                         Optional<TrainingHealth> health) {

    /** A result without a health read-out. */
    public StepResult(long iteration, int epoch, Map<String, Double> losses, double lr, double weightDecay,
                      double momentum, double teacherTemp, double weakFraction, int clipped, PhaseTimes times) {
        this(iteration, epoch, losses, lr, weightDecay, momentum, teacherTemp, weakFraction, clipped, times,
                Optional.empty());
    }

    /** {@link #times()} by phase name, in milliseconds. */
    public Map<String, Double> millis() {
        return times.asMap();
    }

    public double loss() {
        return losses.get(MugsModel.LOSS);
    }
}
