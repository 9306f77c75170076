package io.mugs.engine;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * The element-wise exponential {@code y = exp(x)} of FLOAT arrays as a Java kernel (kernel {@code exp}; libnd4j's
 * legacy op of that name): the InfoNCE losses' {@code exp(x - max)} over the queue logits ({@code [V*B, K]}, four
 * calls a step with the backward) took 11 ms of the {@code fm} step at about 3.5 ns an element in libnd4j. Runs on
 * the JDK's Vector API ({@link ExpVectors}) in chunks of the arrays' native memory, split over the cores for large
 * arrays ({@link Threads#forRows}); without the Vector API, and for DOUBLE, the native op runs (a plain-Java loop
 * would lose to it). Checked against {@link Math#exp} and libnd4j's op by {@code ExpKernelTest}.
 *
 * <pre>{@code
 * Kernel k = Exponential.forward(x, y);   // null where the native op should run
 * }</pre>
 */
final class Exponential {

    /** Lanes below this are recomputed in double: {@code 2^k} would leave the normal floats. */
    static final float LOW = -87f;
    /** Lanes above this are recomputed in double: {@code k} would reach 128. */
    static final float HIGH = 88.376f;
    static final float LOG2E = 1.442695f;
    /** 1.5 * 2^23: adding it rounds a float of magnitude below 2^22 to an integer, kept in the low mantissa bits. */
    static final float ROUND = 12582912f;
    static final float NEG_LN2_HI = -0.693359375f;
    static final float NEG_LN2_LO = 2.12194440e-4f;

    /**
     * Smaller arrays stay on the native op: a kernel call costs a few microseconds of set-up (the arrays' buffers as
     * NIO views), 7 us for [6, 32] against 3 us native, while [192, 4096] runs at 0.8-1.0 ns an element against
     * 2.0-3.1 (docs/performance.md, "The exponential").
     */
    static final int MIN_ELEMENTS = 1 << 14;

    private Exponential() {
    }

    /**
     * The kernel computing {@code y = exp(x)}, or {@code null} when the native op should run: no Vector API, not
     * FLOAT, fewer than {@link #MIN_ELEMENTS} elements, or arrays the kernels cannot read in place.
     */
    static Kernel forward(INDArray x, INDArray y) {
        if (!ExactGelu.VECTOR || x.dataType() != DataType.FLOAT || y.dataType() != DataType.FLOAT
                || x.length() != y.length() || x.length() < MIN_ELEMENTS || !NativeRows.supports(x)
                || !NativeRows.supports(y)) {
            return null;
        }
        ExpVectors.warmUp();
        long n = y.length();
        return new Kernel().java(new INDArray[] {x}, in -> {
            NativeRows from = NativeRows.of(in[0]);
            NativeRows to = NativeRows.of(y);
            ExactGelu.forFloatChunks(n, 8, (at, len, a, b, unused) -> {
                from.read(at, a, len);
                ExpVectors.exp(a, b, len);
                to.write(at, b, len);
            });
        });
    }

    /**
     * One lane of {@link ExpVectors#exp}, the same operations in plain Java float arithmetic (so the same bits); outside
     * {@code [LOW, HIGH]}, {@link Math#exp} rounded to float.
     */
    static float expSingle(float x) {
        if (!(x >= LOW && x <= HIGH)) {
            return (float) Math.exp(x);
        }
        float z = Math.fma(x, LOG2E, ROUND);
        float k = z - ROUND;
        float r = Math.fma(k, NEG_LN2_HI, x) + k * NEG_LN2_LO;
        float e = Math.fma(r, 1f / 5040, 1f / 720);
        e = Math.fma(e, r, 1f / 120);
        e = Math.fma(e, r, 1f / 24);
        e = Math.fma(e, r, 1f / 6);
        e = Math.fma(e, r, 0.5f);
        e = Math.fma(e, r, 1f);
        e = Math.fma(e, r, 1f);
        return e * Float.intBitsToFloat((Float.floatToRawIntBits(z) - (Float.floatToRawIntBits(ROUND) - 127)) << 23);
    }
}
