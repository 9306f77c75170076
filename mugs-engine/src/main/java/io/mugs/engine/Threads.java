package io.mugs.engine;

import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.nativeblas.NativeOps;
import org.nd4j.nativeblas.NativeOpsHolder;

/**
 * OpenMP threads per op. One thread runs the small element-wise ops of a training step fastest on these machines
 * (two threads lose to their start-up and to the data loader), but a large matrix product gains from every core:
 * [1576, 384] x [384, 1536] takes 9.9 ms on one thread and 5.2 ms on two. So the executor runs the process with
 * {@code OMP_NUM_THREADS} threads (1 in the launchers) and widens to all cores around matrix products of at least
 * {@code mugs.engine.parallelFlops} floating-point operations (default 2e8).
 *
 * <p>{@code -Dmugs.engine.threads=N} sets the wide count (default: the available processors); 1 turns it off.
 * {@link #narrowThisThread()} turns it off for the calling thread only: data-parallel replicas already keep every
 * core busy, one thread each.
 *
 * <pre>{@code
 * Threads.narrowThisThread();   // first thing in a replica's worker thread
 * }</pre>
 */
public final class Threads {

    private static final NativeOps OPS = NativeOpsHolder.getInstance().getDeviceNativeOps();
    private static final int BASE = Math.max(1, OPS.ompGetMaxThreads());
    private static final int WIDE = Integer.getInteger("mugs.engine.threads",
            Runtime.getRuntime().availableProcessors());
    private static final double MIN_FLOPS = Double.parseDouble(System.getProperty("mugs.engine.parallelFlops", "2e8"));

    private static final ThreadLocal<Boolean> NARROW_ONLY = ThreadLocal.withInitial(() -> false);

    private Threads() {
    }

    /** From now on, ops issued by the calling thread run on {@code OMP_NUM_THREADS} threads, never widened. */
    public static void narrowThisThread() {
        NARROW_ONLY.set(true);
        narrow();
    }

    /** Whether a matmul (or its backward, {@code backward}) of these inputs should run on every core. */
    static boolean wideMatmul(INDArray[] args, long[] iArgs, boolean backward) {
        if (WIDE <= BASE || args.length < 2 || NARROW_ONLY.get()) {
            return false;
        }
        INDArray a = args[0];
        boolean transposeA = iArgs.length > 0 && iArgs[0] != 0;
        long k = transposeA ? a.size(a.rank() - 2) : a.size(a.rank() - 1);
        long outLength = backward ? args[args.length - 1].length() : a.length() / k * (args[1].length() / k);
        double flops = (backward ? 4.0 : 2.0) * outLength * k;
        return a.rank() == 2 && flops >= MIN_FLOPS;
    }

    static void widen() {
        OPS.setOmpNumThreads(WIDE);
    }

    static void narrow() {
        OPS.setOmpNumThreads(BASE);
    }
}
