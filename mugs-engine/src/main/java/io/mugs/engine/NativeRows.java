package io.mugs.engine;

import java.nio.DoubleBuffer;
import java.nio.FloatBuffer;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * Reads and writes runs of a contiguous FLOAT or DOUBLE array's native memory (CPU backend) as {@code double}s,
 * through an NIO view of its buffer: no copy of the array, no JNI call per element. Used by {@link CpuKernels}.
 *
 * <pre>{@code
 * NativeRows x = NativeRows.of(array);          // [N, D], c order, default strides
 * double[] row = new double[D];
 * x.read(5 * D, row, D);  x.write(5 * D, row, D);
 * }</pre>
 */
final class NativeRows {

    private final FloatBuffer floats;
    private final DoubleBuffer doubles;
    private final int offset;
    private final long length;
    private final ThreadLocal<float[]> staging = ThreadLocal.withInitial(() -> new float[0]);

    private NativeRows(INDArray a) {
        if (!Rewrites.contiguous(a)) {
            throw new IllegalStateException("a Java kernel needs a contiguous c-order array, got shape "
                    + java.util.Arrays.toString(a.shape()) + " strides " + java.util.Arrays.toString(a.stride()));
        }
        if (a.data().length() > Integer.MAX_VALUE) {
            throw new IllegalStateException("a Java kernel handles arrays of at most 2^31 elements");
        }
        this.offset = (int) a.offset();
        this.length = a.length();
        if (a.dataType() == DataType.FLOAT) {
            floats = a.data().asNioFloat();
            doubles = null;
        } else if (a.dataType() == DataType.DOUBLE) {
            doubles = a.data().asNioDouble();
            floats = null;
        } else {
            throw new IllegalStateException("a Java kernel handles FLOAT and DOUBLE, not " + a.dataType());
        }
    }

    /** A view of {@code a}'s memory (c order, default strides, FLOAT or DOUBLE). */
    static NativeRows of(INDArray a) {
        return new NativeRows(a);
    }

    /** Whether Java kernels can work on {@code a}. */
    static boolean supports(INDArray a) {
        return (a.dataType() == DataType.FLOAT || a.dataType() == DataType.DOUBLE) && Rewrites.contiguous(a)
                && a.data().length() <= Integer.MAX_VALUE;
    }

    long length() {
        return length;
    }

    /** {@code dst[0..n) = this[from..from+n)}. */
    void read(long from, double[] dst, int n) {
        int at = offset + (int) from;
        if (doubles != null) {
            doubles.get(at, dst, 0, n);
            return;
        }
        float[] f = buffer(n);
        floats.get(at, f, 0, n);
        for (int i = 0; i < n; i++) {
            dst[i] = f[i];
        }
    }

    /** {@code this[from..from+n) = src[0..n)} (rounded to float for FLOAT arrays). */
    void write(long from, double[] src, int n) {
        int at = offset + (int) from;
        if (doubles != null) {
            doubles.put(at, src, 0, n);
            return;
        }
        float[] f = buffer(n);
        for (int i = 0; i < n; i++) {
            f[i] = (float) src[i];
        }
        floats.put(at, f, 0, n);
    }

    /** {@code dst[0..n) = this[from..from+n)} of a FLOAT array, without conversion. */
    void read(long from, float[] dst, int n) {
        floats.get(offset + (int) from, dst, 0, n);
    }

    /** {@code this[from..from+n) = src[0..n)} of a FLOAT array, without conversion. */
    void write(long from, float[] src, int n) {
        floats.put(offset + (int) from, src, 0, n);
    }

    private float[] buffer(int n) {
        float[] f = staging.get();
        if (f.length < n) {
            f = new float[n];
            staging.set(f);
        }
        return f;
    }
}
