package io.mugs.engine;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.nd4j.autodiff.functions.DifferentialFunction;
import org.nd4j.autodiff.listeners.At;
import org.nd4j.autodiff.listeners.Listener;
import org.nd4j.autodiff.listeners.Operation;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.autodiff.samediff.VariableType;
import org.nd4j.autodiff.samediff.internal.SameDiffOp;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.ops.BaseOp;
import org.nd4j.linalg.api.ops.CustomOp;
import org.nd4j.linalg.api.ops.DynamicCustomOp;
import org.nd4j.linalg.api.ops.Op;
import org.nd4j.linalg.api.ops.OpContext;
import org.nd4j.linalg.api.ops.RandomOp;
import org.nd4j.linalg.api.ops.ReduceOp;
import org.nd4j.linalg.api.ops.ScalarOp;
import org.nd4j.linalg.api.ops.impl.shape.Rank;
import org.nd4j.linalg.api.ops.impl.shape.Shape;
import org.nd4j.linalg.api.ops.impl.shape.ShapeN;
import org.nd4j.linalg.api.ops.impl.shape.Size;
import org.nd4j.linalg.api.ops.impl.shape.SizeAt;
import org.nd4j.linalg.api.ops.impl.transforms.same.Identity;
import org.nd4j.linalg.api.shape.LongShapeDescriptor;
import org.nd4j.linalg.factory.Nd4j;

/**
 * One input signature's execution of a SameDiff graph: the ops in a fixed order, one {@link OpContext} per op with
 * its arguments and arrays bound once, every intermediate array assigned to a pooled buffer that is reused as soon
 * as the value it held has been read for the last time.
 *
 * <p>The plan is built by running the graph once (the first call's results are real), recording for every op the
 * arrays it read and wrote. Later runs only rebind the placeholders and variables whose arrays changed, skip the
 * ops whose outputs depend on shapes and constants only (shape arithmetic), and execute the rest: nothing is
 * allocated, so there is no garbage for the JVM to collect and the native footprint is the largest set of values
 * alive at one time, not the sum of every intermediate of the step.
 *
 * <p>Assumes what SameDiff graphs built by this library satisfy: output shapes are a function of the input shapes
 * (no data-dependent shapes), no control flow, no ops with their own random state.
 */
final class ExecutionPlan implements AutoCloseable {

    /** A storage: a pooled buffer (or an external array) and how many reads of it are still to come. */
    private static final class Storage {
        final BufferPool.Slot slot;
        int pending;
        boolean pinned;
        boolean released;
        boolean reported;

        Storage(BufferPool.Slot slot) {
            this.slot = slot;
        }
    }

    private record Value(INDArray array, Storage storage, boolean isStatic) {
    }

    /** An op input that comes from a placeholder or a variable, rebound when its array changes. */
    private static final class Binding {
        final int index;
        final String name;
        final boolean placeholder;
        final boolean scalarArgument;
        INDArray bound;

        Binding(int index, String name, boolean placeholder, boolean scalarArgument, INDArray bound) {
            this.index = index;
            this.name = name;
            this.placeholder = placeholder;
            this.scalarArgument = scalarArgument;
            this.bound = bound;
        }
    }

    /** One op as planned. */
    private static final class Step {
        final SameDiffOp op;
        final DifferentialFunction fn;
        final OpContext context;
        final INDArray[] outputs;
        final List<Binding> bindings;
        final boolean copy;
        final Kernel kernel;
        final boolean wide;
        final boolean alias;
        INDArray copySource;

        Step(SameDiffOp op, OpContext context, INDArray[] outputs, List<Binding> bindings, INDArray copySource,
             Kernel kernel, boolean wide, boolean alias) {
            this.kernel = kernel;
            this.alias = alias;
            this.wide = wide;
            this.op = op;
            this.fn = op.getOp();
            this.context = context;
            this.outputs = outputs;
            this.bindings = bindings;
            this.copySource = copySource;
            this.copy = copySource != null;
        }
    }

    private final SameDiff graph;
    private final SameDiff listenerOwner;
    private final Operation operation;
    private final List<Step> steps = new ArrayList<>();
    private final Map<String, INDArray> results = new LinkedHashMap<>();
    private final BufferPool pool = new BufferPool();
    private final List<OpContext> contexts = new ArrayList<>();
    private final List<SameDiffOp> order;
    private final Set<String> requested;
    private final boolean rewrite;
    private int staticOps;
    private long outputBytes;
    private final Map<String, INDArray> ones = new HashMap<>();
    /** Placeholder name -> the array its ops are bound to (the caller's, or a staging buffer). */
    private final Map<String, INDArray> placeholderArrays = new HashMap<>();
    private final Map<String, INDArray> stagingBuffers = new HashMap<>();
    private final MemoryReport report = MemoryReport.ifEnabled();
    private final List<BufferPool.Slot> temps = new ArrayList<>();
    private final List<Kernel> kernels = new ArrayList<>();
    private int rewritten;

