package io.mugs.engine;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * {@link Exponential}'s FLOAT kernel on the JDK's Vector API ({@code jdk.incubator.vector}, JDK 17), in the 8 lanes of
 * {@link FloatLanes}: {@code exp(x) = 2^k e^r} with {@code x = k ln 2 + r}, {@code |r| <= ln 2 / 2}, {@code k} rounded
 * by adding 1.5 * 2^23, {@code 2^k} from the bits of that sum and {@code e^r} by its degree-7 Taylor polynomial
 * (truncation below 5e-9; about 1 ulp in all). Only exact IEEE operations lane by lane, as in {@link GeluVectors}: the
 * API's own {@code EXP} is SVML once compiled and {@code Math.exp} before, and a run must give the same bits however
 * far the JIT has got; {@link Exponential#expSingle} computes one lane the same way, bit for bit. Lanes outside
 * {@code [-87, 88.376]} (where {@code 2^k} leaves the normal floats) are recomputed by {@link Math#exp}, so
 * overflow gives infinity and the far negative side the subnormals; NaN stays NaN. The loop body is written out in
 * full (C2 keeps vectors in registers only within one compiled method). Loaded only when {@link ExactGelu#VECTOR}.
 *
 * <pre>{@code
 * ExpVectors.exp(x, y, n);          // y[i] = exp(x[i]) for i < n
 * }</pre>
 */
final class ExpVectors {

    private static final VectorSpecies<Float> S = FloatLanes.SPECIES;
    private static final FloatLanes.WarmUp WARM_UP = new FloatLanes.WarmUp(ExpVectors::exercise);
    // The exponential's constants in lanes; GeluVectors' inlined exponentials use them too.
    static final FloatVector ONE = FloatVector.broadcast(S, 1f);
    static final FloatVector HALF = FloatVector.broadcast(S, 0.5f);
    static final FloatVector INV_6 = FloatVector.broadcast(S, 1f / 6);
    static final FloatVector INV_24 = FloatVector.broadcast(S, 1f / 24);
    static final FloatVector INV_120 = FloatVector.broadcast(S, 1f / 120);
    static final FloatVector LOG2E = FloatVector.broadcast(S, Exponential.LOG2E);
    static final FloatVector ROUND = FloatVector.broadcast(S, Exponential.ROUND);
    static final int ROUND_BITS = Float.floatToRawIntBits(Exponential.ROUND);
    static final FloatVector NEG_LN2_HI = FloatVector.broadcast(S, Exponential.NEG_LN2_HI);
    static final FloatVector NEG_LN2_LO = FloatVector.broadcast(S, Exponential.NEG_LN2_LO);

    private ExpVectors() {
    }

    /** Runs the kernel often enough for C2 to compile it (as {@link GeluVectors#warmUp}), once per JVM. */
    static void warmUp() {
        WARM_UP.run();
    }

    private static void exercise() {
        int n = 2 * S.length() + 3;
        float[] x = new float[n];
        float[] y = new float[n];
        for (int i = 0; i < n; i++) {
            x[i] = (i - n / 2) * 0.91f;
        }
        for (int k = 0; k < 20_000; k++) {
            exp(x, y, n);
        }
    }

    /** {@code y[i] = exp(x[i])} for {@code i < n}. */
    static void exp(float[] x, float[] y, int n) {
        int i = 0;
        for (int end = S.loopBound(n); i < end; i += S.length()) {
            FloatVector q = FloatVector.fromArray(S, x, i);
            FloatVector z = q.fma(LOG2E, ROUND);
            FloatVector k = z.sub(ROUND);
            FloatVector r = k.fma(NEG_LN2_HI, q).add(k.mul(NEG_LN2_LO));
            FloatVector e = r.fma(1f / 5040, 1f / 720).fma(r, INV_120).fma(r, INV_24).fma(r, INV_6)
                    .fma(r, HALF).fma(r, ONE).fma(r, ONE)
                    .mul(((IntVector) z.reinterpretShape(FloatLanes.INT_SPECIES, 0)).sub(ROUND_BITS - 127)
                            .lanewise(VectorOperators.LSHL, 23).reinterpretShape(S, 0));
            e.intoArray(y, i);
            VectorMask<Float> outside = q.lt(Exponential.LOW).or(q.compare(VectorOperators.GT, Exponential.HIGH));
            if (outside.anyTrue()) {
                for (int j = i; j < i + S.length(); j++) {
                    y[j] = Exponential.expSingle(x[j]);
                }
            }
        }
        for (; i < n; i++) {
            y[i] = Exponential.expSingle(x[i]);
        }
    }
}
