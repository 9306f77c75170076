package io.mugs.engine;

import java.util.List;
import org.nd4j.autodiff.functions.DifferentialFunction;
import org.nd4j.autodiff.samediff.internal.SameDiffOp;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.ops.OpContext;

/**
 * One op of an {@link ExecutionPlan} as it runs on every call: its context with arguments and arrays bound, its
 * output arrays, the placeholder and variable inputs to rebind, and how it executes (a copy, an alias that computes
 * nothing, a {@link Kernel}, or the native op, widened to every core for large matrix products), and which of its
 * outputs a {@link ReplicaMean.Hook} replaces after it ran.
 */
final class PlanStep {
    final SameDiffOp op;
    final DifferentialFunction fn;
    final OpContext context;
    final INDArray[] outputs;
    final List<PlanInputs.Binding> bindings;
    final boolean copy;
    final Kernel kernel;
    final boolean wide;
    final boolean alias;
    INDArray copySource;
    /** Indices of the outputs passed to the replica-mean hook (none without a hook). */
    int[] replicaMeans = new int[0];
    /** Per such output the rows its batch mean averaged, or 0 for a gradient. */
    long[] replicaMeanRows = new long[0];

    PlanStep(SameDiffOp op, OpContext context, INDArray[] outputs, List<PlanInputs.Binding> bindings,
             INDArray copySource, Kernel kernel, boolean wide, boolean alias) {
        this.op = op;
        this.fn = op.getOp();
        this.context = context;
        this.outputs = outputs;
        this.bindings = bindings;
        this.copySource = copySource;
        this.copy = copySource != null;
        this.kernel = kernel;
        this.wide = wide;
        this.alias = alias;
    }
}
