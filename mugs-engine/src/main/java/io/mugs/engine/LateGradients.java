package io.mugs.engine;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Function;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.autodiff.samediff.VariableType;
import org.nd4j.autodiff.samediff.internal.SameDiffOp;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.ops.DynamicCustomOp;

/**
 * Planning step 2b, late gradients: a parameter's gradient that nothing but other such ops reads is computed after
 * the rest of the pass, when the activations are gone, instead of where SameDiff's order puts it. A gradient pass
 * holds its most bytes at the start of the backward, when every activation is still alive; a large parameter whose
 * gradient is computed there (the group head's prototypes, 65,536 x 256 for ViT-S, whose {@code matmul_bp} and
 * {@code reduce_norm2_bp} terms are 64 MiB each) adds its whole size to that peak, while what the gradient is made
 * from is small (the head's [48, 65,536] scores and [48, 256] features).
 *
 * <p>The ops that may move are the tail of the pass: ops whose every output is read only by other tail ops, or by no
 * op (in a gradient pass that is every op but those upstream of a value a {@link ReplicaMean.Hook} replaces).
 * {@link #decide} takes, in plan order:
 * <ul>
 *   <li>a 2-D {@code matmul_bp} whose parameter input is larger than its other two inputs together, and whose
 *       parameter gradient is a tail value: split into two {@code matmul}s, the other input's gradient now and the
 *       parameter's late;</li>
 *   <li>a tail op that reads a value moved late: late too (the sum of a parameter's gradient terms);</li>
 *   <li>a backward op ({@code *_bp}) with one output that reads a parameter larger than all the computed values it
 *       reads ({@code reduce_norm2_bp} of the prototypes): late, since its output is a term of that parameter's
 *       gradient and what it keeps alive is small;</li>
 *   <li>everything else: now.</li>
 * </ul>
 * Late ops run after the rest, in their plan order. Every op still runs once on the same inputs (the split products
 * are the two that {@code matmul_bp} computes), so the values are those of the plan order, up to the rounding of the
 * split products. Values that a {@link ReplicaMean.Hook} replaces, and ops with control dependencies, never move.
 * {@code -Dmugs.engine.lateGradients=false} keeps the plan order.
 *
 * <pre>{@code
 * LateGradients late = new LateGradients(graph, order, requested, marked);
 * LateGradients.Decision d = late.decide(op, arrayOfValue);   // Now, Later, or Split(now, later)
 * }</pre>
 */
final class LateGradients {

    /** What to do with one op. */
    sealed interface Decision permits Now, Later, Split {
    }

    /** Run the op where it is. */
    record Now() implements Decision {
    }

    /** Run the op after the rest of the pass. */
    record Later() implements Decision {
    }

    /** Run {@code now} in the op's place and {@code later} after the rest; together they compute the op. */
    record Split(SameDiffOp now, SameDiffOp later) implements Decision {
    }

    private static final Now NOW = new Now();
    private static final Later LATER = new Later();

    private final SameDiff graph;
    private final Set<SameDiffOp> tail = new HashSet<>();
    private final Set<String> tailValues = new HashSet<>();
    private final Set<String> late = new HashSet<>();

    /**
     * @param order     the plan order
     * @param requested the values the caller reads (they may be tail values)
     * @param marked    the values a replica-mean hook replaces (never tail)
     */
    LateGradients(SameDiff graph, List<SameDiffOp> order, Set<String> requested, Map<String, Boolean> marked) {
        this.graph = graph;
        Map<String, List<SameDiffOp>> readers = new HashMap<>();
        Set<String> controlled = new HashSet<>();
        for (SameDiffOp op : order) {
            for (String in : PlanInputs.inputs(op)) {
                readers.computeIfAbsent(in, k -> new ArrayList<>()).add(op);
            }
            if (hasControlDependencies(op)) {
                controlled.add(op.getName());
                if (op.getControlDeps() != null) {
                    controlled.addAll(op.getControlDeps());
                }
            }
        }
        for (int i = order.size() - 1; i >= 0; i--) {
            SameDiffOp op = order.get(i);
            boolean all = !controlled.contains(op.getName());
            for (String out : op.getOutputsOfOp()) {
                boolean t = !marked.containsKey(out);
                for (SameDiffOp r : readers.getOrDefault(out, List.of())) {
                    t &= tail.contains(r);
                }
                if (t) {
                    tailValues.add(out);
                }
                all &= t;
            }
            if (all) {
                tail.add(op);
            }
        }
    }

    /** Whether the planner moves gradients late ({@code -Dmugs.engine.lateGradients}, default true). */
    static boolean enabled() {
        return !"false".equalsIgnoreCase(System.getProperty("mugs.engine.lateGradients"));
    }

