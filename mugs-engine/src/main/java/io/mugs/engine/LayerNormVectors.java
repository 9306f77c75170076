package io.mugs.engine;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * {@link RowLayerNorm}'s FLOAT kernels on the JDK's Vector API ({@code jdk.incubator.vector}, JDK 17), on blocks of
 * rows held in float arrays: each row's sums in the 8 float lanes of {@link FloatLanes}, the lanes then added in
 * {@code double} in a fixed order. Only IEEE additions, subtractions and multiplications lane by lane (no
 * {@code reduceLanes}, whose order is left open, and no fused multiply-add), so a result has the same bits however
 * far the JIT has got, as {@link GeluVectors} ensures for the GELU. Each loop body is written out in full (C2 keeps
 * vectors in registers only within one compiled method). Loaded only when {@link ExactGelu#VECTOR}.
 *
 * <pre>{@code
 * LayerNormVectors.forward(x, gain, bias, 1e-6f, rows, d, y, mean, inv, lanes);
 * }</pre>
 */
final class LayerNormVectors {

    private static final VectorSpecies<Float> S = FloatLanes.SPECIES;
    private static final FloatLanes.WarmUp WARM_UP = new FloatLanes.WarmUp(LayerNormVectors::exercise);

    private LayerNormVectors() {
    }

    /** Float lanes per vector (the length of the {@code lanes} scratch arrays). */
    static int lanes() {
        return S.length();
    }

    /**
     * Runs both kernels often enough for C2 to compile them (some 20,000 calls on two short rows, once per JVM): Vector
     * API code is 50-100x slower until then.
     */
    static void warmUp() {
        WARM_UP.run();
    }

    private static void exercise() {
        int d = 2 * S.length() + 3;
        float[] x = new float[2 * d];
        float[] dy = new float[2 * d];
        float[] out = new float[2 * d];
        float[] gain = new float[d];
        float[] stats = new float[4];
        float[] sums = new float[2 * d];
        float[] lanes = new float[S.length()];
        for (int i = 0; i < 2 * d; i++) {
            x[i] = (i - d) * 0.37f;
            dy[i] = 1;
        }
        java.util.Arrays.fill(gain, 1);
        for (int k = 0; k < 20_000; k++) {
            forward(x, gain, gain, 1e-6f, 2, d, out, stats, stats, lanes);
            backward(x, dy, k % 2 == 0 ? null : dy, gain, stats, stats, 2, d, out, sums, lanes);
        }
    }

    /**
     * Rows {@code [0, rows)} of x (d floats each, row after row): y, and each row's mean and inverse standard
     * deviation {@code 1/√(var + eps)} in {@code mean[r]}, {@code inv[r]}.
     */
    static void forward(float[] x, float[] gain, float[] bias, float eps, int rows, int d, float[] y, float[] mean,
                        float[] inv, float[] lanes) {
        int bound = S.loopBound(d);
        int width = S.length();
        for (int r = 0; r < rows; r++) {
            int o = r * d;
            FloatVector acc = FloatVector.zero(S);
            int i = 0;
            for (; i < bound; i += width) {
                acc = acc.add(FloatVector.fromArray(S, x, o + i));
            }
            acc.intoArray(lanes, 0);
            double s = 0;
            for (int k = 0; k < width; k++) {
                s += lanes[k];
            }
            for (; i < d; i++) {
                s += x[o + i];
            }
            float mu = (float) (s / d);
            FloatVector m = FloatVector.broadcast(S, mu);
            acc = FloatVector.zero(S);
            i = 0;
            for (; i < bound; i += width) {
                FloatVector c = FloatVector.fromArray(S, x, o + i).sub(m);
                acc = acc.add(c.mul(c));
            }
            acc.intoArray(lanes, 0);
            double v = 0;
            for (int k = 0; k < width; k++) {
                v += lanes[k];
            }
            for (; i < d; i++) {
                float c = x[o + i] - mu;
                v += c * c;
            }
            float rs = (float) (1 / Math.sqrt(v / d + eps));
            FloatVector rv = FloatVector.broadcast(S, rs);
            i = 0;
            for (; i < bound; i += width) {
                FloatVector c = FloatVector.fromArray(S, x, o + i).sub(m);
                c.mul(rv).mul(FloatVector.fromArray(S, gain, i)).add(FloatVector.fromArray(S, bias, i))
                        .intoArray(y, o + i);
            }
            for (; i < d; i++) {
                y[o + i] = (x[o + i] - mu) * rs * gain[i] + bias[i];
            }
            mean[r] = mu;
            inv[r] = rs;
        }
    }

    /**
     * Rows {@code [0, rows)}: with {@code x̂ = (x - mean) inv} and {@code h = dy · gain},
     * {@code dx = inv (h - mean(h) - x̂ mean(h x̂))} (plus {@code extra} when not {@code null}); adds
     * {@code dy x̂} to {@code sums[0, d)} and {@code dy} to {@code sums[d, 2d)}.
     */
    static void backward(float[] x, float[] dy, float[] extra, float[] gain, float[] mean, float[] inv, int rows,
                         int d, float[] dx, float[] sums, float[] lanes) {
        int bound = S.loopBound(d);
        int width = S.length();
        for (int r = 0; r < rows; r++) {
            int o = r * d;
            FloatVector m = FloatVector.broadcast(S, mean[r]);
            FloatVector rv = FloatVector.broadcast(S, inv[r]);
            FloatVector accH = FloatVector.zero(S);
            FloatVector accHx = FloatVector.zero(S);
            int i = 0;
            for (; i < bound; i += width) {
                FloatVector xh = FloatVector.fromArray(S, x, o + i).sub(m).mul(rv);
                FloatVector g = FloatVector.fromArray(S, dy, o + i);
                FloatVector h = g.mul(FloatVector.fromArray(S, gain, i));
                accH = accH.add(h);
                accHx = accHx.add(h.mul(xh));
                FloatVector.fromArray(S, sums, i).add(g.mul(xh)).intoArray(sums, i);
                FloatVector.fromArray(S, sums, d + i).add(g).intoArray(sums, d + i);
            }
            double sh = 0;
            double shx = 0;
            accH.intoArray(lanes, 0);
            for (int k = 0; k < width; k++) {
                sh += lanes[k];
            }
            accHx.intoArray(lanes, 0);
            for (int k = 0; k < width; k++) {
                shx += lanes[k];
            }
            float mu = mean[r];
            float rs = inv[r];
            for (; i < d; i++) {
                float xh = (x[o + i] - mu) * rs;
                float g = dy[o + i];
                float h = g * gain[i];
                sh += h;
                shx += h * xh;
                sums[i] += g * xh;
                sums[d + i] += g;
            }
            float meanH = (float) (sh / d);
            float meanHx = (float) (shx / d);
            FloatVector mh = FloatVector.broadcast(S, meanH);
            FloatVector mhx = FloatVector.broadcast(S, meanHx);
            i = 0;
            if (extra == null) {
                for (; i < bound; i += width) {
                    FloatVector xh = FloatVector.fromArray(S, x, o + i).sub(m).mul(rv);
                    FloatVector h = FloatVector.fromArray(S, dy, o + i).mul(FloatVector.fromArray(S, gain, i));
                    h.sub(mh).sub(xh.mul(mhx)).mul(rv).intoArray(dx, o + i);
                }
            } else {
                for (; i < bound; i += width) {
                    FloatVector xh = FloatVector.fromArray(S, x, o + i).sub(m).mul(rv);
                    FloatVector h = FloatVector.fromArray(S, dy, o + i).mul(FloatVector.fromArray(S, gain, i));
                    h.sub(mh).sub(xh.mul(mhx)).mul(rv).add(FloatVector.fromArray(S, extra, o + i))
                            .intoArray(dx, o + i);
                }
            }
            for (; i < d; i++) {
                float xh = (x[o + i] - mu) * rs;
                float h = dy[o + i] * gain[i];
                float v = (h - meanH - xh * meanHx) * rs;
                dx[o + i] = extra == null ? v : v + extra[o + i];
            }
        }
    }
}
