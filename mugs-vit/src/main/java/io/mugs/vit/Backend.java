package io.mugs.vit;

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
 * <p>The CUDA build of ND4J 1.0.0-M2.1 ({@code nd4j-cuda-11.6}, Maven profile {@code cuda}) carries kernels for
 * compute capability 3.7 to 8.6 and no PTX, so Hopper (9.0) and newer GPUs cannot run it: {@link #requireSupported()}
 * stops with a message saying so instead of failing later inside a kernel launch.
 *
 * <pre>{@code
 * Backend.requireSupported();
 * log.info(Backend.describe());   // "CPU backend, OpenBLAS, 1 OpenMP thread(s)"
 * }</pre>
 */
public final class Backend {

    private static final Logger LOG = LoggerFactory.getLogger(Backend.class);

    /** Highest compute capability (major * 10 + minor) with kernels in nd4j-cuda-11.6 1.0.0-M2.1. */
    public static final int MAX_CUDA_CAPABILITY = 86;

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
     * Throws when a GPU is present that the bundled CUDA kernels do not support; logs a hint when the CPU backend
     * runs with more than one OpenMP thread (measured 2.5-3x slower on 2 shared cores).
     */
    public static void requireSupported() {
        Properties env = environment();
        if (isCuda()) {
            for (Map<?, ?> dev : devices(env)) {
                int major = Integer.parseInt(String.valueOf(dev.get("cuda.deviceMajor")));
                int minor = Integer.parseInt(String.valueOf(dev.get("cuda.deviceMinor")));
                if (major * 10 + minor > MAX_CUDA_CAPABILITY) {
                    throw new IllegalStateException("GPU '" + dev.get("cuda.deviceName") + "' has compute capability "
                            + major + "." + minor + ", but ND4J 1.0.0-M2.1 (CUDA 11.6) has kernels only up to 8.6 "
                            + "(Ampere/Ada). Use an A100/A10/RTX 30xx/40xx-class GPU, or build without -Pcuda to run on CPU.");
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
