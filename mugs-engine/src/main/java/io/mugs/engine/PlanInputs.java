package io.mugs.engine;

import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.nd4j.autodiff.functions.DifferentialFunction;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.autodiff.samediff.VariableType;
import org.nd4j.autodiff.samediff.internal.SameDiffOp;
import org.nd4j.linalg.api.ndarray.INDArray;
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

/**
 * Planning step 1, binding: the arrays an op reads (placeholders, variables, constants or values of earlier ops),
 * which of them must be rebound when the caller hands in a new array, and whether the op's result depends on shapes
 * and constants only (then it is computed once per plan).
 */
final class PlanInputs {

    /** An op input that comes from a placeholder or a variable, rebound when its array changes. */
    static final class Binding {
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

    /**
     * The inputs of one op.
     *
     * @param args      the arrays, in the op's input order
     * @param bindings  the inputs that come from placeholders or variables
     * @param allStatic whether every input is a constant or a static value (or only its shape is read)
     */
    record OpInputs(INDArray[] args, List<Binding> bindings, boolean allStatic) {
    }

    private PlanInputs() {
    }

    /**
     * The arrays {@code op} reads. Placeholders come from {@code feed} (and are recorded in
     * {@code placeholderArrays}), values of earlier ops from {@code values}.
     */
    static OpInputs bind(SameDiff graph, SameDiffOp op, Map<String, INDArray> feed,
                         Map<String, Lifetimes.Value> values, Map<String, INDArray> placeholderArrays) {
        DifferentialFunction fn = op.getOp();
        List<String> inNames = inputs(op);
        INDArray[] args = new INDArray[inNames.size()];
        List<Binding> bindings = new ArrayList<>();
        boolean allStatic = !(fn instanceof RandomOp);
        for (int i = 0; i < args.length; i++) {
            String name = inNames.get(i);
            VariableType type = graph.getVariable(name).getVariableType();
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
                Lifetimes.Value value = values.get(name);
                args[i] = value.array();
                allStatic &= value.isStatic() || isShapeOp(fn);
            }
        }
        return new OpInputs(args, bindings, allStatic);
    }

    /** Which inputs are arrays of the plan (fixed for the plan's life, contiguous): not placeholders or variables. */
    static boolean[] planned(SameDiff graph, SameDiffOp op) {
        List<String> inNames = inputs(op);
        boolean[] planned = new boolean[inNames.size()];
        for (int i = 0; i < planned.length; i++) {
            VariableType t = graph.getVariable(inNames.get(i)).getVariableType();
            planned[i] = t != VariableType.PLACEHOLDER && t != VariableType.VARIABLE;
        }
        return planned;
    }

    /** Binds a legacy op as SameDiff's InferenceSession does: axis and scalar second inputs are arguments. */
    static void bindLegacy(SameDiff graph, SameDiffOp op, Op legacy, INDArray[] args,
                           Map<String, Lifetimes.Value> values, List<Binding> bindings, OpContext oc) {
        DifferentialFunction fn = op.getOp();
        boolean axisArgument = false;
        if (legacy instanceof ReduceOp reduce && reduce.getOpType() != Op.Type.REDUCE3 && args.length == 2) {
            String axisName = op.getInputsToOp().get(1);
            Lifetimes.Value axis = values.get(axisName);
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
    static Set<String> dataInputs(SameDiffOp op) {
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

    static boolean isShapeOp(DifferentialFunction fn) {
        return fn instanceof Shape || fn instanceof ShapeN || fn instanceof Size || fn instanceof SizeAt
                || fn instanceof Rank;
    }

    static List<String> inputs(SameDiffOp op) {
        return op.getInputsToOp() == null ? List.of() : op.getInputsToOp();
    }
}
