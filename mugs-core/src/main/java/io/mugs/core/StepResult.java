package io.mugs.core;

import java.util.Map;

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
 */
public record StepResult(long iteration, int epoch, Map<String, Double> losses, double lr, double weightDecay,
                         double momentum, double teacherTemp, double weakFraction, int clipped, PhaseTimes times) {

    /** {@link #times()} by phase name, in milliseconds. */
    public Map<String, Double> millis() {
        return times.asMap();
    }

    public double loss() {
        return losses.get(MugsModel.LOSS);
    }
}
