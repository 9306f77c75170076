package io.mugs.engine;

import java.util.Arrays;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.ops.DynamicCustomOp;

/**
 * Batched products of small matrices in Java for the CPU backend: {@code C[b] = alpha op(A[b]) op(B[b])} over
 * leading batch axes (rank 3 or 4, no broadcasting), {@code op} an optional transpose of the last two axes, and the
 * backward {@code dA[b], dB[b]}. libnd4j 1.0.0-M2.1 runs such a batch as one small product after another, at a
 * cost per product far above its arithmetic: attention of the {@code fashionMnistTiny} preset
 * ([128, 3, 5, 32] x [128, 3, 5, 32]^T, and its backward) took about 5 ms per call. Only products whose three sizes
 * are at most {@link CpuKernels#MAX_TOKENS} and whose work is at most {@link CpuKernels#MAX_PRODUCT_WORK} are
 * taken; larger ones stay with the native op.
 */
final class BatchedMatmul {

    private final int batch;
    private final int ra;
    private final int ca;
    private final int rb;
    private final int cb;
    private final boolean ta;
    private final boolean tb;
    private final int m;
    private final int k;
    private final int n;

    private BatchedMatmul(INDArray a, INDArray b, boolean ta, boolean tb) {
        int rank = a.rank();
        this.batch = (int) (a.length() / (a.size(rank - 2) * a.size(rank - 1)));
        this.ra = (int) a.size(rank - 2);
        this.ca = (int) a.size(rank - 1);
        this.rb = (int) b.size(rank - 2);
        this.cb = (int) b.size(rank - 1);
        this.ta = ta;
        this.tb = tb;
        this.m = ta ? ca : ra;
        this.k = ta ? ra : ca;
        this.n = tb ? rb : cb;
    }

    /** A kernel for a {@code matmul} op, or {@code null} when the case is not a small batched product. */
    static Kernel forward(DynamicCustomOp op, INDArray[] args, INDArray out) {
        long[] i = op.iArgs();
        double[] t = op.tArgs();
        double alpha = t.length > 0 ? t[0] : 1.0;
        if (args.length != 2 || (i.length > 2 && i[2] != 0) || (t.length > 1 && t[1] != 0)) {
            return null;
        }
        BatchedMatmul p = of(args[0], args[1], i);
        if (p == null || !Arrays.equals(out.shape(), p.outShape(args[0]))) {
            return null;
        }
        return new Kernel().java(args, in -> p.multiply(NativeRows.of(in[0]), NativeRows.of(in[1]),
                NativeRows.of(out), alpha));
    }

    /** A kernel for a {@code matmul_bp} op (inputs A, B, dC; outputs dA, dB), or {@code null}. */
    static Kernel backward(DynamicCustomOp op, INDArray[] args, INDArray[] outputs) {
        long[] i = op.iArgs();
        if (args.length != 3 || outputs.length != 2 || (i.length > 2 && i[2] != 0) || op.tArgs().length > 0) {
            return null;
        }
        BatchedMatmul p = of(args[0], args[1], i);
        if (p == null || !Arrays.equals(args[2].shape(), p.outShape(args[0]))
                || !Arrays.equals(outputs[0].shape(), args[0].shape())
                || !Arrays.equals(outputs[1].shape(), args[1].shape())) {
            return null;
        }
        return new Kernel().java(args, in -> p.gradients(NativeRows.of(in[0]), NativeRows.of(in[1]),
                NativeRows.of(in[2]), NativeRows.of(outputs[0]), NativeRows.of(outputs[1])));
    }

    private static BatchedMatmul of(INDArray a, INDArray b, long[] iArgs) {
        int rank = a.rank();
        if (rank < 3 || rank > 4 || b.rank() != rank) {
            return null;
        }
        for (int d = 0; d < rank - 2; d++) {
            if (a.size(d) != b.size(d)) {
                return null;
            }
        }
        BatchedMatmul p = new BatchedMatmul(a, b, iArgs.length > 0 && iArgs[0] != 0, iArgs.length > 1 && iArgs[1] != 0);
        int kb = p.tb ? p.cb : p.rb;
        boolean small = p.m <= CpuKernels.MAX_TOKENS && p.n <= CpuKernels.MAX_TOKENS && p.k <= CpuKernels.MAX_TOKENS
                && (long) p.m * p.n * p.k <= CpuKernels.MAX_PRODUCT_WORK;
        return kb == p.k && small ? p : null;
    }