    /**
     * A plan of {@code order} over {@code graph}; {@link #build} then runs the graph once and fixes the arrays.
     *
     * @param graph         the graph whose ops run (a model graph, or its gradient function)
     * @param listenerOwner the graph whose listeners are called per op (SameDiff passes the model's listeners to its
     *                      gradient function)
     * @param order         the ops to run, in a valid order
     * @param requested     variables whose values the caller reads after a run
     */
    ExecutionPlan(SameDiff graph, SameDiff listenerOwner, Operation operation, List<SameDiffOp> order,
                  Set<String> requested, boolean rewrite) {
        this.graph = graph;
        this.rewrite = rewrite;
        this.listenerOwner = listenerOwner;
        this.operation = operation;
        this.order = order;
        this.requested = requested;
    }

    /** Runs the graph once on {@code feed}, choosing every op's arrays; {@link #results()} holds the values. */
    void build(Map<String, INDArray> feed) {
        Map<String, Integer> consumers = new HashMap<>();
        for (SameDiffOp op : order) {
            for (String in : dataInputs(op)) {
                consumers.merge(in, 1, Integer::sum);
            }
        }
        Map<String, Value> values = new HashMap<>();
        int skipped = 0;
        List<Listener> listeners = activeListeners();
        At at = At.defaultAt(operation);
        for (SameDiffOp op : order) {
            DifferentialFunction fn = op.getOp();
            List<String> inNames = inputs(op);
            INDArray[] args = new INDArray[inNames.size()];
            List<Binding> bindings = new ArrayList<>();
            boolean allStatic = !(fn instanceof RandomOp);
            for (int i = 0; i < args.length; i++) {
                String name = inNames.get(i);
                SDVariable v = graph.getVariable(name);
                VariableType type = v.getVariableType();
                if (type == VariableType.PLACEHOLDER) {
                    args[i] = feed.get(name);
                    if (args[i] == null) {
                        throw new IllegalArgumentException("The graph needs placeholder \"" + name + "\" (op "
                                + op.getName() + "), but no array was given for it");
                    }
                    bindings.add(new Binding(i, name, true, false, args[i]));
                    placeholderArrays.put(name, args[i]);
                    allStatic &= isShapeOp(fn);
                } else if (type == VariableType.VARIABLE) {
                    args[i] = graph.getArrForVarName(name);
                    bindings.add(new Binding(i, name, false, false, args[i]));
                    allStatic &= isShapeOp(fn);
                } else if (type == VariableType.CONSTANT) {
                    args[i] = graph.getArrForVarName(name);
                } else {
                    Value value = values.get(name);
                    args[i] = value.array();
                    allStatic &= value.isStatic() || isShapeOp(fn);
                }
            }
            OpContext oc = Nd4j.getExecutioner().buildContext();
            contexts.add(oc);
            List<String> outNames = op.getOutputsOfOp();
            INDArray[] outputs = new INDArray[outNames.size()];
            Storage[] storages = new Storage[outputs.length];
            INDArray copySource = null;
            Kernel kernel = null;
            boolean alias = fn instanceof Identity && values.containsKey(inNames.get(0));
            if (fn instanceof Identity) {
                String in = inNames.get(0);
                Value source = values.get(in);
                if (source != null) {
                    // An alias: the same array, one storage.
                    outputs[0] = source.array();
                    storages[0] = source.storage();
                } else {
                    // Identity of a placeholder or variable: a copy, so the result does not follow the caller's array.
                    BufferPool.Slot slot = pool.take(args[0].dataType(), args[0].shape(), 'c');
                    outputs[0] = slot.array();
                    storages[0] = new Storage(slot);
                    copySource = args[0];
                    allStatic = false;
                }
            } else if (fn instanceof CustomOp custom) {
                if (!(fn instanceof DynamicCustomOp dyn)) {
                    throw new UnsupportedGraphException("op " + op.getName() + " (" + fn.getClass().getSimpleName()
                            + ") is not a DynamicCustomOp");
                }
                oc.setArgs(args, dyn.iArgs(), dyn.dArgs(), dyn.tArgs(), dyn.bArgs());
                List<LongShapeDescriptor> shapes = custom.calculateOutputShape(oc);
                if (shapes == null || shapes.size() != outputs.length) {
                    throw new UnsupportedGraphException("op " + op.getName() + " (" + fn.opName()
                            + ") gave " + (shapes == null ? 0 : shapes.size()) + " output shapes for "
                            + outputs.length + " outputs");
                }
                Value source = values.get(inNames.isEmpty() ? "" : inNames.get(0));
                if (rewrite && fn.opName().equals("reshape") && source != null && source.storage() != null
                        && Rewrites.contiguous(source.array()) && shapes.get(0).getOrder() == 'c'
                        && shapes.get(0).dataType() == source.array().dataType()) {
                    // A reshape of a contiguous value is a view of the same buffer: no copy, one storage.
                    long[] shape = shapes.get(0).getShape();
                    INDArray in = source.array();
                    outputs[0] = Nd4j.create(in.data(), shape, Nd4j.getStrides(shape, 'c'), in.offset(), 'c',
                            in.dataType());
                    storages[0] = source.storage();
                    alias = true;
                } else {
                    for (int i = 0; i < outputs.length; i++) {
                        DataType type = graph.getVariable(outNames.get(i)).dataType();
                        storages[i] = allocate(shapes.get(i), type, outputs, i);
                        oc.setOutputArray(i, outputs[i]);
                    }
                }
                if (rewrite && !alias) {
                    boolean[] planned = new boolean[args.length];
                    for (int i = 0; i < args.length; i++) {
                        VariableType t = graph.getVariable(inNames.get(i)).getVariableType();
                        planned[i] = t != VariableType.PLACEHOLDER && t != VariableType.VARIABLE;
                    }
                    kernel = Rewrites.forOp(dyn, args, outputs, planned, scratch);
                    if (kernel != null) {
                        kernels.add(kernel);
                        rewritten++;
                    }
                }
            } else if (fn instanceof Op legacy) {
                bindLegacy(op, legacy, args, values, bindings, oc);
                List<LongShapeDescriptor> shapes = ((BaseOp) legacy).calculateOutputShape(oc);
                if (shapes == null || shapes.size() != 1) {
                    throw new UnsupportedGraphException("op " + op.getName() + " (" + fn.opName()
                            + ") gave no output shape");
                }
                storages[0] = allocate(shapes.get(0), graph.getVariable(outNames.get(0)).dataType(), outputs, 0);
                oc.setOutputArray(0, outputs[0]);
            } else {
                throw new UnsupportedGraphException("op " + op.getName() + " (" + fn.getClass().getSimpleName()
                        + ") cannot be planned");
            }
            if (report != null) {
                report.sample();
            }
            boolean wide = kernel == null && fn instanceof DynamicCustomOp d
                    && (fn.opName().equals("matmul") || fn.opName().equals("matmul_bp"))
                    && Threads.wideMatmul(args, d.iArgs(), fn.opName().equals("matmul_bp"));
            Step step = new Step(op, oc, outputs, bindings, copySource, kernel, wide, alias);
            execute(step, listeners, at);
            temps.forEach(pool::give);
            temps.clear();
            for (int i = 0; i < outputs.length; i++) {
                String name = outNames.get(i);
                Storage s = storages[i];
                if (s != null) {
                    s.pending += consumers.getOrDefault(name, 0);
                    if (requested.contains(name) || allStatic) {
                        s.pinned = true;
                    }
                }
                values.put(name, new Value(outputs[i], s, allStatic));
                if (s != null && s.slot != null && report != null && !s.reported) {
                    s.reported = true;
                    report.add(fn.opName(), s.slot.array(), () -> s.released);
                }
                if (requested.contains(name)) {
                    results.put(name, outputs[i]);
                }
            }
            if (allStatic && !alias) {
                skipped++;
            } else {
                steps.add(step);
            }
            for (String in : dataInputs(op)) {
                Value value = values.get(in);
                if (value != null && value.storage() != null) {
                    value.storage().pending--;
                    release(value.storage());
                }
            }
            for (Storage s : storages) {
                release(s);
            }
        }
        for (String name : requested) {
            if (!results.containsKey(name)) {
                INDArray external = graph.getArrForVarName(name);
                if (external == null) {
                    throw new IllegalArgumentException("No op of the graph computes \"" + name + "\"");
                }
                results.put(name, external);
            }
        }
        this.staticOps = skipped;
        if (report != null) {
            report.log();
        }
    }

