package io.mugs.engine;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.nd4j.autodiff.functions.DifferentialFunction;
import org.nd4j.autodiff.listeners.At;
import org.nd4j.autodiff.listeners.Listener;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.autodiff.samediff.internal.SameDiffOp;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.ops.BaseOp;
import org.nd4j.linalg.api.ops.CustomOp;
import org.nd4j.linalg.api.ops.DynamicCustomOp;
import org.nd4j.linalg.api.ops.Op;
import org.nd4j.linalg.api.ops.OpContext;
import org.nd4j.linalg.api.ops.impl.controlflow.compat.StopGradient;
import org.nd4j.linalg.api.ops.impl.transforms.same.Identity;
import org.nd4j.linalg.api.shape.LongShapeDescriptor;
import org.nd4j.linalg.factory.Nd4j;

/**
 * Builds an {@link ExecutionPlan} by running its graph once. For each op in order: bind its inputs
 * ({@link PlanInputs}), plan its outputs by kind (an identity, a custom op, a legacy op), choose how it runs (a
 * {@link Kernel} from {@link Kernels}, a widened matrix product), run it, then record its outputs' lifetimes
 * ({@link Lifetimes}) and the memory report. Ops whose results depend on shapes and constants only run here and
 * never again.
 */
final class PlanBuilder {

    /** How one op's outputs were planned. */
    private record Outputs(INDArray[] arrays, Lifetimes.Storage[] storages, INDArray copySource, Kernel kernel,
                           boolean alias) {
    }

    private final ExecutionPlan plan;
    private final SameDiff graph;
    private final List<SameDiffOp> order;
    private final Set<String> requested;
    private final boolean rewrite;
    private final Lifetimes lifetimes;
    private final Map<String, Lifetimes.Value> values = new HashMap<>();
    private final MemoryReport report = MemoryReport.ifEnabled();
    private final List<BufferPool.Slot> temps = new ArrayList<>();
    private final Rewrites.Scratch scratch;
    /** Ops that ran at plan time only (their inputs are all static). */
    private int skipped;

    PlanBuilder(ExecutionPlan plan, List<SameDiffOp> order, Set<String> requested, boolean rewrite) {
        this.plan = plan;
        this.graph = plan.graph;
        this.order = order;
        this.requested = requested;
        this.rewrite = rewrite;
        this.lifetimes = new Lifetimes(plan.pool, order);
        this.scratch = new Rewrites.Scratch() {
            @Override
            public INDArray temp(DataType type, long... shape) {
                BufferPool.Slot slot = plan.pool.take(type, shape, 'c');
                temps.add(slot);
                return slot.array();
            }

            @Override
            public INDArray ones(DataType type, long rows, long cols) {
                return plan.ones.computeIfAbsent(type + ":" + rows + "x" + cols, k -> Nd4j.ones(type, rows, cols));
            }
        };
    }

