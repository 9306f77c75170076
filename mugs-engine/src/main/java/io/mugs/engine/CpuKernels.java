package io.mugs.engine;

import java.util.Set;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.ops.DynamicCustomOp;

/**
 * Java implementations of graph ops for the CPU backend, working on the arrays' native memory ({@link NativeRows})
 * in one pass over rows where libnd4j 1.0.0-M2.1 takes several passes or pays a large cost per call, and split over
 * the cores by {@link Threads#forRows}. Each computes in {@code double} and rounds once when it writes a FLOAT
 * array; each is checked against its libnd4j op by {@code CpuKernelsTest} (DOUBLE 1e-10, FLOAT 1e-5).
 * <ul>
 *   <li>{@code softmax} / {@code softmax_bp} over the last axis, any rank ({@code softmax_bp} on [192, 3, 9, 9]:
 *       about 8 ms in libnd4j);</li>
 *   <li>{@code layer_norm} / {@code layer_norm_bp} of [N, D] over D, libnd4j's form (no epsilon, population
 *       standard deviation), each one pass over the rows;</li>
 *   <li>{@code log_softmax} / {@code log_softmax_bp} over the last axis ({@link RowLogSoftmax});</li>
 *   <li>batched {@code matmul} / {@code matmul_bp} (rank 3 and 4) of short token counts, where libnd4j runs one
 *       small product after another (attention scores and their values, [B, H, T, T] for short T, see
 *       {@link #MAX_PRODUCT_WORK}).</li>
 * </ul>
 * Everything else, and every case not covered (other axes, strided arrays, other data types), is left to
 * {@link Rewrites} or the native op. {@code -Dmugs.engine.javaKernels} chooses which run ({@link Kernels}: by
 * default only the batched products, the only ones measured faster than their fallback).
 */
final class CpuKernels {

    /** Largest size (rows, columns, inner) of each product the batched matmul kernels take. */
    static final int MAX_TOKENS = 64;

    /**
     * Largest multiply-adds per product the batched matmul kernels take: at 5 x 32 x 5 (800) the Java kernel ran the
     * attention's forward and backward 3x faster than libnd4j, at 17 x 32 x 17 (9,248) at par (KernelBenchmark).
     */
    static final int MAX_PRODUCT_WORK = 4096;

    private CpuKernels() {
    }

    /** The Java kernel for {@code op}, or {@code null} when none covers this case or it is switched off. */
    static Kernel forOp(DynamicCustomOp op, INDArray[] args, INDArray[] outputs, Set<String> enabled) {
        String name = op.opName();
        if (!enabled.contains(name)) {
            return null;
        }
        for (INDArray a : args) {
            if (!NativeRows.supports(a)) {
                return null;
            }
        }
        for (INDArray a : outputs) {
            if (!NativeRows.supports(a) || a.dataType() != args[0].dataType()) {
                return null;
            }
        }
        return switch (name) {
            case "softmax" -> lastAxis(op, args[0]) && args.length == 1 ? softmax(args, outputs[0]) : null;
            case "softmax_bp" -> lastAxis(op, args[0]) && args.length == 2 ? softmaxBackward(args, outputs[0]) : null;
            case "layer_norm" -> layerNormCase(op, args) ? orElse(RowLayerNorm.nativeForm(args, outputs[0]),
                    () -> layerNorm(args, outputs[0])) : null;
            case "layer_norm_bp" -> layerNormCase(op, args) ? orElse(RowLayerNorm.nativeFormBackward(args, outputs),
                    () -> layerNormBackward(args, outputs)) : null;
            case "log_softmax" -> lastAxisOrNone(op, args[0]) && args.length == 1
                    ? RowLogSoftmax.forward(args, outputs[0]) : null;
            case "log_softmax_bp" -> lastAxisOrNone(op, args[0]) && args.length == 2
                    ? RowLogSoftmax.backward(args, outputs[0]) : null;
            case "matmul" -> BatchedMatmul.forward(op, args, outputs[0]);
            case "matmul_bp" -> BatchedMatmul.backward(op, args, outputs);
            default -> null;
        };
    }

    private static Kernel orElse(Kernel k, java.util.function.Supplier<Kernel> fallback) {
        return k != null ? k : fallback.get();
    }

