package io.mugs.engine;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import org.nd4j.linalg.factory.Nd4j;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Which ND4J backend runs the graphs, and a fail-fast check that it can run here.
 *
 * <p>The CUDA build of ND4J 1.0.0-M2.1 ({@code nd4j-cuda-11.6}, classifier {@code linux-x86_64}) carries
 * machine code (SASS) for compute capability 3.7, 5.0, 5.2, 6.0, 6.1, 7.0, 7.5, 8.0 and 8.6 and no PTX (read from
 * the fat binaries in {@code libnd4jcuda.so}). Machine code for X.y runs on X.z when z &gt;= y, so Ada (8.9:
 * RTX 40xx, L4) runs the 8.6 code, while Hopper (9.0) and newer cannot run it at all:
 * {@link #requireSupported()} stops with a message saying so instead of failing later inside a kernel launch.
 *
 * <pre>{@code
 * Backend.requireSupported();
 * Backend.supports(8, 9);         // true: Ada runs the sm_86 code
 * log.info(Backend.describe());   // "CPU backend, OpenBLAS, 1 OpenMP thread(s)"
 * }</pre>
 */
public final class Backend {

    private static final Logger LOG = LoggerFactory.getLogger(Backend.class);

    /** Compute capabilities (major * 10 + minor) with machine code in nd4j-cuda-11.6 1.0.0-M2.1, ascending. */
    private static final int[] CUDA_KERNELS = {37, 50, 52, 60, 61, 70, 75, 80, 86};

    private Backend() {
    }

    /** True when the CUDA backend is loaded. */
    public static boolean isCuda() {
        return "CUDA".equalsIgnoreCase(String.valueOf(environment().get("backend")));
    }

    /** One line for logs and run manifests. */
    public static String describe() {
        Properties env = environment();
        if (isCuda()) {
            return "CUDA backend, devices " + cudaDevices(env);
        }
        return "CPU backend, " + env.getOrDefault("blas.vendor", "?") + ", " + env.getOrDefault("omp.threads", "?")
                + " OpenMP thread(s), " + env.getOrDefault("cores", "?") + " cores";
    }

    /**
     * Whether nd4j-cuda-11.6 1.0.0-M2.1 runs on a GPU of compute capability {@code major.minor}: true when it carries
     * machine code for the same major version and a minor version no higher (8.9 runs the 8.6 code; 9.0 has none).
     */
    public static boolean supports(int major, int minor) {
        for (int kernel : CUDA_KERNELS) {
            if (kernel / 10 == major && kernel % 10 <= minor) {
                return true;
            }
        }
        return false;
    }

    /** The one-line refusal for a GPU that {@link #supports(int, int)} rejects. */
    static String unsupportedMessage(String gpu, int major, int minor) {
        String reason = major * 10 + minor < CUDA_KERNELS[0]
                ? "below the oldest code in ND4J 1.0.0-M2.1 (CUDA 11.6), 3.7"
                : "and ND4J 1.0.0-M2.1 (CUDA 11.6) has no code for it (highest 8.6, which also serves 8.7 and 8.9 Ada; "
                        + "no PTX for 9.0 Hopper or newer)";
        return "GPU '" + gpu + "' has compute capability " + major + "." + minor + ", " + reason
                + ": use a GPU of compute capability 3.7 to 8.9, or drop -Pcuda / nd4j-cuda-11.6 to run on CPU.";
    }

    /**
     * Throws when a GPU is present that the bundled CUDA kernels do not support; logs a hint when the CPU backend
     * runs with more than one OpenMP thread (measured 2.5-3x slower on 2 shared cores).
     */
    public static void requireSupported() {
        Properties env = environment();
        if (isCuda()) {
            for (Map<?, ?> dev : devices(env)) {
                int major = Integer.parseInt(String.valueOf(dev.get("cuda.deviceMajor")));
                int minor = Integer.parseInt(String.valueOf(dev.get("cuda.deviceMinor")));
                if (!supports(major, minor)) {
                    throw new IllegalStateException(unsupportedMessage(String.valueOf(dev.get("cuda.deviceName")),
                            major, minor));
                }
            }
        } else {
            Object threads = env.get("omp.threads");
            if (threads != null && !"1".equals(threads.toString()) && System.getenv("OMP_NUM_THREADS") == null) {
                LOG.info("ND4J uses {} OpenMP threads; OMP_NUM_THREADS=1 was measured faster on small shared CPUs "
                        + "(docs/performance.md)", threads);
            }
        }
    }

    private static Properties environment() {
        return Nd4j.getExecutioner().getEnvironmentInformation();
    }

    private static List<Map<?, ?>> devices(Properties env) {
        List<Map<?, ?>> out = new ArrayList<>();
        if (env.get("cuda.devicesInformation") instanceof List<?> list) {
            for (Object o : list) {
                if (o instanceof Map<?, ?> m) {
                    out.add(m);
                }
            }
        }
        return out;
    }

    private static String cudaDevices(Properties env) {
        List<String> names = new ArrayList<>();
        for (Map<?, ?> d : devices(env)) {
            names.add(d.get("cuda.deviceName") + " (sm_" + d.get("cuda.deviceMajor") + d.get("cuda.deviceMinor") + ")");
        }
        return names.toString();
    }
}