    /**
     * Runs the graph once on {@code feed}, choosing every op's arrays; the plan's results hold the values. Ops that
     * {@link LateGradients} moves run after the rest, in their order; values that {@link Rematerialisation}
     * recomputes are computed again just before their backward reader.
     */
    void build(Map<String, INDArray> feed) {
        List<Listener> listeners = plan.activeListeners();
        At at = At.defaultAt(plan.operation);
        LateGradients late = rewrite && LateGradients.enabled()
                ? new LateGradients(graph, order, requested, plan.marked) : null;
        Rematerialisation remat = rewrite && Rematerialisation.enabled() ? new Rematerialisation(order) : null;
        UnreadGradients unread = rewrite && UnreadGradients.enabled()
                ? new UnreadGradients(order, requested, plan.marked) : null;
        List<SameDiffOp> deferred = new ArrayList<>();
        List<SameDiffOp> deferredReads = new ArrayList<>();
        for (SameDiffOp op : order) {
            if (remat != null) {
                for (SameDiffOp again : remat.before(op)) {
                    run(again, null, feed, listeners, at);
                }
                if (op.getOp() instanceof FusedGeluOp && remat.recompute(op, computed(PlanInputs.inputs(op).get(0)))) {
                    // The forward value lives until its forward reader; the recomputed one until the backward's.
                    lifetimes.readers(PlanFusion.out(op), 1);
                }
            }
            SameDiffOp only = unread == null ? op : unread.replace(op, name -> array(name, feed));
            if (only != op) {
                run(only, op, feed, listeners, at);
                continue;
            }
            LateGradients.Decision d = late == null ? new LateGradients.Now() : late.decide(op, this::computed);
            if (d instanceof LateGradients.Later) {
                deferred.add(op);
                deferredReads.add(op);
            } else if (d instanceof LateGradients.Split split) {
                // The part that runs now reads nothing for good: the op's reads end with the late part.
                run(split.now(), null, feed, listeners, at);
                deferred.add(split.later());
                deferredReads.add(op);
            } else {
                run(op, op, feed, listeners, at);
            }
        }
        for (int i = 0; i < deferred.size(); i++) {
            run(deferred.get(i), deferredReads.get(i), feed, listeners, at);
        }
        collectExternalResults();
        plan.staticOps = skipped;
        plan.outputBytes = lifetimes.outputBytes();
        if (report != null) {
            report.log();
        }
    }

    /** Plans and runs {@code op}; its reads end as {@code reads}' would (none when null). */
    private void run(SameDiffOp op, SameDiffOp reads, Map<String, INDArray> feed, List<Listener> listeners, At at) {
        PlanInputs.OpInputs in = PlanInputs.bind(graph, op, feed, values, plan.placeholderArrays);
        OpContext oc = Nd4j.getExecutioner().buildContext();
        plan.contexts.add(oc);
        Outputs out = planOutputs(op, in, oc);
        if (report != null) {
            report.sample();
        }
        PlanStep step = new PlanStep(op, oc, out.arrays(), in.bindings(), out.copySource(), out.kernel(),
                wide(op.getOp(), in.args(), out.kernel()), out.alias());
        markReplicaMeans(op, step, in.args());
        plan.execute(step, listeners, at);
        temps.forEach(plan.pool::give);
        temps.clear();
        boolean allStatic = in.allStatic() && out.copySource() == null;
        record(op, out, allStatic);
        if (allStatic && !out.alias()) {
            skipped++;
        } else {
            plan.steps.add(step);
            plan.matmulFlops += matmulFlops(op.getOp(), in.args());
        }
        lifetimes.ran(reads, values, out.storages());
    }

    /** The array an op reads by name: a computed value, a variable or constant, or a placeholder's feed. */
    private INDArray array(String name, Map<String, INDArray> feed) {
        INDArray a = computed(name);
        if (a != null) {
            return a;
        }
        return switch (graph.getVariable(name).getVariableType()) {
            case VARIABLE, CONSTANT -> graph.getArrForVarName(name);
            case PLACEHOLDER -> feed.get(name);
            default -> null;
        };
    }

    /** The array of a value an op of this plan computed, or null. */
    private INDArray computed(String name) {
        Lifetimes.Value v = values.get(name);
        return v == null ? null : v.array();
    }

    private Outputs planOutputs(SameDiffOp op, PlanInputs.OpInputs in, OpContext oc) {
        DifferentialFunction fn = op.getOp();
        if (fn instanceof Identity || fn instanceof StopGradient) {
            return planIdentity(op, in.args());
        } else if (fn instanceof CustomOp) {
            if (!(fn instanceof DynamicCustomOp dyn)) {
                throw new UnsupportedGraphException("op " + op.getName() + " (" + fn.getClass().getSimpleName()
                        + ") is not a DynamicCustomOp");
            }
            return planCustom(op, dyn, in.args(), oc);
        } else if (fn instanceof Op legacy) {
            return planLegacy(op, legacy, in, oc);
        }
        throw new UnsupportedGraphException("op " + op.getName() + " (" + fn.getClass().getSimpleName()
                + ") cannot be planned");
    }

