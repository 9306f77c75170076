package io.mugs.engine;

import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
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
 * <p>Java kernels ({@link CpuKernels}) split their rows the same way: {@link #forRows} runs ranges of rows on the
 * calling thread and on {@code wide - 1} helper threads when the work is at least {@code mugs.engine.parallelWork}
 * element operations (default 2^20; smaller kernels lost more to the hand-over than they gained on the shared
 * 2-core machine), so that no more threads than cores are busy.
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

    private static final long MIN_WORK = Long.getLong("mugs.engine.parallelWork", 1L << 20);

    private static final ThreadLocal<Boolean> NARROW_ONLY = ThreadLocal.withInitial(() -> false);
    private static volatile ExecutorService helpers;

    /** Work on rows {@code [from, to)}. */
    interface RowRange {
        void run(int from, int to);
    }

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

    /**
     * Runs {@code body} over rows {@code [0, rows)}: on the calling thread alone when the work ({@code rows *
     * workPerRow}) is small, the thread is narrowed (a replica) or one core is configured; otherwise split in
     * {@code wide} contiguous ranges, one on each of the calling thread and {@code wide - 1} helpers.
     */
    static void forRows(int rows, long workPerRow, RowRange body) {
        int parts = (int) Math.min(WIDE, rows);
        if (parts <= 1 || (long) rows * workPerRow < MIN_WORK || NARROW_ONLY.get()) {
            body.run(0, rows);
            return;
        }
        ExecutorService pool = helpers();
        @SuppressWarnings("unchecked")
        Future<?>[] futures = new Future<?>[parts - 1];
        for (int p = 1; p < parts; p++) {
            int from = (int) ((long) rows * p / parts);
            int to = (int) ((long) rows * (p + 1) / parts);
            futures[p - 1] = pool.submit(() -> body.run(from, to));
        }
        body.run(0, (int) ((long) rows / parts));
        for (Future<?> f : futures) {
            try {
                f.get();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException("interrupted while a kernel ran", e);
            } catch (java.util.concurrent.ExecutionException e) {
                throw e.getCause() instanceof RuntimeException r ? r : new IllegalStateException(e.getCause());
            }
        }
    }

    private static ExecutorService helpers() {
        ExecutorService h = helpers;
        if (h == null) {
            synchronized (Threads.class) {
                if (helpers == null) {
                    helpers = Executors.newFixedThreadPool(Math.max(1, WIDE - 1), r -> {
                        Thread t = new Thread(r, "mugs-kernel");
                        t.setDaemon(true);
                        return t;
                    });
                }
                h = helpers;
            }
        }
        return h;
    }

    static void widen() {
        OPS.setOmpNumThreads(WIDE);
    }

    static void narrow() {
        OPS.setOmpNumThreads(BASE);
    }
}