    /**
     * Where {@code op} runs, given the arrays of the values computed so far ({@code computed} returns null for a
     * value not computed yet or not computed by an op).
     */
    Decision decide(SameDiffOp op, Function<String, INDArray> computed) {
        List<String> in = PlanInputs.inputs(op);
        String name = op.getOp().opName();
        if (name.equals("matmul_bp") && op.getOp() instanceof DynamicCustomOp d && in.size() == 3
                && op.getOutputsOfOp().size() == 2) {
            return splitMatmul(op, d, in, computed);
        }
        if (!tail.contains(op)) {
            return NOW;
        }
        for (String v : in) {
            if (late.contains(v)) {
                return later(op);
            }
        }
        if (name.endsWith("_bp") && op.getOutputsOfOp().size() == 1) {
            // A backward op with one output that reads a parameter larger than the computed values it reads: the
            // output is a term of that parameter's gradient, what it keeps alive is small.
            long param = 0;
            long values = 0;
            for (String v : in) {
                INDArray a = array(v, computed);
                if (a != null && isParameter(v)) {
                    param = Math.max(param, a.length());
                } else if (a != null) {
                    values += a.length();
                }
            }
            return param > values ? later(op) : NOW;
        }
        return NOW;
    }

    /** A 2-D {@code matmul_bp} [dA, dB] = bp(A, B, dC) whose parameter's gradient can wait: split, else now. */
    private Decision splitMatmul(SameDiffOp op, DynamicCustomOp d, List<String> in,
                                 Function<String, INDArray> computed) {
        long[] i = d.iArgs();
        if (i.length > 2 && i[2] != 0) {
            return NOW;
        }
        boolean ta = i.length > 0 && i[0] != 0;
        boolean tb = i.length > 1 && i[1] != 0;
        INDArray a = array(in.get(0), computed);
        INDArray b = array(in.get(1), computed);
        INDArray dc = array(in.get(2), computed);
        if (a == null || b == null || dc == null || a.rank() != 2 || b.rank() != 2 || dc.rank() != 2) {
            return NOW;
        }
        String dA = op.getOutputsOfOp().get(0);
        String dB = op.getOutputsOfOp().get(1);
        String name = op.getName();
        if (isParameter(in.get(1)) && tailValues.contains(dB) && b.length() > a.length() + dc.length()) {
            late.add(dB);
            return new Split(gradientOfA(name, in, ta, tb, dA), gradientOfB(name, in, ta, tb, dB));
        }
        if (isParameter(in.get(0)) && tailValues.contains(dA) && a.length() > b.length() + dc.length()) {
            late.add(dA);
            return new Split(gradientOfB(name, in, ta, tb, dB), gradientOfA(name, in, ta, tb, dA));
        }
        return NOW;
    }

    /** dA of C = op(A) op(B): dC op(B)^T, transposed back when A was. */
    static SameDiffOp gradientOfA(String name, List<String> in, boolean ta, boolean tb, String out) {
        String b = in.get(1);
        String dc = in.get(2);
        return ta ? product(name + "/dA", b, dc, tb, true, out) : product(name + "/dA", dc, b, false, !tb, out);
    }

    /** dB of C = op(A) op(B): op(A)^T dC, transposed back when B was. */
    static SameDiffOp gradientOfB(String name, List<String> in, boolean ta, boolean tb, String out) {
        String a = in.get(0);
        String dc = in.get(2);
        return tb ? product(name + "/dB", dc, a, true, ta, out) : product(name + "/dB", a, dc, !ta, false, out);
    }

    private static SameDiffOp product(String name, String x, String y, boolean tx, boolean ty, String out) {
        DynamicCustomOp mm = DynamicCustomOp.builder("matmul").addIntegerArguments(tx ? 1 : 0, ty ? 1 : 0).build();
        return SameDiffOp.builder().name(name).op(mm).inputsToOp(List.of(x, y)).outputsOfOp(List.of(out)).build();
    }

    private Decision later(SameDiffOp op) {
        late.addAll(op.getOutputsOfOp());
        return LATER;
    }

    private boolean isParameter(String name) {
        return graph.getVariable(name).getVariableType() == VariableType.VARIABLE;
    }

    private INDArray array(String name, Function<String, INDArray> computed) {
        INDArray a = computed.apply(name);
        if (a != null) {
            return a;
        }
        VariableType t = graph.getVariable(name).getVariableType();
        return t == VariableType.VARIABLE || t == VariableType.CONSTANT ? graph.getArrForVarName(name) : null;
    }

    private static boolean hasControlDependencies(SameDiffOp op) {
        return op.getControlDeps() != null && !op.getControlDeps().isEmpty()
                || op.getVarControlDeps() != null && !op.getVarControlDeps().isEmpty()
                || op.getControlDepFor() != null && !op.getControlDepFor().isEmpty();
    }
}
