package io.mugs.engine;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * The one vector shape of the engine's Vector API kernels ({@link GeluVectors}, {@link AttentionVectors},
 * {@link LayerNormVectors}): 8 float lanes, 256 bits, on every CPU. One shape, not the widest the CPU has, because C2
 * compiles Vector API code to registers only for shapes it has already seen intrinsified in that JVM: with the GELU on
 * 16 lanes (AVX-512's preferred species) beside the attention on 8, the GELU's loops fell back to the API's Java
 * implementation once the step ran, allocating about 100 MB of vector objects per training step (JFR: 6.5 GB in 10 s
 * from {@code GeluVectors}, one young collection per step). On 8 lanes for all three, nothing is allocated and the
 * GELU's forward and backward take 20 ms of the {@code fm} step instead of 35 (docs/performance.md, "One vector shape
 * and a small young generation"). 16 lanes alone are faster per element (1.0 against 1.7 ns forward), but not inside
 * the step. Loaded only when the JVM has {@code --add-modules jdk.incubator.vector} ({@link ExactGelu#VECTOR}).
 *
 * <pre>{@code
 * FloatVector v = FloatVector.fromArray(FloatLanes.SPECIES, x, i);   // x[i .. i + FloatLanes.LANES)
 * }</pre>
 */
final class FloatLanes {

    /** 256-bit float vectors. */
    static final VectorSpecies<Float> SPECIES = FloatVector.SPECIES_256;

    /**
     * The int lanes of the same shape, for reinterpreting float lanes as their bits and back
     * ({@code reinterpretShape(INT_SPECIES, 0)}): {@code reinterpretAsInts()} finds that species through a lookup
     * that a C2 compile without a profile did not fold to a constant ({@code -XX:+PrintIntrinsics}: "missing
     * constant ... vclass_to=LoadP"), and then ran the conversion, and every vector around it, on the API's allocating
     * Java fallback.
     */
    static final VectorSpecies<Integer> INT_SPECIES = IntVector.SPECIES_256;
    /** Float lanes per vector: 8. */
    static final int LANES = SPECIES.length();

    private FloatLanes() {
    }

    /**
     * A kernel's one-time JIT warm-up: {@link #run()} runs the body on the first call only (later callers wait for
     * it), so that C2 compiles the kernel before the training step needs it; Vector API code is 50-100x slower until
     * then (each vector an object).
     */
    static final class WarmUp {
        private final Runnable body;
        private volatile boolean done;

        WarmUp(Runnable body) {
            this.body = body;
        }

        void run() {
            if (done) {
                return;
            }
            synchronized (this) {
                if (!done) {
                    body.run();
                    done = true;
                }
            }
        }
    }

    /**
     * Whether the CPU has 256-bit float vectors (AVX2 or wider), so that {@link #SPECIES} compiles to registers; on a
     * CPU with narrower vectors the API would emulate them in Java, slower than the plain loops.
     */
    static boolean native256() {
        return FloatVector.SPECIES_PREFERRED.length() >= LANES;
    }
}
