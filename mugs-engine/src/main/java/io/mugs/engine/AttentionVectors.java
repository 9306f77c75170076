package io.mugs.engine;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * {@link Attention}'s FLOAT kernels on the JDK's Vector API ({@code jdk.incubator.vector}, JDK 17): every product of
 * the attention and its gradient is a row times a matrix, {@code out[c] = Σ_r a[r] m[r, c]}, computed as
 * broadcast-multiply-adds over the 8 float lanes of {@link FloatLanes} along the matrix rows ({@link #rowTimes}). S and dP need the keys and values
 * transposed ({@code [dh, T]}, columns padded with zeros to a multiple of 8); O, dQ, dK and dV read the rows of qkv
 * and dO in place. No lane reductions: a lane sum's order is unspecified and would make the bits depend on how far
 * the JIT has got (resumed runs are checked bit for bit); the fused multiply-add of each lane is exact in compiled and
 * interpreted code alike. Needs {@code dh} a multiple of 8; loaded only when the JVM has
 * {@code --add-modules jdk.incubator.vector} ({@link ExactGelu#VECTOR}).
 *
 * <pre>{@code
 * AttentionVectors.rowTimes(a, 0, n, m, 0, stride, cols, out, 0);   // out[c] = Σ_{r<n} a[r] m[r*stride + c]
 * }</pre>
 */
final class AttentionVectors {

    private static final VectorSpecies<Float> S = FloatLanes.SPECIES;
    private static final FloatLanes.WarmUp WARM_UP = new FloatLanes.WarmUp(AttentionVectors::exercise);
    /** Float lanes per vector. */
    static final int LANES = S.length();

    private AttentionVectors() {
    }

    /** {@code n} rounded up to a multiple of {@link #LANES}. */
    static int padded(int n) {
        return (n + LANES - 1) / LANES * LANES;
    }

    /**
     * {@code out[oi + c] = Σ_{r<n} a[ai + r] · m[mi + r·stride + c]} for {@code c < cols}, {@code cols} a multiple of
     * {@link #LANES}; four, two or one column vector at a time (independent chains of multiply-adds).
     */
    static void rowTimes(float[] a, int ai, int n, float[] m, int mi, int stride, int cols, float[] out, int oi) {
        int c = 0;
        for (; c + 4 * LANES <= cols; c += 4 * LANES) {
            FloatVector s0 = FloatVector.zero(S);
            FloatVector s1 = FloatVector.zero(S);
            FloatVector s2 = FloatVector.zero(S);
            FloatVector s3 = FloatVector.zero(S);
            for (int r = 0; r < n; r++) {
                FloatVector w = FloatVector.broadcast(S, a[ai + r]);
                int at = mi + r * stride + c;
                s0 = FloatVector.fromArray(S, m, at).fma(w, s0);
                s1 = FloatVector.fromArray(S, m, at + LANES).fma(w, s1);
                s2 = FloatVector.fromArray(S, m, at + 2 * LANES).fma(w, s2);
                s3 = FloatVector.fromArray(S, m, at + 3 * LANES).fma(w, s3);
            }
            s0.intoArray(out, oi + c);
            s1.intoArray(out, oi + c + LANES);
            s2.intoArray(out, oi + c + 2 * LANES);
            s3.intoArray(out, oi + c + 3 * LANES);
        }
        for (; c + 2 * LANES <= cols; c += 2 * LANES) {
            FloatVector s0 = FloatVector.zero(S);
            FloatVector s1 = FloatVector.zero(S);
            for (int r = 0; r < n; r++) {
                FloatVector w = FloatVector.broadcast(S, a[ai + r]);
                int at = mi + r * stride + c;
                s0 = FloatVector.fromArray(S, m, at).fma(w, s0);
                s1 = FloatVector.fromArray(S, m, at + LANES).fma(w, s1);
            }
            s0.intoArray(out, oi + c);
            s1.intoArray(out, oi + c + LANES);
        }
        for (; c < cols; c += LANES) {
            FloatVector s0 = FloatVector.zero(S);
            for (int r = 0; r < n; r++) {
                s0 = FloatVector.fromArray(S, m, mi + r * stride + c).fma(FloatVector.broadcast(S, a[ai + r]), s0);
            }
            s0.intoArray(out, oi + c);
        }
    }

    /**
     * Runs {@link #rowTimes} often enough on small arrays for the JIT's optimising compiler to take it (about 20,000
     * calls, once per JVM): Vector API code is 50-100x slower until then.
     */
    static void warmUp() {
        WARM_UP.run();
    }

    private static void exercise() {
        int cols = 7 * LANES;
        float[] a = new float[5];
        float[] m = new float[5 * cols];
        float[] out = new float[cols];
        for (int i = 0; i < m.length; i++) {
            m[i] = (i % 13) * 0.1f;
        }
        for (int k = 0; k < 20_000; k++) {
            a[k % 5] = k * 1e-4f;
            rowTimes(a, 0, 5, m, 0, cols, cols, out, 0);
        }
    }
}
