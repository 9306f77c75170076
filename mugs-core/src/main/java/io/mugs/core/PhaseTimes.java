package io.mugs.core;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.OptionalDouble;

/**
 * Wall-clock milliseconds of the phases of one training step, in the order they run (measured on the
 * calling thread; a phase spread over replicas lasts until its slowest replica is done).
 *
 * <pre>{@code
 * PhaseTimes t = stepResult.times();
 * double forward = t.teacher() + t.student();
 * }</pre>
 *
 * @param teacher     teacher forward on the teacher views (targets)
 * @param student     student forward and backward (losses and gradients)
 * @param collectives gradients and losses averaged, outputs gathered; empty with one replica in all
 * @param update      clipping, AdamW and the finiteness check of the updated weights
 * @param ema         the teacher's exponential moving average
 * @param state       queues, memories and the group centre
 */
public record PhaseTimes(double teacher, double student, OptionalDouble collectives, double update, double ema,
                         double state) {

    /** The phases by name ({@code teacher, student, [collectives,] update, ema, state}): the {@code step_ms} of metrics.jsonl. */
    public Map<String, Double> asMap() {
        Map<String, Double> m = new LinkedHashMap<>();
        m.put("teacher", teacher);
        m.put("student", student);
        collectives.ifPresent(c -> m.put("collectives", c));
        m.put("update", update);
        m.put("ema", ema);
        m.put("state", state);
        return m;
    }

    /** Milliseconds of the whole step. */
    public double total() {
        return asMap().values().stream().mapToDouble(Double::doubleValue).sum();
    }
}
