package io.mugs.engine;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * Multi-head scaled dot-product self-attention (Vaswani et al. 2017, §3.2.1-3.2.2) and its gradient as Java kernels
 * on the arrays' native memory (CPU backend), working on the row-major qkv rows directly: one op each way where
 * SameDiff's graph takes 13 forward and 17 backward ops with three head-major copies each way. {@link AttentionFusion}
 * puts them into a plan; {@code AttentionKernelTest} checks them against the libnd4j ops and finite differences.
 *
 * <p>Shapes: {@code qkv [B*T, 3D]} laid out {@code [q | k | v]}, each head-major ({@code D = H·dh}, as
 * {@code TransformerBlock}); {@code ctx [B*T, D]}; {@code P [B, H, T, T]}. Per image b and head h, with
 * {@code q, k, v [T, dh]} read from the image's rows and c the scale ({@code dh^-1/2}):
 * <pre>
 * forward   S = c q kᵀ; P = softmax(S) (rows); O = P v                      → ctx rows, head h's columns
 * backward  dV = Pᵀ dO; dP = dO vᵀ; dS = P ∘ (dP - rowsum(dP ∘ P)); dQ = c dS k; dK = c dSᵀ q → dqkv
 * </pre>
 * FLOAT arrays with the Vector API loaded ({@link ExactGelu#VECTOR}) and dh a multiple of 8 go to
 * {@link AttentionFloats} (float arithmetic, every product on vector lanes; 3.5x these loops). Otherwise everything
 * is computed here in {@code double} in plain loops (FLOAT arrays converted on read and rounded on write), which
 * lost to libnd4j for T = 17. Images are split over the cores ({@link Threads#forRows}) when the work is large; T is
 * small (17, 9 and 5 tokens in the {@code fm} preset), so each image's working set fits in the first-level cache.
 *
 * <pre>{@code
 * Kernel k = Attention.forward(new INDArray[] {qkv}, ctx, probabilities, 17, 3, 32, 1 / Math.sqrt(32));
 * k.run();
 * }</pre>
 */
final class Attention {

    private Attention() {
    }

    /**
     * The forward kernel: {@code ctx [B*T, D]} and, unless {@code probabilities} is {@code null}, {@code P [B, H, T,
     * T]} from {@code args[0] = qkv [B*T, 3D]}.
     */
    static Kernel forward(INDArray[] args, INDArray ctx, INDArray probabilities, int tokens, int heads, int headDim,
                          double scale) {
        return forward(args, ctx, probabilities, tokens, heads, headDim, scale, ExactGelu.VECTOR);
    }

    /** The forward kernel; {@code vector}: FLOAT arrays through {@link AttentionVectors} (when dh is a multiple of 8). */
    static Kernel forward(INDArray[] args, INDArray ctx, INDArray probabilities, int tokens, int heads, int headDim,
                          double scale, boolean vector) {
        if (vector && ctx.dataType() == DataType.FLOAT && headDim % AttentionVectors.LANES == 0) {
            AttentionVectors.warmUp();
            return AttentionFloats.forward(args, ctx, probabilities, tokens, heads, headDim, (float) scale);
        }
        int t = tokens;
        int d = heads * headDim;
        int images = (int) (ctx.size(0) / t);
        long work = 4L * heads * t * t * headDim;
        boolean single = ctx.dataType() == DataType.FLOAT;
        return new Kernel().java(args, in -> {
            NativeRows qkv = NativeRows.of(in[0]);
            NativeRows out = NativeRows.of(ctx);
            NativeRows p = probabilities == null ? null : NativeRows.of(probabilities);
            Threads.forRows(images, work, (first, last) -> {
                double[] x = new double[t * 3 * d];
                double[] o = new double[t * d];
                double[] probs = new double[heads * t * t];
                for (int b = first; b < last; b++) {
                    qkv.read((long) b * t * 3 * d, x, t * 3 * d);
                    for (int h = 0; h < heads; h++) {
                        forwardHead(x, o, probs, h * t * t, t, d, h * headDim, headDim, scale, single);
                    }
                    out.write((long) b * t * d, o, t * d);
                    if (p != null) {
                        p.write((long) b * heads * t * t, probs, heads * t * t);
                    }
                }
            });
        });
    }

    /** One head of one image: P (at {@code pAt}) and O (columns {@code col..col+dh} of {@code o}) from x's rows. */
    private static void forwardHead(double[] x, double[] o, double[] p, int pAt, int t, int d, int col, int dh,
                                    double scale, boolean single) {
        int row = 3 * d;
        for (int i = 0; i < t; i++) {
            int qi = i * row + col;
            double max = Double.NEGATIVE_INFINITY;
            for (int j = 0; j < t; j++) {
                int kj = j * row + d + col;
                double s = 0;
                for (int e = 0; e < dh; e++) {
                    s += x[qi + e] * x[kj + e];
                }
                s *= scale;
                p[pAt + i * t + j] = s;
                max = Math.max(max, s);
            }
            double sum = 0;
            for (int j = 0; j < t; j++) {
                double z = p[pAt + i * t + j] - max;
                double e = single ? CpuKernels.expNonPositive(z) : Math.exp(z);
                p[pAt + i * t + j] = e;
                sum += e;
            }
            double inv = 1 / sum;
            int oi = i * d + col;
            for (int e = 0; e < dh; e++) {
                o[oi + e] = 0;
            }
            for (int j = 0; j < t; j++) {
                double pij = p[pAt + i * t + j] * inv;
                p[pAt + i * t + j] = pij;
                int vj = j * row + 2 * d + col;
                for (int e = 0; e < dh; e++) {
                    o[oi + e] += pij * x[vj + e];
                }
            }
        }
    }

    /**
     * The backward kernel: {@code dqkv [B*T, 3D]} from {@code args = {qkv [B*T, 3D], P [B, H, T, T], dctx [B*T,
     * D]}}.
     */
    static Kernel backward(INDArray[] args, INDArray dqkv, int tokens, int heads, int headDim, double scale) {
        return backward(args, dqkv, tokens, heads, headDim, scale, ExactGelu.VECTOR);
    }

    /** The backward kernel; {@code vector}: FLOAT arrays through {@link AttentionVectors} (when dh is a multiple of 8). */
    static Kernel backward(INDArray[] args, INDArray dqkv, int tokens, int heads, int headDim, double scale,
                           boolean vector) {
        if (vector && dqkv.dataType() == DataType.FLOAT && headDim % AttentionVectors.LANES == 0) {
            AttentionVectors.warmUp();
            return AttentionFloats.backward(args, dqkv, tokens, heads, headDim, (float) scale);
        }
        int t = tokens;
        int d = heads * headDim;
        int images = (int) (dqkv.size(0) / t);
        long work = 8L * heads * t * t * headDim;
        return new Kernel().java(args, in -> {
            NativeRows qkv = NativeRows.of(in[0]);
            NativeRows p = NativeRows.of(in[1]);
            NativeRows dctx = NativeRows.of(in[2]);
            NativeRows out = NativeRows.of(dqkv);
            Threads.forRows(images, work, (first, last) -> {
                double[] x = new double[t * 3 * d];
                double[] dx = new double[t * 3 * d];
                double[] probs = new double[heads * t * t];
                double[] dO = new double[t * d];
                double[] dS = new double[t * t];
                for (int b = first; b < last; b++) {
                    qkv.read((long) b * t * 3 * d, x, t * 3 * d);
                    p.read((long) b * heads * t * t, probs, heads * t * t);
                    dctx.read((long) b * t * d, dO, t * d);
                    for (int h = 0; h < heads; h++) {
                        backwardHead(x, probs, h * t * t, dO, dS, dx, t, d, h * headDim, headDim, scale);
                    }
                    out.write((long) b * t * 3 * d, dx, t * 3 * d);
                }
            });
        });
    }

    /** One head of one image: its dq, dk, dv columns of {@code dx} from x's rows, P and dO. */
    private static void backwardHead(double[] x, double[] p, int pAt, double[] dO, double[] dS, double[] dx, int t,
                                     int d, int col, int dh, double scale) {
        int row = 3 * d;
        for (int j = 0; j < t; j++) {
            int at = j * row + col;
            for (int e = 0; e < dh; e++) {
                dx[at + e] = 0;
                dx[at + d + e] = 0;
                dx[at + 2 * d + e] = 0;
            }
        }
        for (int i = 0; i < t; i++) {
            int oi = i * d + col;
            double dot = 0;
            for (int j = 0; j < t; j++) {
                double pij = p[pAt + i * t + j];
                int vj = j * row + 2 * d + col;
                double dp = 0;
                for (int e = 0; e < dh; e++) {
                    double g = dO[oi + e];
                    dp += g * x[vj + e];
                    dx[vj + e] += pij * g;          // dV = Pᵀ dO
                }
                dS[i * t + j] = dp;
                dot += dp * pij;
            }
            for (int j = 0; j < t; j++) {
                double pij = p[pAt + i * t + j];
                dS[i * t + j] = pij * (dS[i * t + j] - dot) * scale;
            }
        }
        for (int i = 0; i < t; i++) {
            int qi = i * row + col;
            for (int j = 0; j < t; j++) {
                double s = dS[i * t + j];
                int kj = j * row + d + col;
                for (int e = 0; e < dh; e++) {
                    dx[qi + e] += s * x[kj + e];    // dQ = c dS k
                    dx[kj + e] += s * x[qi + e];    // dK = c dSᵀ q
                }
            }
        }
    }
}
