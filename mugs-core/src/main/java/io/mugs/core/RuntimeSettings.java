package io.mugs.core;

import java.lang.reflect.Method;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.nd4j.linalg.factory.Nd4j;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The JVM and native settings every process that trains or evaluates needs, applied from Java for mains started
 * without the {@code mugs} launcher (from an IDE, or {@code java -cp}). The launcher passes the same values on the
 * command line: {@code -Xmx6g}, JavaCPP's native-memory bounds (ND4J frees native buffers only when the Java GC
 * runs, so without a bound the process grows until the system kills it) and {@code OMP_NUM_THREADS=1} (one OpenMP
 * thread runs the many small ops of a step fastest; the engine widens around large matrix products).
 *
 * <p>{@link #apply()} must run before anything touches ND4J or JavaCPP: it sets the JavaCPP properties that are not
 * set already, and when {@code OMP_NUM_THREADS} is unset, sets one OpenMP thread through ND4J. Properties set on the
 * command line are kept. When JavaCPP was loaded before the call, its bounds can no longer change: each such
 * bound is named in one warning (logged and returned). The heap size cannot be changed from Java; a heap below
 * {@link #MIN_HEAP_BYTES} is reported the same way. Nor can glibc's malloc settings, which it reads from the
 * environment when the process starts: the launcher also sets {@code MALLOC_MMAP_THRESHOLD_=131072}, which kept
 * freed native memory from staying resident (ViT-S/16, two replicas: 4.27 instead of 4.62 GB peak RSS); set it in
 * an IDE's run configuration too when memory matters.
 *
 * <pre>{@code
 * public static void main(String[] args) {
 *     RuntimeSettings.apply();          // first line of a main
 *     ...
 * }
 * }</pre>
 */
public final class RuntimeSettings {

    /** The launcher's heap, {@code -Xmx6g}. */
    public static final String MAX_HEAP = "6g";
    /** {@code org.bytedeco.javacpp.maxphysicalbytes}: the process's resident-size bound. */
    public static final String MAX_PHYSICAL_BYTES = "12G";
    /** {@code org.bytedeco.javacpp.maxbytes}: the bound on JavaCPP's native allocations. */
    public static final String MAX_BYTES = "8G";
    /** Heaps below this get a warning (training loads images and metrics on the heap). */
    public static final long MIN_HEAP_BYTES = 2L << 30;

    static final String MAX_PHYSICAL_BYTES_PROPERTY = "org.bytedeco.javacpp.maxphysicalbytes";
    static final String MAX_BYTES_PROPERTY = "org.bytedeco.javacpp.maxbytes";

    private static final Logger LOG = LoggerFactory.getLogger(RuntimeSettings.class);

    private RuntimeSettings() {
    }

    /**
     * The JVM options the launcher passes, in order: heap, the JavaCPP bounds, the serial collector and its young
     * generation, then the JDK's Vector API module (the engine's fused GELU kernels use it; without it they are not on by default).
     *
     * <p>The serial collector: the arrays of a training step live in native memory, the Java heap holds little
     * (tens of MB), and G1 grows its young generation after the short burst of garbage that compiling the vector
     * kernels makes at start; the larger heap and the native buffers that wait longer for their owners' collection
     * raised peak RSS of the {@code fm} step from 0.64 to 0.79-0.89 GB at the same speed (docs/performance.md).
     * A young generation of 32 MB ({@code -Xmn32m}): the step's own Java garbage fits it, and the native buffers
     * that die with their Java owners are freed at each minor collection instead of piling up behind a larger one;
     * peak RSS of the {@code fm} step fell from 0.62 to 0.51 GB at the same speed (docs/performance.md, "One vector
     * shape and a small young generation").
     */
    public static List<String> launcherJvmOptions() {
        return List.of("-Xmx" + MAX_HEAP, "-D" + MAX_PHYSICAL_BYTES_PROPERTY + "=" + MAX_PHYSICAL_BYTES,
                "-D" + MAX_BYTES_PROPERTY + "=" + MAX_BYTES, "-XX:+UseSerialGC", "-Xmn32m",
                "--add-modules", "jdk.incubator.vector");
    }

    /**
     * Applies the settings that are not in place yet (see the class comment).
     *
     * @return the warnings logged, one line each: settings that came too late to take effect
     */
    public static List<String> apply() {
        List<String> warnings = new ArrayList<>();
        Map<String, String> wanted = new LinkedHashMap<>();
        wanted.put(MAX_PHYSICAL_BYTES_PROPERTY, MAX_PHYSICAL_BYTES);
        wanted.put(MAX_BYTES_PROPERTY, MAX_BYTES);
        Map<String, String> setHere = new LinkedHashMap<>();
        wanted.forEach((key, value) -> {
            if (System.getProperty(key) == null) {
                System.setProperty(key, value);
                setHere.put(key, value);
            }
        });
        if (!setHere.isEmpty()) {
            checkJavaCpp(setHere, warnings);
        }
        if (System.getenv("OMP_NUM_THREADS") == null) {
            oneOpenMpThread(warnings);
        }
        long heap = Runtime.getRuntime().maxMemory();
        if (heap < MIN_HEAP_BYTES) {
            warnings.add(String.format("the Java heap is %d MB; start the JVM with -Xmx%s (the mugs launcher does)",
                    heap >> 20, MAX_HEAP));
        }
        warnings.forEach(LOG::warn);
        return warnings;
    }

    /** Reads back JavaCPP's bounds: a class loaded before the properties were set keeps its old ones. */
    private static void checkJavaCpp(Map<String, String> setHere, List<String> warnings) {
        Class<?> pointer;
        try {
            pointer = Class.forName("org.bytedeco.javacpp.Pointer");
        } catch (ClassNotFoundException | LinkageError e) {
            return;   // no JavaCPP on the class path (a backend without it): nothing to bound
        }
        List<String> kept = new ArrayList<>();
        List<String> options = new ArrayList<>();
        for (Map.Entry<String, String> e : setHere.entrySet()) {
            String getter = e.getKey().equals(MAX_BYTES_PROPERTY) ? "maxBytes" : "maxPhysicalBytes";
            try {
                Method parse = pointer.getMethod("parseBytes", String.class, long.class);
                long want = (long) parse.invoke(null, e.getValue(), Runtime.getRuntime().maxMemory());
                long have = (long) pointer.getMethod(getter).invoke(null);
                if (have != want) {
                    kept.add(String.format("%s %d MB instead of %s", e.getKey(), have >> 20, e.getValue()));
                    options.add("-D" + e.getKey() + "=" + e.getValue());
                }
            } catch (ReflectiveOperationException | LinkageError ex) {
                warnings.add("cannot check JavaCPP's " + e.getKey() + " (" + ex + "): pass -D" + e.getKey() + "="
                        + e.getValue() + " to the JVM");
            }
        }
        if (!kept.isEmpty()) {
            warnings.add("JavaCPP was loaded before RuntimeSettings.apply(), so its native-memory bounds stay "
                    + String.join(", ", kept) + ": call RuntimeSettings.apply() first in main, or pass "
                    + String.join(" ", options) + " to the JVM");
        }
    }

    /** One OpenMP thread through the native backend, as {@code OMP_NUM_THREADS=1} would give. */
    private static void oneOpenMpThread(List<String> warnings) {
        try {
            Nd4j.getEnvironment();   // loads the backend, which NativeOpsHolder needs
            Class<?> holder = Class.forName("org.nd4j.nativeblas.NativeOpsHolder");
            Object ops = holder.getMethod("getDeviceNativeOps").invoke(holder.getMethod("getInstance").invoke(null));
            Class.forName("org.nd4j.nativeblas.NativeOps").getMethod("setOmpNumThreads", int.class).invoke(ops, 1);
            LOG.info("OMP_NUM_THREADS is not set: using 1 OpenMP thread (set OMP_NUM_THREADS to choose)");
        } catch (ClassNotFoundException e) {
            // a backend without OpenMP (CUDA): nothing to set
        } catch (ReflectiveOperationException | LinkageError | RuntimeException e) {
            warnings.add("cannot set one OpenMP thread (" + e + "): set OMP_NUM_THREADS=1 in the environment");
        }
    }
}
