package io.mugs.engine;

import static io.mugs.engine.ExpVectors.HALF;
import static io.mugs.engine.ExpVectors.INV_120;
import static io.mugs.engine.ExpVectors.INV_24;
import static io.mugs.engine.ExpVectors.INV_6;
import static io.mugs.engine.ExpVectors.LOG2E;
import static io.mugs.engine.ExpVectors.NEG_LN2_HI;
import static io.mugs.engine.ExpVectors.NEG_LN2_LO;
import static io.mugs.engine.ExpVectors.ONE;
import static io.mugs.engine.ExpVectors.ROUND;
import static io.mugs.engine.ExpVectors.ROUND_BITS;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * {@link ExactGelu}'s FLOAT kernels on the JDK's Vector API ({@code jdk.incubator.vector}, JDK 17): the same
 * Numerical Recipes {@code erfcc} fit, evaluated in {@link FloatLanes} (8 float lanes on every CPU),
 * the exponentials by range reduction and a polynomial made of exact IEEE operations only: the API's own
 * {@code EXP} is Intel's SVML once compiled and {@code Math.exp} before, whose last bits differ, and a run must give
 * the same bits however far the JIT has got (resumed runs are checked bit for bit). About 10x faster than the scalar
 * loop, which lost to libnd4j. Each loop body is written out in full, with no helper taking or returning vectors: C2 keeps
 * vectors in registers only within one compiled method, and a helper it declines to inline boxes every vector.
 * With NR's fit {@code erfc(a) = t exp(P(t) - a²)}, {@code t = 1/(1 + a/2)}, {@code a = |x|/√2}, and
 * {@code erfc(-a) = 2 - erfc(a)}. This class is loaded only when the JVM was started with
 * {@code --add-modules jdk.incubator.vector} ({@link ExactGelu#VECTOR}); the launchers, Surefire and
 * {@code exec:exec} add it.
 *
 * <pre>{@code
 * GeluVectors.forward(x, y, n);          // y[i] = gelu(x[i]) for i < n
 * }</pre>
 */
final class GeluVectors {

    private static final VectorSpecies<Float> S = FloatLanes.SPECIES;
    private static final FloatLanes.WarmUp WARM_UP = new FloatLanes.WarmUp(GeluVectors::exercise);
    private static final float NEG_INV_SQRT2 = (float) -ExactGelu.INV_SQRT2;
    private static final float INV_SQRT_2PI = (float) (1 / Math.sqrt(2 * Math.PI));

    private GeluVectors() {
    }

    /**
     * Runs both kernels often enough on a few elements for the JIT's optimising compiler to take them (about 20,000
     * calls, some 0.1 s of one core, once per JVM). Vector API code is 50-100x slower until then (each vector an
     * object), and the training step calls the kernels only a few dozen times per step: without this, the first
     * 10-20 steps would pay for it.
     */
    static void warmUp() {
        WARM_UP.run();
    }

    private static void exercise() {
        int n = 2 * S.length() + 3;
        float[] x = new float[n];
        float[] dy = new float[n];
        float[] out = new float[n];
        for (int i = 0; i < n; i++) {
            x[i] = (i - n / 2) * 0.37f;
            dy[i] = 1;
        }
        for (int k = 0; k < 20_000; k++) {
            forward(x, out, n);
            backward(x, dy, out, n);
        }
    }

    /** Float lanes per vector. */
    static int lanes() {
        return S.length();
    }

    /**
     * {@code y[i] = x[i]/2 · erfc(-x[i]/√2)} for {@code i < n}: the whole vectors, then the remaining elements one by
     * one, in separate methods so that C2 compiles the vector loop alone (with the scalar tail inside, a C2 compile
     * without a profile inlined the scalar GELU up to its node limit). Whether C2 keeps the vectors in registers
     * depends on the profile it compiles with: compiled without one, the loop ran the Vector API's allocating
     * fallback, which is why {@link Kernels#warmUp} compiles the kernels before replicas start.
     */
    static void forward(float[] x, float[] y, int n) {
        int done = forwardLanes(x, y, n);
        for (int i = done; i < n; i++) {
            y[i] = (float) ExactGelu.gelu(x[i], true);
        }
    }

    /** The whole vectors of {@link #forward}; returns how many elements were done. */
    private static int forwardLanes(float[] x, float[] y, int n) {
        int i = 0;
        for (int end = S.loopBound(n); i < end; i += S.length()) {
            FloatVector v = FloatVector.fromArray(S, x, i);
            FloatVector w = v.mul(NEG_INV_SQRT2);
            FloatVector a = w.abs();
            FloatVector a2 = a.mul(a);
            FloatVector t = ONE.div(a.fma(0.5f, 1f));
            FloatVector p = t.fma(0.17087277f, -0.82215223f).mul(t).add(1.48851587f).mul(t).add(-1.13520398f).mul(t)
                    .add(0.27886807f).mul(t).add(-0.18628806f).mul(t).add(0.09678418f).mul(t).add(0.37409196f).mul(t)
                    .add(1.00002368f).mul(t).add(-1.26551223f);
            // exp(P(t) - a²): exp(q) for q <= 0 (clamped at -87, where it is 1.6e-38), every step an exact IEEE operation
            // so that interpreted, C1- and C2-compiled code give the same bits: q = k ln 2 + r, |r| <= ln 2 / 2,
            // k rounded by adding 1.5 * 2^23, 2^k from the bits of that sum, e^r by its degree-7 Taylor polynomial.
            FloatVector qE = p.sub(a2).max(-87f);
            FloatVector zE = qE.fma(LOG2E, ROUND);
            FloatVector kE = zE.sub(ROUND);
            FloatVector rE = kE.fma(NEG_LN2_HI, qE).add(kE.mul(NEG_LN2_LO));
            FloatVector eE = rE.fma(1f / 5040, 1f / 720).fma(rE, INV_120).fma(rE, INV_24).fma(rE, INV_6)
                    .fma(rE, HALF).fma(rE, ONE).fma(rE, ONE)
                    .mul(((IntVector) zE.reinterpretShape(FloatLanes.INT_SPECIES, 0)).sub(ROUND_BITS - 127)
                            .lanewise(VectorOperators.LSHL, 23).reinterpretShape(S, 0));
            FloatVector r = t.mul(eE);
            r = r.blend(r.neg().add(2f), w.lt(0f));
            // This order (a² first, x last) ran twice as fast as computing x/2 first (C2's schedule around EXP).
            r.mul(0.5f).mul(v).intoArray(y, i);
        }
        return i;
    }

    /**
     * {@code dx[i] = dy[i] · (erfc(-x/√2)/2 + x exp(-x²/2)/√(2π))} for {@code i < n}: the whole vectors, then the rest
     * one by one, in separate methods as in {@link #forward}.
     */
    static void backward(float[] x, float[] dy, float[] dx, int n) {
        int done = backwardLanes(x, dy, dx, n);
        for (int i = done; i < n; i++) {
            dx[i] = (float) (dy[i] * ExactGelu.geluDerivative(x[i], true));
        }
    }

    /** The whole vectors of {@link #backward}; returns how many elements were done. */
    private static int backwardLanes(float[] x, float[] dy, float[] dx, int n) {
        int i = 0;
        for (int end = S.loopBound(n); i < end; i += S.length()) {
            FloatVector v = FloatVector.fromArray(S, x, i);
            FloatVector w = v.mul(NEG_INV_SQRT2);
            FloatVector a = w.abs();
            FloatVector a2 = a.mul(a);
            // exp(-a²), the density up to 1/√(2π): exp(q) for q <= 0 (clamped at -87, where it is 1.6e-38), every step an exact IEEE operation
            // so that interpreted, C1- and C2-compiled code give the same bits: q = k ln 2 + r, |r| <= ln 2 / 2,
            // k rounded by adding 1.5 * 2^23, 2^k from the bits of that sum, e^r by its degree-7 Taylor polynomial.
            FloatVector qD = a2.neg().max(-87f);
            FloatVector zD = qD.fma(LOG2E, ROUND);
            FloatVector kD = zD.sub(ROUND);
            FloatVector rD = kD.fma(NEG_LN2_HI, qD).add(kD.mul(NEG_LN2_LO));
            FloatVector eD = rD.fma(1f / 5040, 1f / 720).fma(rD, INV_120).fma(rD, INV_24).fma(rD, INV_6)
                    .fma(rD, HALF).fma(rD, ONE).fma(rD, ONE)
                    .mul(((IntVector) zD.reinterpretShape(FloatLanes.INT_SPECIES, 0)).sub(ROUND_BITS - 127)
                            .lanewise(VectorOperators.LSHL, 23).reinterpretShape(S, 0));
            FloatVector density = eD.mul(INV_SQRT_2PI);
            FloatVector t = ONE.div(a.fma(0.5f, 1f));
            FloatVector p = t.fma(0.17087277f, -0.82215223f).mul(t).add(1.48851587f).mul(t).add(-1.13520398f).mul(t)
                    .add(0.27886807f).mul(t).add(-0.18628806f).mul(t).add(0.09678418f).mul(t).add(0.37409196f).mul(t)
                    .add(1.00002368f).mul(t).add(-1.26551223f);
            // exp(P(t) - a²), as in forward: exp(q) for q <= 0 (clamped at -87, where it is 1.6e-38), every step an exact IEEE operation
            // so that interpreted, C1- and C2-compiled code give the same bits: q = k ln 2 + r, |r| <= ln 2 / 2,
            // k rounded by adding 1.5 * 2^23, 2^k from the bits of that sum, e^r by its degree-7 Taylor polynomial.
            FloatVector qE = p.sub(a2).max(-87f);
            FloatVector zE = qE.fma(LOG2E, ROUND);
            FloatVector kE = zE.sub(ROUND);
            FloatVector rE = kE.fma(NEG_LN2_HI, qE).add(kE.mul(NEG_LN2_LO));
            FloatVector eE = rE.fma(1f / 5040, 1f / 720).fma(rE, INV_120).fma(rE, INV_24).fma(rE, INV_6)
                    .fma(rE, HALF).fma(rE, ONE).fma(rE, ONE)
                    .mul(((IntVector) zE.reinterpretShape(FloatLanes.INT_SPECIES, 0)).sub(ROUND_BITS - 127)
                            .lanewise(VectorOperators.LSHL, 23).reinterpretShape(S, 0));
            FloatVector r = t.mul(eE);
            r = r.blend(r.neg().add(2f), w.lt(0f));
            FloatVector slope = r.mul(0.5f).add(v.mul(density));
            FloatVector.fromArray(S, dy, i).mul(slope).intoArray(dx, i);
        }
        return i;
    }
}
