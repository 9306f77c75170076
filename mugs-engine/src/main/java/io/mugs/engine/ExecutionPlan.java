package io.mugs.engine;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.nd4j.autodiff.functions.DifferentialFunction;
import org.nd4j.autodiff.listeners.At;
import org.nd4j.autodiff.listeners.Listener;
import org.nd4j.autodiff.listeners.Operation;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.autodiff.samediff.internal.SameDiffOp;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.ops.CustomOp;
import org.nd4j.linalg.api.ops.Op;
import org.nd4j.linalg.api.ops.OpContext;
import org.nd4j.linalg.api.ops.ScalarOp;
import org.nd4j.linalg.factory.Nd4j;

/**
 * One input signature's execution of a SameDiff graph: the ops in a fixed order, one {@link OpContext} per op with
 * its arguments and arrays bound once, every intermediate array assigned to a pooled buffer that is reused as soon
 * as the value it held has been read for the last time.
 *
 * <p>The plan is built ({@link PlanBuilder}) by running the graph once (the first call's results are real),
 * recording for every op the arrays it read and wrote. Later runs only rebind the placeholders and variables whose
 * arrays changed, skip the ops whose outputs depend on shapes and constants only (shape arithmetic), and execute
 * the rest: nothing is allocated, so there is no garbage for the JVM to collect and the native footprint is the
 * largest set of values alive at one time, not the sum of every intermediate of the step.
 *
 * <p>Assumes what SameDiff graphs built by this library satisfy: output shapes are a function of the input shapes
 * (no data-dependent shapes), no control flow, no ops with their own random state.
 */
final class ExecutionPlan implements AutoCloseable {

    final SameDiff graph;
    final Operation operation;
    final List<PlanStep> steps = new ArrayList<>();
    final Map<String, INDArray> results = new LinkedHashMap<>();
    final BufferPool pool = new BufferPool();
    final List<OpContext> contexts = new ArrayList<>();
    final List<Kernel> kernels = new ArrayList<>();
    final Map<String, INDArray> ones = new HashMap<>();
    /** Placeholder name -> the array its ops are bound to (the caller's, or a staging buffer). */
    final Map<String, INDArray> placeholderArrays = new HashMap<>();
    int staticOps;
    long outputBytes;
    double matmulFlops;
    private final SameDiff listenerOwner;
    private final List<SameDiffOp> order;
    private final Set<String> requested;
    private final boolean rewrite;
    private final Map<String, INDArray> stagingBuffers = new HashMap<>();
    /** Values the hook replaces when computed: name -> true for a batch mean, false for its gradient. */
    final Map<String, Boolean> marked;
    private final ReplicaMean.Hook replicaMean;

    /**
     * A plan of {@code order} over {@code graph}; {@link #build} then runs the graph once and fixes the arrays.
     *
     * @param graph         the graph whose ops run (a model graph, or its gradient function)
     * @param listenerOwner the graph whose listeners are called per op (SameDiff passes the model's listeners to its
     *                      gradient function)
     * @param order         the ops to run, in a valid order
     * @param requested     variables whose values the caller reads after a run
     * @param marked        values passed to {@code replicaMean} when computed (true: a batch mean, false: a gradient)
     * @param replicaMean   the hook of {@link GraphExecutor#replicaMean}, or null
     */
    ExecutionPlan(SameDiff graph, SameDiff listenerOwner, Operation operation, List<SameDiffOp> order,
                  Set<String> requested, boolean rewrite, Map<String, Boolean> marked,
                  ReplicaMean.Hook replicaMean) {
        this.graph = graph;
        this.rewrite = rewrite;
        this.listenerOwner = listenerOwner;
        this.operation = operation;
        this.order = order;
        this.requested = requested;
        this.marked = marked;
        this.replicaMean = replicaMean;
    }

    /** Runs the graph once on {@code feed}, choosing every op's arrays; {@link #results()} holds the values. */
    void build(Map<String, INDArray> feed) {
        List<SameDiffOp> ops = order;
        Set<String> java = rewrite ? Kernels.enabledJavaOps() : Set.of();
        if (java.contains("gelu")) {
            ops = GeluFusion.apply(graph, ops, requested);
        }
        if (java.contains("layernorm")) {
            ops = LayerNormFusion.apply(graph, ops, requested);
        }
        if (java.contains("attention")) {
            ops = AttentionFusion.apply(graph, ops, requested);
        }
        new PlanBuilder(this, ops, requested, rewrite).build(feed);
    }

    List<Listener> activeListeners() {
        List<Listener> out = new ArrayList<>();
        for (Listener l : listenerOwner.getListeners()) {
            if (l.isActive(operation)) {
                out.add(l);
            }
        }
        return out;
    }