    /**
     * Identity (or stop-gradient, the same forward) of a value is an alias (same array, one storage); of a
     * placeholder or variable, a copy.
     */
    private Outputs planIdentity(SameDiffOp op, INDArray[] args) {
        INDArray[] outputs = new INDArray[1];
        Lifetimes.Storage[] storages = new Lifetimes.Storage[1];
        Lifetimes.Value source = values.get(op.getInputsToOp().get(0));
        if (source != null) {
            outputs[0] = source.array();
            storages[0] = source.storage();
            return new Outputs(outputs, storages, null, null, true);
        }
        // A copy, so the result does not follow the caller's array.
        storages[0] = lifetimes.copyOf(args[0], outputs, 0);
        return new Outputs(outputs, storages, args[0], null, false);
    }

    /**
     * Which outputs of {@code op} the replica-mean hook replaces: a marked batch mean (with the rows it averaged)
     * or its gradient. Such a value must own its buffer, since the hook writes it in place.
     */
    private void markReplicaMeans(SameDiffOp op, PlanStep step, INDArray[] args) {
        List<String> names = op.getOutputsOfOp();
        List<Integer> index = new ArrayList<>();
        List<Long> rows = new ArrayList<>();
        for (int i = 0; i < names.size(); i++) {
            Boolean mean = plan.marked.get(names.get(i));
            if (mean == null) {
                continue;
            }
            if (step.alias || step.copy || step.outputs[i] == null) {
                throw new UnsupportedGraphException("marked value " + names.get(i) + " is not computed by its own op");
            }
            index.add(i);
            rows.add(mean ? args[0].length() / step.outputs[i].length() : 0L);
        }
        step.replicaMeans = index.stream().mapToInt(Integer::intValue).toArray();
        step.replicaMeanRows = rows.stream().mapToLong(Long::longValue).toArray();
    }

    /** A custom op: arguments bound once, outputs from the pool (or a view for a reshape), maybe a kernel. */
    private Outputs planCustom(SameDiffOp op, DynamicCustomOp dyn, INDArray[] args, OpContext oc) {
        List<String> outNames = op.getOutputsOfOp();
        INDArray[] outputs = new INDArray[outNames.size()];
        Lifetimes.Storage[] storages = new Lifetimes.Storage[outputs.length];
        oc.setArgs(args, dyn.iArgs(), dyn.dArgs(), dyn.tArgs(), dyn.bArgs());
        List<LongShapeDescriptor> shapes = dyn.calculateOutputShape(oc);
        if (shapes == null || shapes.size() != outputs.length) {
            throw new UnsupportedGraphException("op " + op.getName() + " (" + dyn.opName() + ") gave "
                    + (shapes == null ? 0 : shapes.size()) + " output shapes for " + outputs.length + " outputs");
        }
        List<String> inNames = PlanInputs.inputs(op);
        Lifetimes.Value source = values.get(inNames.isEmpty() ? "" : inNames.get(0));
        if (rewrite && dyn.opName().equals("reshape") && source != null && source.storage() != null
                && Rewrites.contiguous(source.array()) && shapes.get(0).getOrder() == 'c'
                && shapes.get(0).dataType() == source.array().dataType()) {
            // A reshape of a contiguous value is a view of the same buffer: no copy, one storage.
            long[] shape = shapes.get(0).getShape();
            INDArray in = source.array();
            outputs[0] = Nd4j.create(in.data(), shape, Nd4j.getStrides(shape, 'c'), in.offset(), 'c', in.dataType());
            storages[0] = source.storage();
            return new Outputs(outputs, storages, null, null, true);
        }
        for (int i = 0; i < outputs.length; i++) {
            DataType type = graph.getVariable(outNames.get(i)).dataType();
            storages[i] = lifetimes.allocate(shapes.get(i), type, outputs, i, requested.contains(outNames.get(i)));
            oc.setOutputArray(i, outputs[i]);
        }
        Kernel kernel = null;
        if (rewrite) {
            kernel = Kernels.forOp(dyn, args, outputs, PlanInputs.planned(graph, op), scratch);
            if (kernel != null) {
                plan.kernels.add(kernel);
            }
        }
        return new Outputs(outputs, storages, null, kernel, false);
    }

