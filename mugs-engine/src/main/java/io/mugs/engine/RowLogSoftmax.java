package io.mugs.engine;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * libnd4j's {@code log_softmax} over the last axis and its backward as Java kernels on the arrays' native memory
 * (kernel names {@code log_softmax} and {@code log_softmax_bp}): the group loss's log-probabilities over the
 * prototypes, [V*B, 1,024] in the {@code fm} step, where libnd4j took about 9 ns an element each way. Per row,
 * <pre>
 *   y  = x - max(x) - log(sum(exp(x - max(x))))
 *   dx = dy - softmax(x) sum(dy)          (softmax recomputed from x, as libnd4j does)
 * </pre>
 * with the sums in {@code double}. FLOAT exponentials run on the Vector API ({@link ExpVectors}, about 1 ulp) when
 * {@link ExactGelu#VECTOR}; otherwise, and for DOUBLE, {@link Math#exp}. Rows are split over the cores
 * ({@link Threads#forRows}). Checked against libnd4j's ops by {@code CpuKernelsTest} (DOUBLE 1e-10, FLOAT 1e-5).
 *
 * <pre>{@code
 * Kernel k = RowLogSoftmax.forward(new INDArray[] {x}, y);
 * }</pre>
 */
final class RowLogSoftmax {

    private RowLogSoftmax() {
    }

    /** Per thread: float rows (x, exponentials, dy), grown as needed. */
    private static final ThreadLocal<float[][]> SCRATCH = ThreadLocal.withInitial(() -> new float[3][0]);

    private static float[] scratch(int slot, int size) {
        float[][] slots = SCRATCH.get();
        if (slots[slot].length < size) {
            slots[slot] = new float[size];
        }
        return slots[slot];
    }

    /** The rows of x over its last axis, and whether their exponentials run in float lanes (then warmed up). */
    private record Rows(int d, int count, boolean vector) {
        static Rows of(INDArray x) {
            int d = (int) x.size(x.rank() - 1);
            boolean vector = x.dataType() == DataType.FLOAT && ExactGelu.VECTOR;
            if (vector) {
                ExpVectors.warmUp();
            }
            return new Rows(d, (int) (x.length() / d), vector);
        }
    }

    /** The forward kernel: {@code args[0]} x, any rank, over its last axis into {@code y} of x's shape. */
    static Kernel forward(INDArray[] args, INDArray y) {
        Rows shape = Rows.of(args[0]);
        int d = shape.d();
        boolean vector = shape.vector();
        return new Kernel().java(args, in -> {
            NativeRows x = NativeRows.of(in[0]);
            NativeRows out = NativeRows.of(y);
            Threads.forRows(shape.count(), 8L * d, (from, to) -> {
                double[] row = new double[d];
                float[] xf = vector ? scratch(0, d) : null;
                float[] ef = vector ? scratch(1, d) : null;
                for (int r = from; r < to; r++) {
                    x.read((long) r * d, row, d);
                    double max = max(row, d);
                    double sum = vector ? expSumFloats(row, max, xf, ef, d) : expSumDoubles(row, max, null, d);
                    double shift = max + Math.log(sum);
                    for (int i = 0; i < d; i++) {
                        row[i] -= shift;
                    }
                    out.write((long) r * d, row, d);
                }
            });
        });
    }

    /** The backward kernel: {@code args} x and dy (x's shape) into {@code dx}. */
    static Kernel backward(INDArray[] args, INDArray dx) {
        Rows shape = Rows.of(args[0]);
        int d = shape.d();
        boolean vector = shape.vector();
        return new Kernel().java(args, in -> {
            NativeRows x = NativeRows.of(in[0]);
            NativeRows dy = NativeRows.of(in[1]);
            NativeRows out = NativeRows.of(dx);
            Threads.forRows(shape.count(), 10L * d, (from, to) -> {
                double[] row = new double[d];
                double[] e = new double[d];
                double[] g = new double[d];
                float[] xf = vector ? scratch(0, d) : null;
                float[] ef = vector ? scratch(1, d) : null;
                for (int r = from; r < to; r++) {
                    x.read((long) r * d, row, d);
                    dy.read((long) r * d, g, d);
                    double max = max(row, d);
                    double sum;
                    if (vector) {
                        sum = expSumFloats(row, max, xf, ef, d);
                        for (int i = 0; i < d; i++) {
                            e[i] = ef[i];
                        }
                    } else {
                        sum = expSumDoubles(row, max, e, d);
                    }
                    double total = RowLayerNorm.sum(g, d);
                    double scale = total / sum;
                    for (int i = 0; i < d; i++) {
                        g[i] -= e[i] * scale;
                    }
                    out.write((long) r * d, g, d);
                }
            });
        });
    }

    private static double max(double[] row, int d) {
        double max = Double.NEGATIVE_INFINITY;
        for (int i = 0; i < d; i++) {
            max = Math.max(max, row[i]);
        }
        return max;
    }

    /** {@code sum(exp(row - max))} with the exponentials in float lanes, left in {@code ef}. */
    private static double expSumFloats(double[] row, double max, float[] xf, float[] ef, int d) {
        for (int i = 0; i < d; i++) {
            xf[i] = (float) (row[i] - max);
        }
        ExpVectors.exp(xf, ef, d);
        double sum = 0;
        for (int i = 0; i < d; i++) {
            sum += ef[i];
        }
        return sum;
    }

    /** {@code sum(exp(row - max))} in double, the exponentials left in {@code e} when it is not null. */
    private static double expSumDoubles(double[] row, double max, double[] e, int d) {
        double sum = 0;
        for (int i = 0; i < d; i++) {
            double v = Math.exp(row[i] - max);
            if (e != null) {
                e[i] = v;
            }
            sum += v;
        }
        return sum;
    }
}