    private long[] outShape(INDArray a) {
        long[] shape = a.shape().clone();
        shape[shape.length - 2] = m;
        shape[shape.length - 1] = n;
        return shape;
    }

    /** op(A) as a row-major [m, k] matrix. */
    private void opA(double[] raw, double[] out) {
        transposeIf(ta, raw, ra, ca, out);
    }

    /** op(B) as a row-major [k, n] matrix. */
    private void opB(double[] raw, double[] out) {
        transposeIf(tb, raw, rb, cb, out);
    }

    private static void transposeIf(boolean transpose, double[] raw, int rows, int cols, double[] out) {
        if (!transpose) {
            System.arraycopy(raw, 0, out, 0, rows * cols);
            return;
        }
        for (int r = 0; r < rows; r++) {
            for (int c = 0; c < cols; c++) {
                out[c * rows + r] = raw[r * cols + c];
            }
        }
    }

    /** {@code c[p, q] = alpha sum_j x[p, j] y[j, q]}, x [p, j], y [j, q], all row-major. */
    private static void product(double[] x, double[] y, double[] c, int rows, int inner, int cols, double alpha) {
        Arrays.fill(c, 0, rows * cols, 0.0);
        for (int p = 0; p < rows; p++) {
            int cr = p * cols;
            for (int j = 0; j < inner; j++) {
                double v = alpha * x[p * inner + j];
                int yr = j * cols;
                for (int q = 0; q < cols; q++) {
                    c[cr + q] += v * y[yr + q];
                }
            }
        }
    }

    private void multiply(NativeRows a, NativeRows b, NativeRows c, double alpha) {
        int sa = ra * ca;
        int sb = rb * cb;
        int sc = m * n;
        Threads.forRows(batch, 2L * m * n * k, (from, to) -> {
            double[] rawA = new double[sa];
            double[] rawB = new double[sb];
            double[] x = new double[sa];
            double[] y = new double[sb];
            double[] z = new double[sc];
            for (int q = from; q < to; q++) {
                a.read((long) q * sa, rawA, sa);
                b.read((long) q * sb, rawB, sb);
                opA(rawA, x);
                opB(rawB, y);
                product(x, y, z, m, k, n, alpha);
                c.write((long) q * sc, z, sc);
            }
        });
    }

    /**
     * With G = dC [m, n]: {@code d op(A) = G op(B)^T} [m, k] and {@code d op(B) = op(A)^T G} [k, n], each
     * transposed back when its operand was transposed.
     */
    private void gradients(NativeRows a, NativeRows b, NativeRows dc, NativeRows da, NativeRows db) {
        int sa = ra * ca;
        int sb = rb * cb;
        int sc = m * n;
        Threads.forRows(batch, 4L * m * n * k, (from, to) -> {
            double[] rawA = new double[sa];
            double[] rawB = new double[sb];
            double[] x = new double[sa];
            double[] y = new double[sb];
            double[] xt = new double[sa];
            double[] yt = new double[sb];
            double[] g = new double[sc];
            double[] gx = new double[sa];
            double[] gy = new double[sb];
            for (int q = from; q < to; q++) {
                a.read((long) q * sa, rawA, sa);
                b.read((long) q * sb, rawB, sb);
                dc.read((long) q * sc, g, sc);
                opA(rawA, x);
                opB(rawB, y);
                transposeIf(true, y, k, n, yt);          // op(B)^T [n, k]
                product(g, yt, gx, m, n, k, 1.0);         // d op(A) [m, k]
                transposeIf(true, x, m, k, xt);          // op(A)^T [k, m]
                product(xt, g, gy, k, m, n, 1.0);         // d op(B) [k, n]
                transposeIf(ta, gx, m, k, rawA);
                transposeIf(tb, gy, k, n, rawB);
                da.write((long) q * sa, rawA, sa);
                db.write((long) q * sb, rawB, sb);
            }
        });
    }
}
