package io.mugs.engine;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * The exact GELU, {@code y = x Φ(x) = x/2 · erfc(-x/√2)} (Hendrycks and Gimpel 2016; PyTorch's {@code nn.GELU()}),
 * and its gradient {@code dx = dy · (Φ(x) + x φ(x))} with {@code φ(x) = exp(-x²/2)/√(2π)}, as Java kernels on the
 * arrays' native memory (CPU backend): one pass each way where SameDiff's graph takes 4 ops forward and 11
 * backward. {@link GeluFusion} puts them into a plan; {@code GeluKernelTest} checks them against the libnd4j ops.
 *
 * <p>DOUBLE arrays: {@code erfc} by W. J. Cody's rational Chebyshev approximations (Math. Comp. 23, 1969; about
 * 1e-16 relative), in a scalar loop. FLOAT arrays: the Chebyshev fit of Numerical Recipes ({@code erfcc}, §6.2:
 * one exponential, fractional error below 1.2e-7, enough for float results), on the JDK's Vector API
 * ({@link GeluVectors}) when {@link #VECTOR}, else in a scalar loop in {@code double} (which loses to libnd4j).
 * Works on any shape (as a flat run of elements) of contiguous FLOAT or DOUBLE arrays, split over the cores in
 * chunks of {@link #CHUNK} elements for large arrays.
 *
 * <pre>{@code
 * double y = ExactGelu.gelu(x, false);           // x/2 · erfc(-x/√2), to double precision
 * }</pre>
 */
final class ExactGelu {

    static final double INV_SQRT2 = 0.7071067811865476;
    static final double TWO_OVER_SQRT_PI = 1.1283791670955126;
    private static final double INV_SQRT_2PI = 0.3989422804014327;
    private static final double INV_SQRT_PI = 0.5641895835477563;

    /** Elements per work unit handed to {@link Threads#forRows}. */
    private static final int CHUNK = 2048;

    private ExactGelu() {
    }

    /** {@code erfc(z)} to double precision (Cody 1969: three rational approximations on |z| ranges). */
    static double erfc(double z) {
        double a = Math.abs(z);
        double r;
        if (a < 0.46875) {
            double s = a * a;
            double num = ((((0.185777706184603153 * s + 3.16112374387056560) * s + 113.864154151050156) * s
                    + 377.485237685302021) * s + 3209.37758913846947);
            double den = ((((s + 23.6012909523441209) * s + 244.024637934444173) * s + 1282.61652607737228) * s
                    + 2844.23683343917062);
            return 1 - z * num / den;
        } else if (a <= 4) {
            double num = (((((((2.15311535474403846e-8 * a + 0.564188496988670089) * a + 8.88314979438837594) * a
                    + 66.1191906371416295) * a + 298.635138197400131) * a + 881.952221241769090) * a
                    + 1712.04761263407058) * a + 2051.07837782607147) * a + 1230.33935479799725;
            double den = (((((((a + 15.7449261107098347) * a + 117.693950891312499) * a + 537.181101862009858) * a
                    + 1621.38957456669019) * a + 3290.79923573345963) * a + 4362.61909014324716) * a
                    + 3439.36767414372164) * a + 1230.33935480374942;
            r = Math.exp(-a * a) * num / den;
        } else if (a < 27) {
            double s = 1 / (a * a);
            double num = ((((0.0163153871373020978 * s + 0.305326634961232344) * s + 0.360344899949804439) * s
                    + 0.125781726111229246) * s + 0.0160837851487422766) * s + 6.58749161529837803e-4;
            double den = ((((s + 2.56852019228982242) * s + 1.87295284992346047) * s + 0.527905102951428412) * s
                    + 0.0605183413124413191) * s + 2.33520497626869185e-3;
            r = Math.exp(-a * a) * (INV_SQRT_PI - s * num / den) / a;
        } else {
            r = 0;
        }
        return z < 0 ? 2 - r : r;
    }

    /**
     * {@code erfc(z)} to float precision (Numerical Recipes' {@code erfcc}: fractional error below 1.2e-7): with
     * {@code a = |z|}, {@code t = 1/(1 + a/2)}, {@code erfc(a) = t exp(-a² + P(t))} for a degree-9 polynomial P;
     * {@code erfc(-a) = 2 - erfc(a)}. No branch but the sign, one division, one exponential.
     */
    static double erfcSingle(double z) {
        double a = Math.abs(z);
        double t = 1 / (1 + 0.5 * a);
        double p = -1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806
                + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277))))))));
        double r = t * CpuKernels.expNonPositive(p - a * a);
        return z < 0 ? 2 - r : r;
    }

    /** {@code x/2 · erfc(-x/√2)}; {@code single}: erfc to float precision. */
    static double gelu(double x, boolean single) {
        double w = -x * INV_SQRT2;
        return 0.5 * x * (single ? erfcSingle(w) : erfc(w));
    }

    /** {@code Φ(x) + x φ(x)}, the derivative of {@link #gelu}; {@code single}: to float precision. */
    static double geluDerivative(double x, boolean single) {
        double w = -x * INV_SQRT2;
        double e = single ? CpuKernels.expNonPositive(-0.5 * x * x) : Math.exp(-0.5 * x * x);
        return 0.5 * (single ? erfcSingle(w) : erfc(w)) + x * INV_SQRT_2PI * e;
    }

    /**
     * Whether FLOAT arrays go through {@link GeluVectors} (the JDK's Vector API): the JVM was started with
     * {@code --add-modules jdk.incubator.vector}, {@code mugs.engine.vectorApi} is not {@code false} and the CPU has
     * 256-bit vectors ({@link FloatLanes#native256()}).
     */
    static final boolean VECTOR = vectorApi();

    private static boolean vectorApi() {
        if (!Boolean.parseBoolean(System.getProperty("mugs.engine.vectorApi", "true"))
                || ModuleLayer.boot().findModule("jdk.incubator.vector").isEmpty()) {
            return false;
        }
        try {
            return FloatLanes.native256();
        } catch (LinkageError e) {
            return false;
        }
    }

    /** The forward kernel: {@code y = gelu(x)}, same shape. */
    static Kernel forward(INDArray[] args, INDArray y) {
        return forward(args, y, VECTOR);
    }

    /** The forward kernel; {@code vector}: FLOAT arrays through {@link GeluVectors}. */
    static Kernel forward(INDArray[] args, INDArray y, boolean vector) {
        long n = y.length();
        boolean single = y.dataType() == DataType.FLOAT;
        if (single && vector) {
            GeluVectors.warmUp();
            return new Kernel().java(args, in -> {
                NativeRows x = NativeRows.of(in[0]);
                NativeRows out = NativeRows.of(y);
                forFloatChunks(n, 10, (from, len, a, b, c) -> {
                    x.read(from, a, len);
                    GeluVectors.forward(a, b, len);
                    out.write(from, b, len);
                });
            });
        }
        return new Kernel().java(args, in -> {
            NativeRows x = NativeRows.of(in[0]);
            NativeRows out = NativeRows.of(y);
            forChunks(n, 40, (from, len, buf, unused) -> {
                x.read(from, buf, len);
                if (single) {
                    for (int i = 0; i < len; i++) {
                        buf[i] = gelu(buf[i], true);
                    }
                } else {
                    for (int i = 0; i < len; i++) {
                        buf[i] = gelu(buf[i], false);
                    }
                }
                out.write(from, buf, len);
            });
        });
    }

    /** The backward kernel: {@code dx = dy · gelu'(x)} from {@code x} and {@code dy}, all of one shape. */
    static Kernel backward(INDArray[] args, INDArray dx) {
        return backward(args, dx, VECTOR);
    }

    /** The backward kernel; {@code vector}: FLOAT arrays through {@link GeluVectors}. */
    static Kernel backward(INDArray[] args, INDArray dx, boolean vector) {
        long n = dx.length();
        boolean single = dx.dataType() == DataType.FLOAT;
        if (single && vector) {
            GeluVectors.warmUp();
            return new Kernel().java(args, in -> {
                NativeRows x = NativeRows.of(in[0]);
                NativeRows dy = NativeRows.of(in[1]);
                NativeRows out = NativeRows.of(dx);
                forFloatChunks(n, 15, (from, len, a, b, c) -> {
                    x.read(from, a, len);
                    dy.read(from, b, len);
                    GeluVectors.backward(a, b, c, len);
                    out.write(from, c, len);
                });
            });
        }
        return new Kernel().java(args, in -> {
            NativeRows x = NativeRows.of(in[0]);
            NativeRows dy = NativeRows.of(in[1]);
            NativeRows out = NativeRows.of(dx);
            forChunks(n, 60, (from, len, buf, grad) -> {
                x.read(from, buf, len);
                dy.read(from, grad, len);
                if (single) {
                    for (int i = 0; i < len; i++) {
                        buf[i] = grad[i] * geluDerivative(buf[i], true);
                    }
                } else {
                    for (int i = 0; i < len; i++) {
                        buf[i] = grad[i] * geluDerivative(buf[i], false);
                    }
                }
                out.write(from, buf, len);
            });
        });
    }

    interface FloatChunkBody {
        void run(long from, int len, float[] a, float[] b, float[] c);
    }

    /** {@link #forChunks} with three float buffers per range. */
    static void forFloatChunks(long n, long workPerElement, FloatChunkBody body) {
        int chunks = (int) ((n + CHUNK - 1) / CHUNK);
        Threads.forRows(chunks, workPerElement * CHUNK, (first, last) -> {
            float[] a = new float[CHUNK];
            float[] b = new float[CHUNK];
            float[] c = new float[CHUNK];
            for (int k = first; k < last; k++) {
                long from = (long) k * CHUNK;
                body.run(from, (int) Math.min(CHUNK, n - from), a, b, c);
            }
        });
    }

    private interface ChunkBody {
        void run(long from, int len, double[] a, double[] b);
    }

    /** Runs {@code body} over [0, n) in chunks of {@link #CHUNK}, split over the cores for large n. */
    private static void forChunks(long n, long workPerElement, ChunkBody body) {
        int chunks = (int) ((n + CHUNK - 1) / CHUNK);
        Threads.forRows(chunks, workPerElement * CHUNK, (first, last) -> {
            double[] a = new double[CHUNK];
            double[] b = new double[CHUNK];
            for (int c = first; c < last; c++) {
                long from = (long) c * CHUNK;
                body.run(from, (int) Math.min(CHUNK, n - from), a, b);
            }
        });
    }
}
