package io.mugs.engine;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collection;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.PriorityQueue;
import java.util.Set;
import org.nd4j.autodiff.listeners.Operation;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.autodiff.samediff.VariableType;
import org.nd4j.autodiff.samediff.internal.SameDiffOp;
import org.nd4j.autodiff.samediff.internal.Variable;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Runs a SameDiff graph, or its gradient function, through {@link ExecutionPlan}s: per input signature (the shapes
 * and types of the placeholders the requested values need) the op order, the op contexts and every intermediate
 * buffer are fixed on the first run and reused on every later one. The graph itself is untouched: the same
 * {@link SameDiff} keeps working with SameDiff's own {@code output} and {@code calculateGradientsAndOutputs}, which
 * give the same values (checked by the tests to 1e-5 relative in FLOAT and 1e-10 in DOUBLE).
 *
 * <p>Compared with SameDiff's session, a planned run allocates nothing, frees each intermediate at its last use
 * (the footprint is the largest live set, not every op output of the step), sets each op's arguments once, and
 * skips the shape arithmetic. Arrays returned by {@link #run} belong to the executor and are overwritten by the next
 * run with the same signature: copy ({@code dup()}) what must outlive it. One executor serves one thread at a time.
 * A graph the plan cannot express (control flow, data-dependent shapes) runs through SameDiff instead, with a log
 * line saying why; so does every graph when the system property {@code mugs.engine} is {@code samediff}.
 *
 * <p>Data-parallel replicas give each executor a {@link ReplicaMean.Hook} ({@link #replicaMean}): the batch means a
 * graph marks with {@link ReplicaMean#rows}, and their gradients, then become means over the replicas (planned
 * execution only).
 *
 * <pre>{@code
 * GraphExecutor step = GraphExecutor.gradients(sd, List.of("loss"), paramNames);
 * GraphExecutor.Result r = step.run(Map.of("x", images));
 * double loss = r.outputs().get("loss").getDouble(0);
 * INDArray dW = r.gradients().get("w");
 * }</pre>
 */
public final class GraphExecutor implements AutoCloseable {

    private static final Logger LOG = LoggerFactory.getLogger(GraphExecutor.class);
    private static final int MAX_PLANS = 4;

    /** Outputs and gradients of one run (owned by the executor; valid until the next run). */
    public record Result(Map<String, INDArray> outputs, Map<String, INDArray> gradients) {
    }

    private final SameDiff model;
    private final SameDiff graph;
    private final Operation operation;
    private final List<String> outputs;
    private final Map<String, String> gradientOf;
    private final List<SameDiffOp> order;
    private final Set<String> placeholders;
    private final String unsupported;
    private boolean useSameDiff;
    private final boolean rewrites = !"false".equalsIgnoreCase(System.getProperty("mugs.engine.rewrites", "true"));
    private final LinkedHashMap<String, ExecutionPlan> plans = new LinkedHashMap<>(8, 0.75f, true);
    /** Marked values the plan computes (see {@link ReplicaMean}): name -> true for a mean, false for its gradient. */
    private final Map<String, Boolean> marked;
    private ReplicaMean.Hook replicaMean;

    private GraphExecutor(SameDiff model, SameDiff graph, Operation operation, List<String> outputs,
                          Map<String, String> gradientOf) {
        this.model = model;
        this.graph = graph;
        this.operation = operation;
        this.outputs = List.copyOf(outputs);
        this.gradientOf = gradientOf;
        Set<String> requested = requested();
        this.order = order(graph, requested);
        this.placeholders = new LinkedHashSet<>();
        for (SameDiffOp op : order) {
            for (String in : op.getInputsToOp() == null ? List.<String>of() : op.getInputsToOp()) {
                if (graph.getVariable(in).getVariableType() == VariableType.PLACEHOLDER) {
                    placeholders.add(in);
                }
            }
        }
        this.marked = marked(model, graph, order, operation);
        this.unsupported = unsupportedReason(order);
        this.useSameDiff = "samediff".equalsIgnoreCase(System.getProperty("mugs.engine", "planned"))
                || unsupported != null;
        if (unsupported != null) {
            LOG.info("running through SameDiff's session: {}", unsupported);
        }
    }

    /**
     * An executor for values of {@code sd} (inference).
     *
     * @param outputs names of the variables to compute
     */
    public static GraphExecutor outputs(SameDiff sd, Collection<String> outputs) {
        return new GraphExecutor(sd, sd, Operation.INFERENCE, new ArrayList<>(outputs), Map.of());
    }

    /**
     * An executor for the loss variables' gradients (and any other values) of {@code sd}, the equivalent of
     * {@code sd.calculateGradientsAndOutputs(feed, outputs, wrt)}.
     *
     * @param outputs variables whose values are returned as well (e.g. the loss)
     * @param wrt     variables whose gradients are returned; a variable the loss does not depend on has none
     */
    public static GraphExecutor gradients(SameDiff sd, Collection<String> outputs, Collection<String> wrt) {
        if (sd.getFunction("grad") == null) {
            Gradients.filterStdout();
            sd.createGradFunction();
        }
        Map<String, String> gradientOf = new LinkedHashMap<>();
        for (String name : wrt) {
            SDVariable v = sd.getVariable(name);
            if (v == null) {
                throw new IllegalArgumentException("No variable \"" + name + "\" in the graph");
            }
            SDVariable g = v.getGradient();
            if (g != null) {
                gradientOf.put(name, g.name());
            }
        }
        return new GraphExecutor(sd, sd.getFunction("grad"), Operation.TRAINING, new ArrayList<>(outputs),
                gradientOf);
    }

    /**
     * Makes every batch mean marked by {@link ReplicaMean#rows} a mean over the replicas: {@code hook} is called on
     * each marked value as soon as it is computed, and on its gradient as soon as that is computed (see
     * {@link ReplicaMean} for why that is the exact gradient). Call it before the first run; a graph without marked
     * values ignores it. Planned execution only: the SameDiff session (system property {@code mugs.engine=samediff})
     * is refused.
     *
     * @return this executor
     */
    public synchronized GraphExecutor replicaMean(ReplicaMean.Hook hook) {
        if (marked.isEmpty()) {
            return this;
        }
        if (useSameDiff) {
            throw new IllegalStateException(sameDiffRefusal());
        }
        close();   // plans made without the hook do not keep the marked values
        this.replicaMean = hook;
        return this;
    }

    private String sameDiffRefusal() {
        return "batch means over replicas (batch norm with replicas > 1) run on the planned engine only, not on "
                + "SameDiff's session" + (unsupported != null ? " (" + unsupported + ")" : "")
                + ": remove -Dmugs.engine=samediff, or turn off useBnInHead, or use one replica";
    }

    private Set<String> requested() {
        Set<String> r = new LinkedHashSet<>(outputs);
        r.addAll(gradientOf.values());
        return r;
    }

    /** Runs the graph on {@code feed} (placeholders the requested values do not need are ignored). */
    public synchronized Result run(Map<String, INDArray> feed) {
        if (useSameDiff) {
            return runSameDiff(feed);
        }
        String signature = signature(feed);
        ExecutionPlan plan = plans.get(signature);
        Map<String, INDArray> values;
        if (plan == null) {
            Set<String> keep = requested();
            if (replicaMean != null) {
                keep.addAll(marked.keySet());   // a requested value is never fused away nor freed early
            }
            plan = new ExecutionPlan(graph, model, operation, order, keep, rewrites,
                    replicaMean == null ? Map.of() : marked, replicaMean);
            try {
                plan.build(feed);
            } catch (UnsupportedGraphException e) {
                plan.close();
                if (replicaMean != null) {
                    throw new IllegalStateException(sameDiffRefusal() + "; the plan failed: " + e.getMessage(), e);
                }
                LOG.info("running through SameDiff's session: {}", e.getMessage());
                useSameDiff = true;
                return runSameDiff(feed);
            } catch (RuntimeException e) {
                plan.close();
                throw e;
            }
            plans.put(signature, plan);
            LOG.debug("planned {} for {}", plan, signature);
            if (plans.size() > MAX_PLANS) {
                String eldest = plans.keySet().iterator().next();
                plans.remove(eldest).close();
            }
            values = plan.results();
        } else {
            values = plan.run(feed);
        }
        Map<String, INDArray> outs = new LinkedHashMap<>();
        for (String o : outputs) {
            outs.put(o, values.get(o));
        }
        Map<String, INDArray> grads = new LinkedHashMap<>();
        gradientOf.forEach((variable, gradient) -> grads.put(variable, values.get(gradient)));
        return new Result(outs, grads);
    }

    private Result runSameDiff(Map<String, INDArray> feed) {
        if (replicaMean != null) {
            throw new IllegalStateException(sameDiffRefusal());
        }
        Map<String, INDArray> used = new HashMap<>();
        for (String p : placeholders) {
            if (feed.containsKey(p)) {
                used.put(p, feed.get(p));
            }
        }
        if (operation == Operation.INFERENCE) {
            return new Result(model.output(used, outputs), Map.of());
        }
        Gradients.filterStdout();
        var r = model.calculateGradientsAndOutputs(used, outputs, gradientOf.keySet());
        Map<String, INDArray> outs = new LinkedHashMap<>();
        outputs.forEach(o -> outs.put(o, r.getOutputs().get(o)));
        return new Result(outs, r.getGradients());
    }

    private String signature(Map<String, INDArray> feed) {
        StringBuilder sb = new StringBuilder();
        for (String p : placeholders) {
            INDArray a = feed.get(p);
            if (a == null) {
                throw new IllegalArgumentException("No array given for placeholder \"" + p + "\"; the graph needs "
                        + placeholders);
            }
            sb.append(p).append(':').append(a.dataType()).append(Arrays.toString(a.shape())).append(a.ordering())
                    .append(';');
        }
        return sb.toString();
    }

    /** Whether runs go through planned execution (false: SameDiff's session, see the class comment). */
    public boolean planned() {
        return !useSameDiff;
    }

    /** Ops executed per planned run of the most recent signature, or -1 before the first planned run. */
    public synchronized int opsPerRun() {
        ExecutionPlan last = lastPlan();
        return last == null ? -1 : last.opCount();
    }

    /** Ops of the most recent plan computed by a rewrite (see {@code Rewrites}), or -1 before the first run. */
    public synchronized int rewrittenOps() {
        ExecutionPlan last = lastPlan();
        return last == null ? -1 : last.rewrittenOpCount();
    }

    /**
     * Floating-point operations of the matrix products of one run of the most recent plan (forward products
     * {@code 2 M N K}, their backward twice that), or 0 before the first planned run: the work the machine's
     * matrix-product rate bounds.
     */
    public synchronized double matmulFlopsPerRun() {
        ExecutionPlan last = lastPlan();
        return last == null ? 0 : last.matmulFlops();
    }

    /**
     * Whether plans reuse memory only between values of the same length ({@code -Dmugs.engine.pool=exact}) instead of
     * carving every value out of one arena per data type (the default; see {@code BufferPool}).
     */
    public static boolean exactBufferReuse() {
        return BufferPool.EXACT_BY_DEFAULT;
    }

    /** Bytes of the buffers held by all plans (intermediates and results) that are resident. */
    public synchronized long plannedBytes() {
        return plans.values().stream().mapToLong(ExecutionPlan::plannedBytes).sum();
    }

    /** Bytes of every op output of one run of the most recent plan (what keeping every array would hold). */
    public synchronized long outputBytes() {
        ExecutionPlan last = lastPlan();
        return last == null ? -1 : last.outputBytes();
    }

    /** The largest number of bytes of intermediates alive at one time in any plan. */
    public synchronized long peakLiveBytes() {
        return plans.values().stream().mapToLong(ExecutionPlan::peakLiveBytes).max().orElse(0);
    }

    private ExecutionPlan lastPlan() {
        ExecutionPlan last = null;
        for (ExecutionPlan p : plans.values()) {
            last = p;
        }
        return last;
    }

    /** Frees every plan's buffers. The executor stays usable (the next run plans again). */
    @Override
    public synchronized void close() {
        plans.values().forEach(ExecutionPlan::close);
        plans.clear();
    }

    /** The ops the requested variables need, producers before consumers, in creation order where free. */
    private static List<SameDiffOp> order(SameDiff graph, Set<String> requested) {
        Map<String, SameDiffOp> ops = graph.getOps();
        Map<String, Integer> index = new HashMap<>();
        int i = 0;
        for (String name : ops.keySet()) {
            index.put(name, i++);
        }
        Map<String, Variable> vars = graph.getVariables();
        Set<String> needed = new LinkedHashSet<>();
        List<String> stack = new ArrayList<>();
        for (String r : requested) {
            if (!vars.containsKey(r)) {
                throw new IllegalArgumentException("No variable \"" + r + "\" in the graph");
            }
            stack.add(r);
        }
        Set<String> seenVars = new LinkedHashSet<>();
        Map<String, Set<String>> predecessors = new HashMap<>();
        while (!stack.isEmpty()) {
            String v = stack.remove(stack.size() - 1);
            if (!seenVars.add(v)) {
                continue;
            }
            Variable var = vars.get(v);
            String producer = var.getOutputOfOp();
            if (var.getControlDeps() != null) {
                for (String dep : var.getControlDeps()) {
                    stack.addAll(ops.get(dep).getOutputsOfOp());
                }
            }
            if (producer == null || !needed.add(producer)) {
                continue;
            }
            SameDiffOp op = ops.get(producer);
            Set<String> preds = new LinkedHashSet<>();
            List<String> deps = new ArrayList<>();
            if (op.getInputsToOp() != null) {
                deps.addAll(op.getInputsToOp());
            }
            if (op.getControlDeps() != null) {
                deps.addAll(op.getControlDeps());
            }
            if (op.getVarControlDeps() != null) {
                deps.addAll(op.getVarControlDeps());
            }
            for (String in : deps) {
                String p = vars.get(in).getOutputOfOp();
                if (p != null) {
                    preds.add(p);
                }
                stack.add(in);
            }
            predecessors.put(producer, preds);
        }
        Map<String, Integer> waiting = new HashMap<>();
        Map<String, List<String>> successors = new HashMap<>();
        PriorityQueue<String> ready = new PriorityQueue<>((a, b) -> Integer.compare(index.get(a), index.get(b)));
        for (String op : needed) {
            Set<String> preds = predecessors.get(op);
            waiting.put(op, preds.size());
            for (String p : preds) {
                successors.computeIfAbsent(p, k -> new ArrayList<>()).add(op);
            }
            if (preds.isEmpty()) {
                ready.add(op);
            }
        }
        List<SameDiffOp> out = new ArrayList<>();
        while (!ready.isEmpty()) {
            String op = ready.poll();
            out.add(ops.get(op));
            for (String s : successors.getOrDefault(op, List.of())) {
                if (waiting.merge(s, -1, Integer::sum) == 0) {
                    ready.add(s);
                }
            }
        }
        if (out.size() != needed.size()) {
            throw new IllegalStateException("The graph has a cycle among " + needed.size() + " ops");
        }
        return out;
    }

    /**
     * The values of {@code order} marked by {@link ReplicaMean#rows} (true) and, in a gradient function, their
     * gradients (false), in plan order.
     */
    private static Map<String, Boolean> marked(SameDiff model, SameDiff graph, List<SameDiffOp> order,
                                               Operation operation) {
        Set<String> computed = new LinkedHashSet<>();
        order.forEach(op -> computed.addAll(op.getOutputsOfOp()));
        Map<String, Boolean> out = new LinkedHashMap<>();
        for (String name : computed) {
            if (ReplicaMean.marked(name)) {
                out.put(name, true);
                SDVariable v = model.getVariable(name);
                SDVariable g = operation == Operation.TRAINING && v != null ? v.getGradient() : null;
                if (g != null && computed.contains(g.name()) && graph.hasVariable(g.name())) {
                    out.put(g.name(), false);
                }
            }
        }
        return java.util.Collections.unmodifiableMap(out);
    }

    private static String unsupportedReason(List<SameDiffOp> order) {
        for (SameDiffOp op : order) {
            String cls = op.getOp().getClass().getName();
            if (cls.contains(".controlflow.") && !cls.endsWith("StopGradient")
                    || cls.contains("TensorArray") || cls.endsWith(".Invoke") || cls.endsWith("ExternalErrorsFunction")
                    || cls.endsWith(".Assign") || cls.endsWith(".CreateView")) {
                return "op " + op.getName() + " (" + op.getOp().getClass().getSimpleName() + ") is control flow "
                        + "or a view op";
            }
        }
        return null;
    }
}
