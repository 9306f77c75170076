package io.mugs.vit;

import java.nio.DoubleBuffer;
import java.nio.FloatBuffer;
import java.util.SplittableRandom;
import java.util.function.DoubleSupplier;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * Deterministic weight initialisers matching the reference (timm / PyTorch), drawn in Java from a seed so
 * that the same seed gives the same weights on every backend. The draws go into the array's memory in chunks of
 * {@value #CHUNK} values: a whole-array {@code double[]} (134 MB for ViT-S's 65,536 prototypes) went straight into
 * the Java heap's old generation, whose pages then stayed in the process's resident memory (docs/performance.md,
 * "Initialisation in chunks").
 */
public final class Initializers {

    /** Values drawn per chunk. */
    static final int CHUNK = 1 << 16;

    private Initializers() {
    }

    /**
     * timm's {@code trunc_normal_(t, std)}: N(0, std) truncated to the absolute interval [-2, 2] (timm's
     * defaults {@code a = -2, b = 2}; at std 0.02 the truncation practically never applies).
     */
    public static INDArray truncatedNormal(SplittableRandom rng, DataType type, double std, long... shape) {
        return fill(type, shape, () -> {
            double v;
            do {
                v = gaussian(rng) * std;
            } while (v < -2 || v > 2);
            return v;
        });
    }

    /** U(-bound, bound), e.g. PyTorch's default Linear/Conv init with {@code bound = 1/sqrt(fanIn)}. */
    public static INDArray uniform(SplittableRandom rng, DataType type, double bound, long... shape) {
        return fill(type, shape, () -> (2 * rng.nextDouble() - 1) * bound);
    }

    /** Standard normal draws, e.g. the random initial content of queues and memories. */
    public static INDArray normal(SplittableRandom rng, DataType type, long... shape) {
        return fill(type, shape, () -> gaussian(rng));
    }

    /** One N(0, 1) draw ({@code RandomGenerator.nextGaussian}, deterministic for a given stream). */
    public static double gaussian(SplittableRandom rng) {
        return rng.nextGaussian();
    }

    /**
     * A new c-order array of {@code shape} holding {@code draw}'s values in order, each rounded once to {@code type}
     * (as {@code Nd4j.create(double[], shape, type)} rounds them).
     */
    static INDArray fill(DataType type, long[] shape, DoubleSupplier draw) {
        long n = length(shape);
        if (type != DataType.FLOAT && type != DataType.DOUBLE) {
            double[] values = new double[Math.toIntExact(n)];
            for (int i = 0; i < values.length; i++) {
                values[i] = draw.getAsDouble();
            }
            return Nd4j.create(values, shape, type);
        }
        INDArray out = Nd4j.createUninitialized(type, shape);
        int chunk = (int) Math.min(n, CHUNK);
        if (type == DataType.FLOAT) {
            FloatBuffer to = out.data().asNioFloat();
            float[] values = new float[chunk];
            for (long at = 0; at < n; at += chunk) {
                int len = (int) Math.min(chunk, n - at);
                for (int i = 0; i < len; i++) {
                    values[i] = (float) draw.getAsDouble();
                }
                to.put(Math.toIntExact(at), values, 0, len);
            }
        } else {
            DoubleBuffer to = out.data().asNioDouble();
            double[] values = new double[chunk];
            for (long at = 0; at < n; at += chunk) {
                int len = (int) Math.min(chunk, n - at);
                for (int i = 0; i < len; i++) {
                    values[i] = draw.getAsDouble();
                }
                to.put(Math.toIntExact(at), values, 0, len);
            }
        }
        return out;
    }

    private static long length(long[] shape) {
        long n = 1;
        for (long s : shape) {
            n *= s;
        }
        return n;
    }
}