    /** The op works over the last axis of {@code x}: its only integer argument says so, or it has none. */
    private static boolean lastAxisOrNone(DynamicCustomOp op, INDArray x) {
        return op.iArgs().length == 0 && x.rank() >= 1 || lastAxis(op, x);
    }

    /** The op reduces over the last axis of {@code x} (its only integer argument). */
    private static boolean lastAxis(DynamicCustomOp op, INDArray x) {
        long[] dims = op.iArgs();
        return x.rank() >= 1 && dims.length == 1 && (dims[0] == -1 || dims[0] == x.rank() - 1);
    }

    private static boolean layerNormCase(DynamicCustomOp op, INDArray[] args) {
        long[] dims = op.iArgs();
        return args[0].rank() == 2 && dims.length == 1 && (dims[0] == 1 || dims[0] == -1)
                && (op.bArgs().length == 0 || !op.bArgs()[0]) && args[1].length() == args[0].size(1);
    }

    /** {@code y = exp(x - max) / sum exp(x - max)} per row of the last axis. */
    private static Kernel softmax(INDArray[] args, INDArray y) {
        int d = (int) args[0].size(args[0].rank() - 1);
        int rows = (int) (args[0].length() / d);
        boolean single = args[0].dataType() == org.nd4j.linalg.api.buffer.DataType.FLOAT;
        return new Kernel().java(args, in -> {
            NativeRows x = NativeRows.of(in[0]);
            NativeRows out = NativeRows.of(y);
            Threads.forRows(rows, 8L * d, (from, to) -> {
                double[] row = new double[d];
                for (int r = from; r < to; r++) {
                    x.read((long) r * d, row, d);
                    softmaxRow(row, d, single);
                    out.write((long) r * d, row, d);
                }
            });
        });
    }

    /** Softmax of {@code row[0..d)} in place; {@code single}: exponentials to float precision only. */
    private static void softmaxRow(double[] row, int d, boolean single) {
        double max = Double.NEGATIVE_INFINITY;
        for (int i = 0; i < d; i++) {
            max = Math.max(max, row[i]);
        }
        double sum = 0;
        if (single) {
            for (int i = 0; i < d; i++) {
                row[i] = expNonPositive(row[i] - max);
                sum += row[i];
            }
        } else {
            for (int i = 0; i < d; i++) {
                row[i] = Math.exp(row[i] - max);
                sum += row[i];
            }
        }
        double inv = 1 / sum;
        for (int i = 0; i < d; i++) {
            row[i] *= inv;
        }
    }

    /**
     * {@code exp(x)} for {@code x <= 0} to a relative error below 1e-8 (enough for FLOAT results): {@code x = k ln 2
     * + r} with {@code |r| <= ln 2 / 2}, a degree-7 Taylor polynomial of {@code exp(r)}, and {@code 2^k} put into
     * the exponent bits. Several times faster than {@link Math#exp} in a loop; 0 below -700.
     */
    static double expNonPositive(double x) {
        if (x < -700) {
            return 0;
        }
        double k = Math.rint(x * 1.4426950408889634);
        double r = x - k * 0.6931471803691238 - k * 1.9082149292705877e-10;
        double p = 1 + r * (1 + r * (0.5 + r * (1.0 / 6 + r * (1.0 / 24 + r * (1.0 / 120 + r * (1.0 / 720
                + r * (1.0 / 5040)))))));
        return p * Double.longBitsToDouble(((long) k + 1023) << 52);
    }

    /** With y = softmax(x): {@code dx = y (dy - sum(dy y))} per row (y recomputed from x, as libnd4j does). */
    private static Kernel softmaxBackward(INDArray[] args, INDArray dx) {
        int d = (int) args[0].size(args[0].rank() - 1);
        int rows = (int) (args[0].length() / d);
        boolean single = args[0].dataType() == org.nd4j.linalg.api.buffer.DataType.FLOAT;
        return new Kernel().java(args, in -> {
            NativeRows x = NativeRows.of(in[0]);
            NativeRows dy = NativeRows.of(in[1]);
            NativeRows out = NativeRows.of(dx);
            Threads.forRows(rows, 10L * d, (from, to) -> {
                double[] y = new double[d];
                double[] g = new double[d];
                for (int r = from; r < to; r++) {
                    x.read((long) r * d, y, d);
                    dy.read((long) r * d, g, d);
                    softmaxRow(y, d, single);
                    double dot = 0;
                    for (int i = 0; i < d; i++) {
                        dot += g[i] * y[i];
                    }
                    for (int i = 0; i < d; i++) {
                        g[i] = y[i] * (g[i] - dot);
                    }
                    out.write((long) r * d, g, d);
                }
            });
        });
    }

