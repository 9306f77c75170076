package io.mugs.engine;

import java.util.Map;
import java.util.TreeMap;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * LayerNorm with an epsilon over the rows of x [N, D], {@code y = (x - μ) r · gain + bias} with
 * {@code r = 1/√(mean((x - μ)²) + eps)} (Ba et al. 2016; PyTorch's {@code nn.LayerNorm}), and its gradient, as
 * Java kernels on the arrays' native memory (CPU backend): one pass over the rows each way where SameDiff's graph
 * takes 9 ops forward and 13 or 14 backward. {@link LayerNormFusion} puts them into a plan; {@code
 * LayerNormKernelTest} checks them against the libnd4j op sequence and against finite differences.
 *
 * <p>The forward also writes each row's mean μ and inverse standard deviation r ([N, 1] each), which is all the
 * backward needs besides x: with {@code x̂ = (x - μ) r} and {@code h = dy · gain},
 * <pre>
 * dx    = r (h - mean(h) - x̂ mean(h x̂))  (+ a gradient of x from elsewhere, added in the same pass)
 * dgain = sum_rows(dy x̂)      dbias = sum_rows(dy)
 * </pre>
 * FLOAT arrays run on the JDK's Vector API ({@link LayerNormVectors}: float lanes, each row's sums added in
 * {@code double}) when {@link ExactGelu#VECTOR}; otherwise, and for DOUBLE, a scalar loop computes in {@code double}
 * and rounds once when it writes a FLOAT array. Rows are split over the cores
 * ({@link Threads#forRows}); the backward keeps the column sums of dgain and dbias per range of rows and adds them
 * in row order, so a result does not depend on which thread finished first.
 *
 * <pre>{@code
 * RowLayerNorm.forward(new INDArray[] {x, gain, bias}, new INDArray[] {y, mean, inv}, 1e-6).run();
 * }</pre>
 */
final class RowLayerNorm {

    private RowLayerNorm() {
    }

    /**
     * The forward kernel: inputs x [N, D], gain and bias of D elements; outputs y [N, D] and the rows' mean and
     * inverse standard deviation, N elements each.
     */
    static Kernel forward(INDArray[] args, INDArray[] outputs, double eps) {
        return forward(args, outputs, eps, ExactGelu.VECTOR);
    }

    /** The forward kernel; {@code vector}: FLOAT arrays through {@link LayerNormVectors}. */
    static Kernel forward(INDArray[] args, INDArray[] outputs, double eps, boolean vector) {
        int n = (int) args[0].size(0);
        int d = (int) args[0].size(1);
        if (vector && args[0].dataType() == DataType.FLOAT) {
            return forwardVectors(args, outputs, (float) eps, n, d);
        }
        return new Kernel().java(args, in -> {
            NativeRows x = NativeRows.of(in[0]);
            double[] gain = new double[d];
            double[] bias = new double[d];
            NativeRows.of(in[1]).read(0, gain, d);
            NativeRows.of(in[2]).read(0, bias, d);
            NativeRows y = NativeRows.of(outputs[0]);
            NativeRows mean = NativeRows.of(outputs[1]);
            NativeRows inv = NativeRows.of(outputs[2]);
            Threads.forRows(n, 6L * d, (from, to) -> {
                double[] row = new double[d];
                double[] mus = new double[to - from];
                double[] invs = new double[to - from];
                for (int r = from; r < to; r++) {
                    x.read((long) r * d, row, d);
                    double mu = sum(row, d) / d;
                    for (int i = 0; i < d; i++) {
                        row[i] -= mu;
                    }
                    double rs = 1 / Math.sqrt(dot(row, row, d) / d + eps);
                    for (int i = 0; i < d; i++) {
                        row[i] = row[i] * rs * gain[i] + bias[i];
                    }
                    y.write((long) r * d, row, d);
                    mus[r - from] = mu;
                    invs[r - from] = rs;
                }
                mean.write(from, mus, to - from);
                inv.write(from, invs, to - from);
            });
        });
    }

    /**
     * The backward kernel: inputs x [N, D], gain, bias (its shape only), the forward's mean and inverse standard
     * deviation, dy [N, D] and optionally a gradient of x from elsewhere [N, D] to add; outputs dx [N, D], dgain
     * and dbias.
     */
    static Kernel backward(INDArray[] args, INDArray[] outputs) {
        return backward(args, outputs, ExactGelu.VECTOR);
    }

    /** The backward kernel; {@code vector}: FLOAT arrays through {@link LayerNormVectors}. */
    static Kernel backward(INDArray[] args, INDArray[] outputs, boolean vector) {
        int n = (int) args[0].size(0);
        int d = (int) args[0].size(1);
        boolean accumulate = args.length > 6;
        if (vector && args[0].dataType() == DataType.FLOAT) {
            return backwardVectors(args, outputs, n, d);
        }
        return new Kernel().java(args, in -> {
            NativeRows x = NativeRows.of(in[0]);
            double[] gain = new double[d];
            NativeRows.of(in[1]).read(0, gain, d);
            NativeRows mean = NativeRows.of(in[3]);
            NativeRows inv = NativeRows.of(in[4]);
            NativeRows dy = NativeRows.of(in[5]);
            NativeRows extra = accumulate ? NativeRows.of(in[6]) : null;
            NativeRows dx = NativeRows.of(outputs[0]);
            Map<Integer, double[]> partial = new TreeMap<>();
            Threads.forRows(n, 14L * d, (from, to) -> {
                double[] xh = new double[d];
                double[] g = new double[d];
                double[] h = new double[d];
                double[] other = accumulate ? new double[d] : null;
                double[] mus = new double[to - from];
                double[] invs = new double[to - from];
                double[] sums = new double[2 * d];
                mean.read(from, mus, to - from);
                inv.read(from, invs, to - from);
                for (int r = from; r < to; r++) {
                    x.read((long) r * d, xh, d);
                    dy.read((long) r * d, g, d);
                    double mu = mus[r - from];
                    double rs = invs[r - from];
                    for (int i = 0; i < d; i++) {
                        xh[i] = (xh[i] - mu) * rs;
                        sums[i] += g[i] * xh[i];
                        sums[d + i] += g[i];
                        h[i] = g[i] * gain[i];
                    }
                    double meanH = sum(h, d) / d;
                    double meanHx = dot(h, xh, d) / d;
                    for (int i = 0; i < d; i++) {
                        g[i] = (h[i] - meanH - xh[i] * meanHx) * rs;
                    }
                    if (accumulate) {
                        extra.read((long) r * d, other, d);
                        for (int i = 0; i < d; i++) {
                            g[i] += other[i];
                        }
                    }
                    dx.write((long) r * d, g, d);
                }
                synchronized (partial) {
                    partial.put(from, sums);
                }
            });
            writeGainAndBiasGradients(partial, d, outputs);
        });
    }

    /**
     * libnd4j's own {@code layer_norm} of x [N, D] (population standard deviation, no epsilon; the fm presets'
     * {@code layerNormEps 0}) with gain and bias, on the FLOAT Vector API kernels: the forward with an epsilon of 0,
     * its rows' statistics written to two [N] arrays of the kernel's own. {@code null} unless FLOAT with the Vector
     * API and a bias.
     */
    static Kernel nativeForm(INDArray[] args, INDArray y) {
        if (!ExactGelu.VECTOR || args.length != 3 || args[0].dataType() != DataType.FLOAT) {
            return null;
        }
        long n = args[0].size(0);
        INDArray[] stats = {Nd4j.createUninitializedDetached(DataType.FLOAT, n), Nd4j.createUninitializedDetached(
                DataType.FLOAT, n)};
        return forward(args, new INDArray[] {y, stats[0], stats[1]}, 0, true);
    }

    /**
     * The gradient of {@link #nativeForm}, libnd4j's {@code layer_norm_bp} (inputs x, gain, bias, dy; outputs dx,
     * dgain, dbias): the rows' statistics recomputed from x by the forward kernel, which then writes no y (libnd4j
     * recomputes them too), then the Vector API backward. {@code null} where {@link #nativeForm} is.
     */
    static Kernel nativeFormBackward(INDArray[] args, INDArray[] outputs) {
        if (!ExactGelu.VECTOR || args.length != 4 || outputs.length != 3 || args[0].dataType() != DataType.FLOAT) {
            return null;
        }
        INDArray x = args[0];
        long n = x.size(0);
        INDArray mean = Nd4j.createUninitializedDetached(DataType.FLOAT, n);
        INDArray inv = Nd4j.createUninitializedDetached(DataType.FLOAT, n);
        Kernel stats = forward(new INDArray[] {x, args[1], args[2]}, new INDArray[] {null, mean, inv}, 0, true);
        return stats.then(backward(new INDArray[] {x, args[1], args[2], mean, inv, args[3]}, outputs, true));
    }

    /** Rows per block read into float arrays by the Vector API kernels. */
    private static int blockRows(int d) {
        return Math.max(1, 8192 / d);
    }

    /** Per thread: float buffers by slot, grown as needed, so that a kernel run allocates (almost) nothing. */
    private static final ThreadLocal<float[][]> SCRATCH = ThreadLocal.withInitial(() -> new float[10][0]);

    /** The calling thread's buffer {@code slot}, at least {@code size} floats (contents undefined). */
    private static float[] scratch(int slot, int size) {
        float[][] slots = SCRATCH.get();
        if (slots[slot].length < size) {
            slots[slot] = new float[size];
        }
        return slots[slot];
    }

    private static Kernel forwardVectors(INDArray[] args, INDArray[] outputs, float eps, int n, int d) {
        LayerNormVectors.warmUp();
        int block = blockRows(d);
        return new Kernel().java(args, in -> {
            NativeRows x = NativeRows.of(in[0]);
            float[] gain = scratch(0, d);
            float[] bias = scratch(1, d);
            NativeRows.of(in[1]).read(0, gain, d);
            NativeRows.of(in[2]).read(0, bias, d);
            NativeRows y = outputs[0] == null ? null : NativeRows.of(outputs[0]);
            NativeRows mean = NativeRows.of(outputs[1]);
            NativeRows inv = NativeRows.of(outputs[2]);
            Threads.forRows(n, 6L * d, (from, to) -> {
                float[] xb = scratch(2, block * d);
                float[] yb = scratch(3, block * d);
                float[] mb = scratch(4, block);
                float[] ib = scratch(5, block);
                float[] lanes = scratch(6, LayerNormVectors.lanes());
                for (int r = from; r < to; r += block) {
                    int rows = Math.min(block, to - r);
                    x.read((long) r * d, xb, rows * d);
                    LayerNormVectors.forward(xb, gain, bias, eps, rows, d, yb, mb, ib, lanes);
                    if (y != null) {
                        y.write((long) r * d, yb, rows * d);
                    }
                    mean.write(r, mb, rows);
                    inv.write(r, ib, rows);
                }
            });
        });
    }

    private static Kernel backwardVectors(INDArray[] args, INDArray[] outputs, int n, int d) {
        LayerNormVectors.warmUp();
        int block = blockRows(d);
        boolean accumulate = args.length > 6;
        return new Kernel().java(args, in -> {
            NativeRows x = NativeRows.of(in[0]);
            float[] gain = scratch(0, d);
            NativeRows.of(in[1]).read(0, gain, d);
            NativeRows mean = NativeRows.of(in[3]);
            NativeRows inv = NativeRows.of(in[4]);
            NativeRows dy = NativeRows.of(in[5]);
            NativeRows extra = accumulate ? NativeRows.of(in[6]) : null;
            NativeRows dx = NativeRows.of(outputs[0]);
            Map<Integer, double[]> partial = new TreeMap<>();
            Threads.forRows(n, 14L * d, (from, to) -> {
                float[] xb = scratch(2, block * d);
                float[] gb = scratch(3, block * d);
                float[] eb = accumulate ? scratch(7, block * d) : null;
                float[] ob = scratch(8, block * d);
                float[] mb = scratch(4, block);
                float[] ib = scratch(5, block);
                float[] blockSums = scratch(9, 2 * d);
                float[] lanes = scratch(6, LayerNormVectors.lanes());
                double[] sums = new double[2 * d];
                for (int r = from; r < to; r += block) {
                    int rows = Math.min(block, to - r);
                    x.read((long) r * d, xb, rows * d);
                    dy.read((long) r * d, gb, rows * d);
                    if (accumulate) {
                        extra.read((long) r * d, eb, rows * d);
                    }
                    mean.read(r, mb, rows);
                    inv.read(r, ib, rows);
                    java.util.Arrays.fill(blockSums, 0);
                    LayerNormVectors.backward(xb, gb, eb, gain, mb, ib, rows, d, ob, blockSums, lanes);
                    dx.write((long) r * d, ob, rows * d);
                    for (int i = 0; i < 2 * d; i++) {
                        sums[i] += blockSums[i];
                    }
                }
                synchronized (partial) {
                    partial.put(from, sums);
                }
            });
            writeGainAndBiasGradients(partial, d, outputs);
        });
    }

    /**
     * Adds the per-range sums ({@code [dgain | dbias]}, 2·d each) in row order, so the result does not depend on which
     * thread finished first, and writes them to outputs 1 and 2.
     */
    private static void writeGainAndBiasGradients(Map<Integer, double[]> partial, int d, INDArray[] outputs) {
        double[] dGain = new double[d];
        double[] dBias = new double[d];
        for (double[] sums : partial.values()) {
            for (int i = 0; i < d; i++) {
                dGain[i] += sums[i];
                dBias[i] += sums[d + i];
            }
        }
        NativeRows.of(outputs[1]).write(0, dGain, d);
        NativeRows.of(outputs[2]).write(0, dBias, d);
    }

    /** {@code a[0] + ... + a[n-1]} in four interleaved partial sums (no chain of dependent additions). */
    static double sum(double[] a, int n) {
        double s0 = 0;
        double s1 = 0;
        double s2 = 0;
        double s3 = 0;
        int i = 0;
        for (; i + 3 < n; i += 4) {
            s0 += a[i];
            s1 += a[i + 1];
            s2 += a[i + 2];
            s3 += a[i + 3];
        }
        for (; i < n; i++) {
            s0 += a[i];
        }
        return (s0 + s1) + (s2 + s3);
    }

    /** {@code a[0] b[0] + ... + a[n-1] b[n-1]} in four interleaved partial sums. */
    static double dot(double[] a, double[] b, int n) {
        double s0 = 0;
        double s1 = 0;
        double s2 = 0;
        double s3 = 0;
        int i = 0;
        for (; i + 3 < n; i += 4) {
            s0 += a[i] * b[i];
            s1 += a[i + 1] * b[i + 1];
            s2 += a[i + 2] * b[i + 2];
            s3 += a[i + 3] * b[i + 3];
        }
        for (; i < n; i++) {
            s0 += a[i] * b[i];
        }
        return (s0 + s1) + (s2 + s3);
    }
}
