package io.mugs.engine;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.ops.DynamicCustomOp;
import org.nd4j.linalg.api.ops.OpContext;
import org.nd4j.linalg.factory.Nd4j;

/**
 * The machine's matrix-product rate as the engine sees it: GFLOP/s of an {@code n x n x n} fp32 {@code matmul} op
 * (the native op the planned executor runs, oneDNN in the default CPU build), best of {@code reps}, on one OpenMP
 * thread and widened to every core as the executor widens large products. Benchmarks divide a step's matrix-product
 * FLOPs ({@link GraphExecutor#matmulFlopsPerRun()}) by its time and by this rate to show how far the step is from
 * the limit.
 *
 * <pre>{@code
 * MatmulRate.Rate peak = MatmulRate.measure(1024, 5);
 * double fraction = stepFlops / stepSeconds / 1e9 / peak.best();
 * }</pre>
 */
public final class MatmulRate {

    /** GFLOP/s on the base thread count and on every core; {@link #best()} is the larger. */
    public record Rate(int n, double narrow, double wide) {
        public double best() {
            return Math.max(narrow, wide);
        }
    }

    private MatmulRate() {
    }

    /** Measures both rates for {@code n x n x n} products, the best of {@code reps} after one warm-up each. */
    public static Rate measure(int n, int reps) {
        if (n < 16 || reps < 1) {
            throw new IllegalArgumentException("MatmulRate needs n >= 16 and reps >= 1, got n=" + n + " reps=" + reps);
        }
        INDArray a = Nd4j.rand(DataType.FLOAT, n, n);
        INDArray b = Nd4j.rand(DataType.FLOAT, n, n);
        INDArray c = Nd4j.create(DataType.FLOAT, n, n);
        DynamicCustomOp op = DynamicCustomOp.builder("matmul").build();
        try (OpContext oc = Nd4j.getExecutioner().buildContext()) {
            oc.setInputArrays(a, b);
            oc.setOutputArrays(c);
            oc.setIArguments(0, 0, 0);
            oc.setTArguments(1.0, 0.0);
            double flops = 2.0 * n * n * n;
            double narrow = flops / best(op, oc, reps) / 1e9;
            Threads.widen();
            double wide;
            try {
                wide = flops / best(op, oc, reps) / 1e9;
            } finally {
                Threads.narrow();
            }
            return new Rate(n, narrow, wide);
        } catch (Exception e) {
            throw e instanceof RuntimeException r ? r : new IllegalStateException(e);
        } finally {
            a.close();
            b.close();
            c.close();
        }
    }

    private static double best(DynamicCustomOp op, OpContext oc, int reps) {
        Nd4j.exec(op, oc);
        double min = Double.MAX_VALUE;
        for (int i = 0; i < reps; i++) {
            long s = System.nanoTime();
            Nd4j.exec(op, oc);
            min = Math.min(min, (System.nanoTime() - s) / 1e9);
        }
        return min;
    }
}
