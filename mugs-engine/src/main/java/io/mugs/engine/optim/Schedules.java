package io.mugs.engine.optim;

/**
 * DINO / Mugs {@code cosine_scheduler} (reference §6): per-iteration values, a linear warm-up from
 * {@code warmupStart} to {@code base} over {@code round(warmupEpochs * itersPerEpoch)} iterations (both ends
 * included; fractional warm-up epochs are allowed),
 * then {@code end + (base - end)/2 (1 + cos(pi i / I))} for i = 0 .. I-1 over the remaining I iterations.
 * Used for the learning rate, the weight decay and the teacher momentum.
 *
 * <pre>{@code
 * double[] lr = Schedules.cosine(1.6e-3, 1e-6, 100, 2502, 10, 0);   // lr[it]
 * }</pre>
 */
public final class Schedules {

    private Schedules() {
    }

    public static double[] cosine(double base, double end, int epochs, int itersPerEpoch, double warmupEpochs,
                                  double warmupStart) {
        if (epochs < 1 || itersPerEpoch < 1 || warmupEpochs < 0 || warmupEpochs > epochs) {
            throw new IllegalArgumentException("schedule needs epochs >= 1, iterations >= 1 and 0 <= warm-up <= epochs,"
                    + " got " + epochs + ", " + itersPerEpoch + ", " + warmupEpochs);
        }
        return new CosineSchedule(base, end, epochs, itersPerEpoch, warmupEpochs, warmupStart).toArray();
    }
}