    private final Rewrites.Scratch scratch = new Rewrites.Scratch() {
        @Override
        public INDArray temp(DataType type, long... shape) {
            BufferPool.Slot slot = pool.take(type, shape, 'c');
            temps.add(slot);
            return slot.array();
        }

        @Override
        public INDArray ones(DataType type, long rows, long cols) {
            return ExecutionPlan.this.ones.computeIfAbsent(type + ":" + rows + "x" + cols,
                    k -> Nd4j.ones(type, rows, cols));
        }
    };

    private Storage allocate(LongShapeDescriptor shape, DataType type, INDArray[] outputs, int i) {
        if (shape.isEmpty()) {
            outputs[i] = Nd4j.empty(type);
            return null;
        }
        BufferPool.Slot slot = pool.take(type, shape.getShape(), shape.getOrder());
        outputs[i] = slot.array();
        outputBytes += outputs[i].length() * type.width();
        return new Storage(slot);
    }

    private void release(Storage s) {
        if (s != null && s.pending <= 0 && !s.pinned && !s.released && s.slot != null) {
            pool.give(s.slot);
            s.released = true;
        }
    }

    /** Binds a legacy op as SameDiff's InferenceSession does: axis and scalar second inputs are arguments. */
    private void bindLegacy(SameDiffOp op, Op legacy, INDArray[] args, Map<String, Value> values,
                            List<Binding> bindings, OpContext oc) {
        DifferentialFunction fn = op.getOp();
        boolean axisArgument = false;
        if (legacy instanceof ReduceOp reduce && reduce.getOpType() != Op.Type.REDUCE3 && args.length == 2) {
            String axisName = op.getInputsToOp().get(1);
            Value axis = values.get(axisName);
            boolean constant = graph.getVariable(axisName).getVariableType() == VariableType.CONSTANT;
            if (!(constant || (axis != null && axis.isStatic())) || args[1].isEmpty()) {
                throw new UnsupportedGraphException("reduction " + op.getName() + " has a dynamic or empty axis");
            }
            fn.setDimensions(org.nd4j.linalg.api.shape.Shape.normalizeAxis(args[0].rank(), args[1].toIntVector()));
            axisArgument = true;
            bindings.removeIf(b -> b.index == 1);
        } else if (legacy instanceof ScalarOp scalar && args.length == 2) {
            scalar.setScalar(args[1]);
            bindings.replaceAll(b -> b.index == 1 ? new Binding(1, b.name, b.placeholder, true, b.bound) : b);
        }
        if (args.length > 0) {
            oc.setInputArray(0, args[0]);
            if (args.length == 2 && !axisArgument) {
                oc.setInputArray(1, args[1]);
            }
        }
    }

