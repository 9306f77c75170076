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
        long total = (long) epochs * itersPerEpoch;
        if (total > MAX_STEPS) {
            throw new IllegalArgumentException("a schedule of " + epochs + " epochs x " + itersPerEpoch
                    + " iterations is " + total + " steps, more than " + MAX_STEPS + "; lower the epochs");
        }
        return cosineSteps(base, end, (int) total, (int) Math.round(warmupEpochs * itersPerEpoch), warmupStart);
    }

    /** Longest schedule in steps (about 2 GB of doubles would be 2^28; 50 M steps is 400 MB per schedule). */
    public static final int MAX_STEPS = 50_000_000;

    /**
     * The same schedule laid over a number of steps rather than whole epochs (a time budget ends mid-epoch):
     * a linear warm-up over {@code warmupSteps} (both ends included), then the cosine over the rest.
     *
     * <pre>{@code
     * double[] lr = Schedules.cosineSteps(1e-3, 1e-6, 12_345, 188, 0);
     * }</pre>
     */
    public static double[] cosineSteps(double base, double end, int totalSteps, int warmupSteps, double warmupStart) {
        if (totalSteps < 1 || totalSteps > MAX_STEPS || warmupSteps < 0 || warmupSteps > totalSteps) {
            throw new IllegalArgumentException("schedule needs 1 <= steps <= " + MAX_STEPS
                    + " and 0 <= warm-up steps <= steps, got " + totalSteps + " and " + warmupSteps);
        }
        int total = totalSteps;
        int warm = warmupSteps;
        double[] s = new double[total];
        for (int i = 0; i < warm; i++) {
            s[i] = warm == 1 ? base : warmupStart + (base - warmupStart) * i / (warm - 1);
        }
        int rest = total - warm;
        for (int i = 0; i < rest; i++) {
            s[warm + i] = end + 0.5 * (base - end) * (1 + Math.cos(Math.PI * i / rest));
        }
        return s;
    }
}
