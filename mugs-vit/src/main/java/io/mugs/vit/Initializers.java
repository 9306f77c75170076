package io.mugs.vit;

import java.util.SplittableRandom;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * Deterministic weight initialisers matching the reference (timm / PyTorch), drawn in Java from a seed so
 * that the same seed gives the same weights on every backend.
 */
public final class Initializers {

    private Initializers() {
    }

    /**
     * timm's {@code trunc_normal_(t, std)}: N(0, std) truncated to the absolute interval [-2, 2] (timm's
     * defaults {@code a = -2, b = 2}; at std 0.02 the truncation practically never applies).
     */
    public static INDArray truncatedNormal(SplittableRandom rng, DataType type, double std, long... shape) {
        double[] values = new double[Math.toIntExact(length(shape))];
        for (int i = 0; i < values.length; i++) {
            double v;
            do {
                v = gaussian(rng) * std;
            } while (v < -2 || v > 2);
            values[i] = v;
        }
        return Nd4j.create(values, shape, type);
    }

    /** U(-bound, bound), e.g. PyTorch's default Linear/Conv init with {@code bound = 1/sqrt(fanIn)}. */
    public static INDArray uniform(SplittableRandom rng, DataType type, double bound, long... shape) {
        double[] values = new double[Math.toIntExact(length(shape))];
        for (int i = 0; i < values.length; i++) {
            values[i] = (2 * rng.nextDouble() - 1) * bound;
        }
        return Nd4j.create(values, shape, type);
    }

    /** Standard normal draws, e.g. the random initial content of queues and memories. */
    public static INDArray normal(SplittableRandom rng, DataType type, long... shape) {
        double[] values = new double[Math.toIntExact(length(shape))];
        for (int i = 0; i < values.length; i++) {
            values[i] = gaussian(rng);
        }
        return Nd4j.create(values, shape, type);
    }

    /** One N(0, 1) draw ({@code RandomGenerator.nextGaussian}, deterministic for a given stream). */
    public static double gaussian(SplittableRandom rng) {
        return rng.nextGaussian();
    }

    private static long length(long[] shape) {
        long n = 1;
        for (long s : shape) {
            n *= s;
        }
        return n;
    }
}