    /** Runs the planned ops with new placeholder values; returns the requested values (owned by the plan). */
    Map<String, INDArray> run(Map<String, INDArray> feed) {
        List<Listener> listeners = activeListeners();
        At at = At.defaultAt(operation);
        stage(feed);
        for (PlanStep step : steps) {
            for (PlanInputs.Binding b : step.bindings) {
                INDArray now = b.placeholder ? placeholderArrays.get(b.name) : graph.getArrForVarName(b.name);
                if (now != b.bound) {
                    if (step.copy) {
                        step.copySource = now;
                    } else {
                        if (step.kernel != null) {
                            step.kernel.rebind(b.bound, now);
                        }
                        if (b.scalarArgument) {
                            ((ScalarOp) step.fn).setScalar(now);
                        }
                        step.context.setInputArray(b.index, now);
                    }
                    b.bound = now;
                }
            }
            execute(step, listeners, at);
        }
        return results;
    }

    /**
     * The arrays the ops read for each placeholder. A placeholder fed the same array object every run (a queue, a
     * memory) is read in place. One fed a new array is copied into a buffer of the plan, to which its ops are bound
     * once: libnd4j 1.0.0-M2.1 keeps every array ever bound to an op context alive until the process ends (the
     * context holds a reference to its buffer), so rebinding new arrays step after step leaks their memory.
     */
    private void stage(Map<String, INDArray> feed) {
        for (Map.Entry<String, INDArray> e : placeholderArrays.entrySet()) {
            String name = e.getKey();
            INDArray given = feed.get(name);
            INDArray staged = stagingBuffers.get(name);
            if (staged == null && given != e.getValue()) {
                staged = Nd4j.createUninitializedDetached(given.dataType(), given.shape());
                stagingBuffers.put(name, staged);
                e.setValue(staged);
            }
            if (staged != null) {
                staged.assign(given);
            }
        }
    }

    void execute(PlanStep step, List<Listener> listeners, At at) {
        for (Listener l : listeners) {
            l.preOpExecution(listenerOwner, at, step.op, step.context);
        }
        DifferentialFunction fn = step.fn;
        if (step.copy) {
            step.outputs[0].assign(step.copySource);
        } else if (step.alias) {
            // the output is a view of the input: nothing to compute
        } else if (step.kernel != null) {
            step.kernel.run();
        } else if (step.wide) {
            Threads.widen();
            try {
                Nd4j.exec((CustomOp) fn, step.context);
            } finally {
                Threads.narrow();
            }
        } else if (fn instanceof CustomOp custom) {
            Nd4j.exec(custom, step.context);
        } else {
            Nd4j.exec((Op) fn, step.context);
        }
        for (int i = 0; i < step.replicaMeans.length; i++) {
            INDArray value = step.outputs[step.replicaMeans[i]];
            long rows = step.replicaMeanRows[i];
            if (rows > 0) {
                replicaMean.forward(value, rows);
            } else {
                replicaMean.backward(value);
            }
        }
        for (Listener l : listeners) {
            l.opExecution(listenerOwner, at, null, step.op, step.context, step.outputs);
        }
    }

    /** The requested values of the latest run. */
    Map<String, INDArray> results() {
        return results;
    }

    /** Ops executed per run. */
    int opCount() {
        return steps.size();
    }

    /** Ops computed once per signature (shape arithmetic on constants). */
    int staticOpCount() {
        return staticOps;
    }

    /** Ops computed by a {@link Kernel} instead of their own libnd4j implementation. */
    int rewrittenOpCount() {
        return kernels.size();
    }

    /** Floating-point operations of the matrix products (and their backward) of one run. */
    double matmulFlops() {
        return matmulFlops;
    }

    /** Bytes of every op output of one run: what an executor that frees nothing would hold. */
    long outputBytes() {
        return outputBytes;
    }

    /** Bytes of the plan's buffers the process holds (see {@link BufferPool#residentBytes()}). */
    long plannedBytes() {
        return pool.residentBytes();
    }

    /** Largest number of bytes alive at once while the plan was built. */
    long peakLiveBytes() {
        return pool.peakBytes();
    }

    @Override
    public void close() {
        pool.close();
        kernels.forEach(Kernel::close);
        stagingBuffers.values().forEach(INDArray::close);
        ones.values().forEach(INDArray::close);
        for (OpContext oc : contexts) {
            try {
                oc.close();
            } catch (Exception e) {
                // closing a context frees native pointers only; nothing to recover
            }
        }
        contexts.clear();
    }

    @Override
    public String toString() {
        return steps.size() + " ops (+" + staticOps + " static, " + kernels.size() + " rewritten), "
                + pool.residentBytes() / (1 << 20) + " MiB planned";
    }
}