    /**
     * The inputs whose data the op reads. Shape ops, and the backward ops of addition, subtraction and the mean and
     * sum reductions, only read their forward inputs' shapes: those inputs do not keep a value alive (SameDiff's
     * backward graph would otherwise hold every residual stream and every reshaped tensor until the backward pass).
     * The array object stays bound, so its shape is still there when its buffer already holds another value.
     */
    private static Set<String> dataInputs(SameDiffOp op) {
        List<String> in = inputs(op);
        DifferentialFunction fn = op.getOp();
        int shapeOnly;
        if (isShapeOp(fn)) {
            shapeOnly = in.size();
        } else {
            shapeOnly = switch (fn.opName()) {
                case "add_bp", "subtract_bp" -> in.size() == 3 ? 2 : 0;
                case "reduce_mean_bp", "reduce_sum_bp" -> in.size() == 2 ? 1 : 0;
                default -> 0;
            };
        }
        return new LinkedHashSet<>(in.subList(shapeOnly, in.size()));
    }

    private static boolean isShapeOp(DifferentialFunction fn) {
        return fn instanceof Shape || fn instanceof ShapeN || fn instanceof Size || fn instanceof SizeAt
                || fn instanceof Rank;
    }

    private static List<String> inputs(SameDiffOp op) {
        return op.getInputsToOp() == null ? List.of() : op.getInputsToOp();
    }

    private List<Listener> activeListeners() {
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
        for (Step step : steps) {
            for (Binding b : step.bindings) {
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

    private void execute(Step step, List<Listener> listeners, At at) {
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
        return rewritten;
    }

    /** Bytes of every op output of one run: what an executor that frees nothing would hold. */
    long outputBytes() {
        return outputBytes;
    }

    /** Bytes of every buffer the plan holds. */
    long plannedBytes() {
        return pool.totalBytes();
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
        return steps.size() + " ops (+" + staticOps + " static, " + rewritten + " rewritten), " + pool.totalBytes() / (1 << 20) + " MiB planned";
    }
}
