package io.mugs.engine.optim;

/**
 * The DINO / Mugs {@code cosine_scheduler} (reference §6) computed per iteration instead of stored: the same values
 * as {@link Schedules#cosine} (bit for bit), in constant memory whatever the run's length, so {@code --epochs
 * 100000000} costs no heap. A linear warm-up from {@code warmupStart} to {@code base} over {@code round(warmupEpochs
 * * itersPerEpoch)} iterations (both ends included), then {@code end + (base - end)/2 (1 + cos(pi i / I))} for
 * i = 0 .. I-1 over the remaining I iterations; past the end, the last value.
 *
 * <pre>{@code
 * CosineSchedule lr = new CosineSchedule(1.6e-3, 1e-6, 100, 2502, 10, 0);
 * double now = lr.at(iteration);
 * }</pre>
 */
public final class CosineSchedule {

    private final double base;
    private final double end;
    private final double warmupStart;
    private final long total;
    private final long warm;

    public CosineSchedule(double base, double end, int epochs, int itersPerEpoch, double warmupEpochs,
                          double warmupStart) {
        if (epochs < 1 || itersPerEpoch < 1 || warmupEpochs < 0 || warmupEpochs > epochs) {
            throw new IllegalArgumentException("schedule needs epochs >= 1, iterations >= 1 and 0 <= warm-up <= epochs,"
                    + " got " + epochs + ", " + itersPerEpoch + ", " + warmupEpochs);
        }
        this.base = base;
        this.end = end;
        this.warmupStart = warmupStart;
        this.total = (long) epochs * itersPerEpoch;
        this.warm = Math.round(warmupEpochs * itersPerEpoch);
    }

    private CosineSchedule(double base, double end, long totalSteps, long warmupSteps, double warmupStart) {
        if (totalSteps < 1 || warmupSteps < 0 || warmupSteps > totalSteps) {
            throw new IllegalArgumentException("schedule needs steps >= 1 and 0 <= warm-up steps <= steps, got "
                    + totalSteps + " and " + warmupSteps);
        }
        this.base = base;
        this.end = end;
        this.warmupStart = warmupStart;
        this.total = totalSteps;
        this.warm = warmupSteps;
    }

    /**
     * The schedule laid over a number of steps rather than whole epochs (a time budget ends mid-epoch): the same
     * values as {@link Schedules#cosineSteps} (bit for bit), computed per step.
     *
     * <pre>{@code
     * CosineSchedule lr = CosineSchedule.overSteps(1e-3, 1e-6, 12_345, 188, 0);
     * }</pre>
     */
    public static CosineSchedule overSteps(double base, double end, long totalSteps, long warmupSteps,
                                           double warmupStart) {
        return new CosineSchedule(base, end, totalSteps, warmupSteps, warmupStart);
    }

    /** Iterations the schedule spans: epochs x iterations per epoch. */
    public long length() {
        return total;
    }

    /** The value at iteration {@code i} (the last value for {@code i >= length()}). */
    public double at(long i) {
        long k = Math.max(0, Math.min(i, total - 1));
        if (k < warm) {
            return warm == 1 ? base : warmupStart + (base - warmupStart) * k / (warm - 1);
        }
        long rest = total - warm;
        long j = k - warm;
        return end + 0.5 * (base - end) * (1 + Math.cos(Math.PI * j / rest));
    }

    /** Every value, for inspection and plots; refused above 2^31 - 1 iterations. */
    public double[] toArray() {
        if (total > Integer.MAX_VALUE - 8) {
            throw new IllegalStateException("a schedule of " + total + " iterations does not fit an array");
        }
        double[] s = new double[(int) total];
        for (int i = 0; i < s.length; i++) {
            s[i] = at(i);
        }
        return s;
    }
}
