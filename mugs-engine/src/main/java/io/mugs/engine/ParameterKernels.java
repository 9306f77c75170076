package io.mugs.engine;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * Java kernels for the per-tensor parameter updates that follow a training step on the CPU backend: AdamW's
 * gradient scaling, decoupled weight decay, moments and step in one pass over the arrays' native memory, and the
 * teacher EMA in one pass. Through ND4J the same work is five ops per tensor for AdamW (norm, clip, decay, the fused
 * updater, the subtraction) and two for the EMA, each a call and a pass of its own over every parameter. Kernel name
 * {@code update} in {@code -Dmugs.engine.javaKernels} ({@link Kernels}); never on CUDA. FLOAT arrays are computed in
 * float, as PyTorch computes its float parameters; DOUBLE in double. Each element's arithmetic does not depend on how
 * the work is split over threads, and {@link #sumOfSquares} adds per-chunk partial sums in a fixed order, so results
 * are the same bits with one core or two.
 *
 * <pre>{@code
 * if (ParameterKernels.covers(p, g, m, v)) {
 *     double norm = Math.sqrt(ParameterKernels.sumOfSquares(g));
 *     ParameterKernels.adamW(p, g, m, v, new ParameterKernels.AdamWStep(scale, 1 - lr * wd,
 *             0.9, 0.999, lr / (1 - Math.pow(0.9, t)), Math.sqrt(1 - Math.pow(0.999, t)), 1e-8));
 * }
 * ParameterKernels.ema(teacher, student, 0.996);   // teacher <- 0.996 teacher + 0.004 student
 * }</pre>
 */
public final class ParameterKernels {

    private static final int CHUNK = 4096;

    /**
     * One AdamW step's scalars, as PyTorch's {@code torch.optim.AdamW} uses them:
     * <pre>
     *   g <- gradScale g;  p <- decay p;  m <- beta1 m + (1 - beta1) g;  v <- beta2 v + (1 - beta2) g^2
     *   p <- p - stepSize m / (sqrt(v) / bc2Sqrt + eps)
     * </pre>
     *
     * @param gradScale the clipping factor (1 when not clipped)
     * @param decay     {@code 1 - lr_p wd_p}
     * @param stepSize  {@code lr_p / (1 - beta1^t)}
     * @param bc2Sqrt   {@code sqrt(1 - beta2^t)}
     */
    public record AdamWStep(double gradScale, double decay, double beta1, double beta2, double stepSize,
                            double bc2Sqrt, double eps) {
    }

    private ParameterKernels() {
    }

    /**
     * Whether these kernels take the arrays: the {@code update} Java kernel is selected (CPU backend), and every array
     * is a contiguous FLOAT or DOUBLE array of the first one's type and length.
     */
    public static boolean covers(INDArray... arrays) {
        if (arrays.length == 0 || !Kernels.enabledJavaOps().contains("update")) {
            return false;
        }
        DataType type = arrays[0].dataType();
        long n = arrays[0].length();
        for (INDArray a : arrays) {
            if (a == null || !NativeRows.supports(a) || a.dataType() != type || a.length() != n) {
                return false;
            }
        }
        return true;
    }

    /** {@code sum(g^2)} in double, the partial sums of fixed chunks added in order. */
    public static double sumOfSquares(INDArray g) {
        long n = g.length();
        int chunks = chunks(n);
        double[] partial = new double[chunks];
        NativeRows rows = NativeRows.of(g);
        boolean single = g.dataType() == DataType.FLOAT;
        Threads.forRows(chunks, 2L * CHUNK, (first, last) -> {
            float[] f = single ? new float[CHUNK] : null;
            double[] d = single ? null : new double[CHUNK];
            for (int c = first; c < last; c++) {
                long from = (long) c * CHUNK;
                int len = (int) Math.min(CHUNK, n - from);
                double s = 0;
                if (single) {
                    rows.read(from, f, len);
                    for (int i = 0; i < len; i++) {
                        s += (double) f[i] * f[i];
                    }
                } else {
                    rows.read(from, d, len);
                    for (int i = 0; i < len; i++) {
                        s += d[i] * d[i];
                    }
                }
                partial[c] = s;
            }
        });
        double total = 0;
        for (double s : partial) {
            total += s;
        }
        return total;
    }

    /**
     * One AdamW step in place: {@code p}, {@code m} and {@code v} updated, {@code g} replaced by the step taken
     * ({@code p_before_step - p_after}, after the decay), as ND4J's updater leaves it. {@link #allFinite} checks the
     * result.
     */
    public static void adamW(INDArray p, INDArray g, INDArray m, INDArray v, AdamWStep s) {
        long n = p.length();
        int chunks = chunks(n);
        NativeRows pr = NativeRows.of(p);
        NativeRows gr = NativeRows.of(g);
        NativeRows mr = NativeRows.of(m);
        NativeRows vr = NativeRows.of(v);
        if (p.dataType() == DataType.FLOAT) {
            Threads.forRows(chunks, 12L * CHUNK, (first, last) -> {
                float[] pf = new float[CHUNK];
                float[] gf = new float[CHUNK];
                float[] mf = new float[CHUNK];
                float[] vf = new float[CHUNK];
                for (int c = first; c < last; c++) {
                    long from = (long) c * CHUNK;
                    int len = (int) Math.min(CHUNK, n - from);
                    pr.read(from, pf, len);
                    gr.read(from, gf, len);
                    mr.read(from, mf, len);
                    vr.read(from, vf, len);
                    adamWFloats(pf, gf, mf, vf, len, s);
                    pr.write(from, pf, len);
                    gr.write(from, gf, len);
                    mr.write(from, mf, len);
                    vr.write(from, vf, len);
                }
            });
        } else {
            Threads.forRows(chunks, 12L * CHUNK, (first, last) -> {
                double[] pd = new double[CHUNK];
                double[] gd = new double[CHUNK];
                double[] md = new double[CHUNK];
                double[] vd = new double[CHUNK];
                for (int c = first; c < last; c++) {
                    long from = (long) c * CHUNK;
                    int len = (int) Math.min(CHUNK, n - from);
                    pr.read(from, pd, len);
                    gr.read(from, gd, len);
                    mr.read(from, md, len);
                    vr.read(from, vd, len);
                    adamWDoubles(pd, gd, md, vd, len, s);
                    pr.write(from, pd, len);
                    gr.write(from, gd, len);
                    mr.write(from, md, len);
                    vr.write(from, vd, len);
                }
            });
        }
    }

    /** The float step over one chunk, in PyTorch's order of operations. */
    private static void adamWFloats(float[] p, float[] g, float[] m, float[] v, int len, AdamWStep s) {
        float scale = (float) s.gradScale();
        float decay = (float) s.decay();
        float b1 = (float) s.beta1();
        float c1 = (float) (1 - s.beta1());
        float b2 = (float) s.beta2();
        float c2 = (float) (1 - s.beta2());
        float step = (float) s.stepSize();
        float bc2 = (float) s.bc2Sqrt();
        float eps = (float) s.eps();
        for (int i = 0; i < len; i++) {
            float gi = g[i] * scale;
            float mi = m[i] * b1 + gi * c1;
            float vi = v[i] * b2 + gi * gi * c2;
            float decayed = p[i] * decay;
            float u = step * (mi / ((float) Math.sqrt(vi) / bc2 + eps));
            m[i] = mi;
            v[i] = vi;
            g[i] = u;
            p[i] = decayed - u;
        }
    }

    /** The double step over one chunk. */
    private static void adamWDoubles(double[] p, double[] g, double[] m, double[] v, int len, AdamWStep s) {
        double scale = s.gradScale();
        double decay = s.decay();
        double b1 = s.beta1();
        double c1 = 1 - s.beta1();
        double b2 = s.beta2();
        double c2 = 1 - s.beta2();
        double step = s.stepSize();
        double bc2 = s.bc2Sqrt();
        double eps = s.eps();
        for (int i = 0; i < len; i++) {
            double gi = g[i] * scale;
            double mi = m[i] * b1 + gi * c1;
            double vi = v[i] * b2 + gi * gi * c2;
            double decayed = p[i] * decay;
            double u = step * (mi / (Math.sqrt(vi) / bc2 + eps));
            m[i] = mi;
            v[i] = vi;
            g[i] = u;
            p[i] = decayed - u;
        }
    }

    /** Whether every element of {@code a} is finite (one pass; {@link #covers} must hold for {@code a}). */
    public static boolean allFinite(INDArray a) {
        long n = a.length();
        int chunks = chunks(n);
        boolean[] finite = new boolean[chunks];
        NativeRows rows = NativeRows.of(a);
        boolean single = a.dataType() == DataType.FLOAT;
        Threads.forRows(chunks, CHUNK, (first, last) -> {
            float[] f = single ? new float[CHUNK] : null;
            double[] d = single ? null : new double[CHUNK];
            for (int c = first; c < last; c++) {
                long from = (long) c * CHUNK;
                int len = (int) Math.min(CHUNK, n - from);
                double nan = 0;   // NaN if any element is NaN or infinite, else 0
                if (single) {
                    rows.read(from, f, len);
                    for (int i = 0; i < len; i++) {
                        nan += f[i] * 0f;
                    }
                } else {
                    rows.read(from, d, len);
                    for (int i = 0; i < len; i++) {
                        nan += d[i] * 0d;
                    }
                }
                finite[c] = nan == 0;
            }
        });
        for (boolean f : finite) {
            if (!f) {
                return false;
            }
        }
        return true;
    }

    /** {@code teacher <- momentum teacher + (1 - momentum) student}, in place, in the arrays' precision. */
    public static void ema(INDArray teacher, INDArray student, double momentum) {
        long n = teacher.length();
        NativeRows tr = NativeRows.of(teacher);
        NativeRows sr = NativeRows.of(student);
        boolean single = teacher.dataType() == DataType.FLOAT;
        Threads.forRows(chunks(n), 3L * CHUNK, (first, last) -> {
            float[] tf = single ? new float[CHUNK] : null;
            float[] sf = single ? new float[CHUNK] : null;
            double[] td = single ? null : new double[CHUNK];
            double[] sd = single ? null : new double[CHUNK];
            float mf = (float) momentum;
            float of = (float) (1 - momentum);
            for (int c = first; c < last; c++) {
                long from = (long) c * CHUNK;
                int len = (int) Math.min(CHUNK, n - from);
                if (single) {
                    tr.read(from, tf, len);
                    sr.read(from, sf, len);
                    for (int i = 0; i < len; i++) {
                        tf[i] = tf[i] * mf + sf[i] * of;
                    }
                    tr.write(from, tf, len);
                } else {
                    tr.read(from, td, len);
                    sr.read(from, sd, len);
                    for (int i = 0; i < len; i++) {
                        td[i] = td[i] * momentum + sd[i] * (1 - momentum);
                    }
                    tr.write(from, td, len);
                }
            }
        });
    }

    private static int chunks(long n) {
        return (int) ((n + CHUNK - 1) / CHUNK);
    }
}