    /** libnd4j's layer_norm of x [N, D]: {@code (x - mean) / std * gain (+ bias)}, population std, no epsilon. */
    private static Kernel layerNorm(INDArray[] args, INDArray y) {
        int n = (int) args[0].size(0);
        int d = (int) args[0].size(1);
        boolean bias = args.length > 2;
        return new Kernel().java(args, in -> {
            NativeRows x = NativeRows.of(in[0]);
            NativeRows out = NativeRows.of(y);
            double[] gain = new double[d];
            double[] shift = new double[d];
            NativeRows.of(in[1]).read(0, gain, d);
            if (bias) {
                NativeRows.of(in[2]).read(0, shift, d);
            }
            Threads.forRows(n, 6L * d, (from, to) -> {
                double[] row = new double[d];
                for (int r = from; r < to; r++) {
                    x.read((long) r * d, row, d);
                    double inv = 1 / centre(row, d);
                    for (int i = 0; i < d; i++) {
                        row[i] = row[i] * inv * gain[i] + shift[i];
                    }
                    out.write((long) r * d, row, d);
                }
            });
        });
    }

    /** Subtracts the row's mean in place and returns its population standard deviation. */
    private static double centre(double[] row, int d) {
        double mean = 0;
        for (int i = 0; i < d; i++) {
            mean += row[i];
        }
        mean /= d;
        double var = 0;
        for (int i = 0; i < d; i++) {
            row[i] -= mean;
            var += row[i] * row[i];
        }
        return Math.sqrt(var / d);
    }

    /**
     * The gradient of {@link #layerNorm}: with x̂ = (x - mean) / std and h = dy * gain,
     * {@code dx = (h - mean(h) - x̂ mean(h x̂)) / std}, {@code dgain = sum_rows(dy x̂)},
     * {@code dbias = sum_rows(dy)};
     * one pass over the rows, the column sums kept per thread and added at the end.
     */
    private static Kernel layerNormBackward(INDArray[] args, INDArray[] outputs) {
        int n = (int) args[0].size(0);
        int d = (int) args[0].size(1);
        boolean bias = outputs.length > 2;
        return new Kernel().java(args, in -> {
            NativeRows x = NativeRows.of(in[0]);
            NativeRows dy = NativeRows.of(in[in.length - 1]);
            NativeRows dx = NativeRows.of(outputs[0]);
            double[] gain = new double[d];
            NativeRows.of(in[1]).read(0, gain, d);
            double[] dGain = new double[d];
            double[] dBias = new double[d];
            Threads.forRows(n, 12L * d, (from, to) -> {
                double[] xh = new double[d];
                double[] g = new double[d];
                double[] sumGain = new double[d];
                double[] sumBias = new double[d];
                for (int r = from; r < to; r++) {
                    x.read((long) r * d, xh, d);
                    dy.read((long) r * d, g, d);
                    double inv = 1 / centre(xh, d);
                    double meanH = 0;
                    double meanHx = 0;
                    for (int i = 0; i < d; i++) {
                        xh[i] *= inv;
                        sumGain[i] += g[i] * xh[i];
                        sumBias[i] += g[i];
                        double h = g[i] * gain[i];
                        meanH += h;
                        meanHx += h * xh[i];
                    }
                    meanH /= d;
                    meanHx /= d;
                    for (int i = 0; i < d; i++) {
                        g[i] = (g[i] * gain[i] - meanH - xh[i] * meanHx) * inv;
                    }
                    dx.write((long) r * d, g, d);
                }
                synchronized (dGain) {
                    for (int i = 0; i < d; i++) {
                        dGain[i] += sumGain[i];
                        dBias[i] += sumBias[i];
                    }
                }
            });
            NativeRows.of(outputs[1]).write(0, dGain, d);
            if (bias) {
                NativeRows.of(outputs[2]).write(0, dBias, d);
            }
        });
    }
}