    /** A legacy op: axis and scalar inputs become arguments, one pooled output, maybe a kernel. */
    private Outputs planLegacy(SameDiffOp op, Op legacy, PlanInputs.OpInputs in, OpContext oc) {
        PlanInputs.bindLegacy(graph, op, legacy, in.args(), values, in.bindings(), oc);
        List<LongShapeDescriptor> shapes = ((BaseOp) legacy).calculateOutputShape(oc);
        if (shapes == null || shapes.size() != 1) {
            throw new UnsupportedGraphException("op " + op.getName() + " (" + legacy.opName()
                    + ") gave no output shape");
        }
        INDArray[] outputs = new INDArray[1];
        String name = op.getOutputsOfOp().get(0);
        Lifetimes.Storage[] storages = {lifetimes.allocate(shapes.get(0), graph.getVariable(name).dataType(), outputs,
                0, requested.contains(name))};
        oc.setOutputArray(0, outputs[0]);
        Kernel kernel = Kernels.forLegacyOp(legacy, in.args(), outputs);
        if (kernel != null) {
            plan.kernels.add(kernel);
        }
        return new Outputs(outputs, storages, null, kernel, false);
    }

    /** Large matrix products (without a kernel) run on every core. */
    private static boolean wide(DifferentialFunction fn, INDArray[] args, Kernel kernel) {
        return kernel == null && fn instanceof DynamicCustomOp d
                && (fn.opName().equals("matmul") || fn.opName().equals("matmul_bp"))
                && Threads.wideMatmul(args, d.iArgs(), fn.opName().equals("matmul_bp"));
    }

    /**
     * Floating-point operations of a matrix product ({@code 2 M N K} per batch item) or its backward (twice that);
     * 0 for every other op.
     */
    static double matmulFlops(DifferentialFunction fn, INDArray[] args) {
        String name = fn.opName();
        if (!(fn instanceof DynamicCustomOp d) || !(name.equals("matmul") || name.equals("matmul_bp"))
                || args.length < 2) {
            return 0;
        }
        long[] i = d.iArgs();
        INDArray a = args[0];
        INDArray b = args[1];
        boolean ta = i.length > 0 && i[0] != 0;
        boolean tb = i.length > 1 && i[1] != 0;
        int ra = a.rank();
        int rb = b.rank();
        if (ra < 2 || rb < 2) {
            return 0;
        }
        double m = ta ? a.size(ra - 1) : a.size(ra - 2);
        double k = ta ? a.size(ra - 2) : a.size(ra - 1);
        double n = tb ? b.size(rb - 2) : b.size(rb - 1);
        double batch = a.length() / (double) (a.size(ra - 1) * a.size(ra - 2));
        return (name.equals("matmul") ? 2 : 4) * batch * m * n * k;
    }

    /** The op's outputs become values: their lifetimes start, requested ones become results. */
    private void record(SameDiffOp op, Outputs out, boolean allStatic) {
        List<String> outNames = op.getOutputsOfOp();
        for (int i = 0; i < out.arrays().length; i++) {
            String name = outNames.get(i);
            Lifetimes.Storage s = out.storages()[i];
            lifetimes.produced(name, s, requested.contains(name) || allStatic);
            values.put(name, new Lifetimes.Value(out.arrays()[i], s, allStatic));
            if (s != null && s.slot != null && report != null && !s.reported) {
                s.reported = true;
                report.add(op.getOp().opName(), s.slot.array(), () -> s.released);
            }
            if (requested.contains(name)) {
                plan.results.put(name, out.arrays()[i]);
            }
        }
    }

    /** Requested values no op computes (variables, constants) are returned as they are. */
    private void collectExternalResults() {
        for (String name : requested) {
            if (!plan.results.containsKey(name)) {
                INDArray external = graph.getArrForVarName(name);
                if (external == null) {
                    throw new IllegalArgumentException("No op of the graph computes \"" + name + "\"");
                }
                plan.results.put(name, external);
            }
        }
    }
}
