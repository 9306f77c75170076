package io.mugs.engine;

import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * {@link Attention}'s kernels for FLOAT arrays in float arithmetic, every product through
 * {@link AttentionVectors#rowTimes} (the JDK's Vector API), the softmax and its gradient in scalar loops. Same
 * shapes and formulas as {@link Attention}; chosen there when the Vector API is loaded and {@code dh} is a multiple
 * of 8.
 *
 * <pre>{@code
 * Kernel k = AttentionFloats.forward(new INDArray[] {qkv}, ctx, probabilities, 17, 3, 32, 0.17677669f);
 * }</pre>
 */
final class AttentionFloats {

    /**
     * Per-thread working arrays, reused from call to call (a training step calls these kernels a few dozen times;
     * fresh arrays would be garbage for the collector). Every element a kernel reads it has written in the same call,
     * except the padding columns of the transposed keys and values, whose products are never read.
     */
    private static final ThreadLocal<float[][]> SCRATCH = ThreadLocal.withInitial(() -> new float[9][0]);

    private AttentionFloats() {
    }

    /** Working array {@code slot} of this thread, at least {@code n} long. */
    private static float[] scratch(int slot, int n) {
        float[][] s = SCRATCH.get();
        if (s[slot].length < n) {
            s[slot] = new float[n];
        }
        return s[slot];
    }

    /** {@code ctx [B*T, D]} and, unless {@code probabilities} is {@code null}, P from {@code args[0] = qkv}. */
    static Kernel forward(INDArray[] args, INDArray ctx, INDArray probabilities, int t, int heads, int dh,
                          float scale) {
        int d = heads * dh;
        int row = 3 * d;
        int tp = AttentionVectors.padded(t);
        int images = (int) (ctx.size(0) / t);
        long work = 4L * heads * t * t * dh;
        return new Kernel().java(args, in -> {
            NativeRows qkv = NativeRows.of(in[0]);
            NativeRows out = NativeRows.of(ctx);
            NativeRows p = probabilities == null ? null : NativeRows.of(probabilities);
            Threads.forRows(images, work, (first, last) -> {
                float[] x = scratch(0, t * row);
                float[] o = scratch(1, t * d);
                float[] probs = scratch(2, heads * t * t);
                float[] kt = scratch(3, dh * tp);
                float[] s = scratch(4, tp);
                for (int b = first; b < last; b++) {
                    qkv.read((long) b * t * row, x, t * row);
                    for (int h = 0; h < heads; h++) {
                        int col = h * dh;
                        int pAt = h * t * t;
                        transpose(x, d + col, row, t, dh, tp, kt);
                        for (int i = 0; i < t; i++) {
                            AttentionVectors.rowTimes(x, i * row + col, dh, kt, 0, tp, tp, s, 0);   // q_i kᵀ
                            float max = Float.NEGATIVE_INFINITY;
                            for (int j = 0; j < t; j++) {
                                s[j] *= scale;
                                max = Math.max(max, s[j]);
                            }
                            double sum = 0;
                            for (int j = 0; j < t; j++) {
                                double e = CpuKernels.expNonPositive(s[j] - max);
                                s[j] = (float) e;
                                sum += e;
                            }
                            float inv = (float) (1 / sum);
                            for (int j = 0; j < t; j++) {
                                probs[pAt + i * t + j] = s[j] * inv;
                            }
                            AttentionVectors.rowTimes(probs, pAt + i * t, t, x, 2 * d + col, row, dh, o,
                                    i * d + col);                                                 // O_i = P_i v
                        }
                    }
                    out.write((long) b * t * d, o, t * d);
                    if (p != null) {
                        p.write((long) b * heads * t * t, probs, heads * t * t);
                    }
                }
            });
        });
    }

    /** {@code dqkv [B*T, 3D]} from {@code args = {qkv, P [B, H, T, T], dctx [B*T, D]}}. */
    static Kernel backward(INDArray[] args, INDArray dqkv, int t, int heads, int dh, float scale) {
        int d = heads * dh;
        int row = 3 * d;
        int tp = AttentionVectors.padded(t);
        int images = (int) (dqkv.size(0) / t);
        long work = 8L * heads * t * t * dh;
        return new Kernel().java(args, in -> {
            NativeRows qkv = NativeRows.of(in[0]);
            NativeRows p = NativeRows.of(in[1]);
            NativeRows dctx = NativeRows.of(in[2]);
            NativeRows out = NativeRows.of(dqkv);
            Threads.forRows(images, work, (first, last) -> {
                float[] x = scratch(0, t * row);
                float[] dx = scratch(1, t * row);
                float[] probs = scratch(2, heads * t * t);
                float[] dO = scratch(3, t * d);
                float[] vt = scratch(4, dh * tp);
                float[] dp = scratch(5, tp);
                float[] ds = scratch(6, t * t);
                float[] dsT = scratch(7, t * t);
                float[] pT = scratch(8, t * t);
                for (int b = first; b < last; b++) {
                    qkv.read((long) b * t * row, x, t * row);
                    p.read((long) b * heads * t * t, probs, heads * t * t);
                    dctx.read((long) b * t * d, dO, t * d);
                    for (int h = 0; h < heads; h++) {
                        int col = h * dh;
                        int pAt = h * t * t;
                        transpose(x, 2 * d + col, row, t, dh, tp, vt);
                        for (int i = 0; i < t; i++) {
                            AttentionVectors.rowTimes(dO, i * d + col, dh, vt, 0, tp, tp, dp, 0);  // dP_i = dO_i vᵀ
                            double dot = 0;
                            for (int j = 0; j < t; j++) {
                                dot += (double) dp[j] * probs[pAt + i * t + j];
                            }
                            for (int j = 0; j < t; j++) {
                                float pij = probs[pAt + i * t + j];
                                float g = (float) (pij * (dp[j] - dot)) * scale;
                                ds[i * t + j] = g;
                                dsT[j * t + i] = g;
                                pT[j * t + i] = pij;
                            }
                        }
                        for (int i = 0; i < t; i++) {
                            AttentionVectors.rowTimes(ds, i * t, t, x, d + col, row, dh, dx, i * row + col);
                            AttentionVectors.rowTimes(dsT, i * t, t, x, col, row, dh, dx, i * row + d + col);
                            AttentionVectors.rowTimes(pT, i * t, t, dO, col, d, dh, dx, i * row + 2 * d + col);
                        }
                    }
                    out.write((long) b * t * row, dx, t * row);
                }
            });
        });
    }

    /** {@code out[e*tp + j] = x[at + j*row + e]}: a head's T rows of dh columns, transposed (columns j >= T stay 0). */
    private static void transpose(float[] x, int at, int row, int t, int dh, int tp, float[] out) {
        for (int j = 0; j < t; j++) {
            int from = at + j * row;
            for (int e = 0; e < dh; e++) {
                out[e * tp + j] = x[from + e];
            }
        }
    }
}
