package io.mugs.data.aug;

import java.util.SplittableRandom;

/** N(0, 1) draws from a {@link SplittableRandom} (Marsaglia's polar method), deterministic per stream. */
final class Gaussian {

    private Gaussian() {
    }

    static double next(SplittableRandom rng) {
        double u;
        double v;
        double s;
        do {
            u = 2 * rng.nextDouble() - 1;
            v = 2 * rng.nextDouble() - 1;
            s = u * u + v * v;
        } while (s >= 1 || s == 0);
        return u * Math.sqrt(-2 * Math.log(s) / s);
    }
}
