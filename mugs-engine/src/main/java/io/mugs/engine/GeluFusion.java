package io.mugs.engine;

import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.autodiff.samediff.internal.SameDiffOp;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ops.ScalarOp;

/**
 * A plan-level pattern match: finds the exact GELU {@code x.mul(erfc(x.mul(-1/√2))).mul(0.5)} (how
 * {@code Layers.gelu} writes it) in a plan's op order and puts one {@link FusedGeluOp} in place of its 4 forward
 * ops, and one in place of the 11 backward ops SameDiff differentiates it into:
 * <pre>
 * forward   u = x·(-1/√2); e = erfc(u); m = x·e; y = m·0.5                     → y  = gelu(x)
 * backward  g' = dy·0.5; [dx1, de] = multiply_bp(x, e, g'); c = ones_as(de)·(-2/√π);
 *           du = c·exp(-(u·u))·de; dx = dx1 + du·(-1/√2)                        → dx = dy·gelu'(x)
 * </pre>
 * A pattern is replaced only when every intermediate is read by its own ops and by nothing else (and is not
 * requested), so the fused backward needs only {@code x} and {@code dy}: {@code u} and {@code e} no longer stay
 * alive from the forward to the backward pass. In a gradient graph the forward is fused only together with its
 * backward (the backward reads {@code u} and {@code e}). The graph itself is unchanged, so SameDiff's own session
 * still computes the op sequence.
 *
 * <p>Used by {@link ExecutionPlan} when the Java kernel {@code gelu} is selected ({@link Kernels}; never on CUDA,
 * where the native sequence runs); the fused ops run {@link ExactGelu}'s kernels.
 *
 * <pre>{@code
 * List<SameDiffOp> ops = GeluFusion.apply(graph, order, requested);   // order itself when nothing matched
 * }</pre>
 */
final class GeluFusion extends PlanFusion {

    private GeluFusion(SameDiff graph, List<SameDiffOp> order, Set<String> requested) {
        super(graph, order, requested);
    }

    /** {@code order} with every exact GELU (and its backward) fused, or {@code order} itself when none is found. */
    static List<SameDiffOp> apply(SameDiff graph, List<SameDiffOp> order, Set<String> requested) {
        return new GeluFusion(graph, order, requested).fuse(order);
    }

    /** Tries the pattern starting at {@code neg} ({@code u = x·(-1/√2)}); records what it replaces. */
    @Override
    void match(SameDiffOp neg, Set<SameDiffOp> removed, Map<SameDiffOp, SameDiffOp> replaced) {
        if (!scalarMul(neg, -ExactGelu.INV_SQRT2)) {
            return;
        }
        String x = in(neg, 0);
        String u = out(neg);
        DataType type = graph.getVariable(x).dataType();
        if (type != DataType.FLOAT && type != DataType.DOUBLE || !computed(x)) {
            return;
        }
        SameDiffOp erfc = consumer(u, "erfc", List.of(u));
        String e = erfc == null ? null : out(erfc);
        SameDiffOp mul = e == null ? null : consumer(e, "multiply", List.of(x, e));
        String m = mul == null ? null : out(mul);
        SameDiffOp half = m == null ? null : only(m);
        if (half == null || !scalarMul(half, 0.5)) {
            return;
        }
        List<SameDiffOp> forward = List.of(neg, erfc, mul, half);
        List<SameDiffOp> uReaders = others(u, erfc);
        List<SameDiffOp> eReaders = others(e, mul);
        List<SameDiffOp> backward = List.of();
        if (!uReaders.isEmpty() || !eReaders.isEmpty()) {
            backward = matchBackward(x, u, e, mul, uReaders, eReaders);
            if (backward == null) {
                return;
            }
        }
        Set<SameDiffOp> members = new HashSet<>(forward);
        members.addAll(backward);
        Set<String> results = new HashSet<>(List.of(out(half)));
        if (!backward.isEmpty()) {
            results.add(out(backward.get(backward.size() - 1)));
        }
        if (!privateValues(members, results)) {
            return;
        }
        removed.addAll(forward);
        replaced.put(half, fused(false, List.of(x), out(half), half.getName()));
        if (!backward.isEmpty()) {
            SameDiffOp add = backward.get(backward.size() - 1);
            String dy = in(backward.get(0), 0);
            removed.addAll(backward);
            replaced.put(add, fused(true, List.of(x, dy), out(add), add.getName()));
        }
    }

    /**
     * The 11 backward ops, the final {@code add} last, or {@code null} when SameDiff's backward of this GELU is not
     * exactly the expected sequence.
     */
    private List<SameDiffOp> matchBackward(String x, String u, String e, SameDiffOp mul, List<SameDiffOp> uReaders,
                                           List<SameDiffOp> eReaders) {
        if (uReaders.size() != 1 || eReaders.size() != 1) {
            return null;
        }
        SameDiffOp mulBp = eReaders.get(0);
        List<String> mulIn = PlanInputs.inputs(mul);
        List<String> bpIn = PlanInputs.inputs(mulBp);
        if (!mulBp.getOp().opName().equals("multiply_bp") || bpIn.size() != 3
                || !bpIn.subList(0, 2).equals(mulIn) || mulBp.getOutputsOfOp().size() != 2) {
            return null;
        }
        int xAt = mulIn.get(0).equals(x) ? 0 : 1;
        String dx1 = mulBp.getOutputsOfOp().get(xAt);
        String de = mulBp.getOutputsOfOp().get(1 - xAt);
        SameDiffOp scaleDy = producer.get(bpIn.get(2));
        if (scaleDy == null || !scalarMul(scaleDy, 0.5) || !computed(in(scaleDy, 0))) {
            return null;
        }
        SameDiffOp square = uReaders.get(0);
        if (!square.getOp().opName().equals("multiply") || !PlanInputs.inputs(square).equals(List.of(u, u))) {
            return null;
        }
        SameDiffOp negate = only(out(square));
        SameDiffOp exp = negate != null && scalarMul(negate, -1) ? only(out(negate)) : null;
        if (exp == null || !exp.getOp().opName().equals("exp") || !PlanInputs.inputs(exp).equals(List.of(out(negate)))) {
            return null;
        }
        List<SameDiffOp> deReaders = consumers.getOrDefault(de, List.of());
        if (deReaders.size() != 2) {
            return null;
        }
        SameDiffOp ones = deReaders.get(0).getOp().opName().equals("ones_as") ? deReaders.get(0) : deReaders.get(1);
        SameDiffOp chain = ones == deReaders.get(0) ? deReaders.get(1) : deReaders.get(0);
        SameDiffOp coefficient = ones.getOp().opName().equals("ones_as") ? only(out(ones)) : null;
        if (coefficient == null || !scalarMul(coefficient, -ExactGelu.TWO_OVER_SQRT_PI)) {
            return null;
        }
        SameDiffOp slope = consumer(out(exp), "multiply", List.of(out(coefficient), out(exp)));
        if (slope == null || only(out(coefficient)) != slope
                || consumer(out(slope), "multiply", List.of(out(slope), de)) != chain) {
            return null;
        }
        SameDiffOp inner = only(out(chain));
        SameDiffOp add = inner != null && scalarMul(inner, -ExactGelu.INV_SQRT2)
                ? consumer(out(inner), "add", List.of(dx1, out(inner))) : null;
        if (add == null) {
            return null;
        }
        return List.of(scaleDy, mulBp, ones, coefficient, square, negate, exp, slope, chain, inner, add);
    }

    private SameDiffOp fused(boolean backward, List<String> inputs, String output, String replacedOp) {
        return SameDiffOp.builder().name(replacedOp + (backward ? "/gelu_exact_bp" : "/gelu_exact"))
                .op(new FusedGeluOp(backward)).inputsToOp(inputs).outputsOfOp(List.of(output)).build();
    }

    private static boolean scalarMul(SameDiffOp op, double value) {
        if (!(op.getOp() instanceof ScalarOp s) || !op.getOp().opName().equals("mul_scalar")
                || PlanInputs.inputs(op).size() != 1 || op.getOutputsOfOp().size() != 1 || s.scalar() == null) {
            return false;
        }
        double v = s.scalar().getDouble(0);
        return Math.abs(v - value) <= 1e-6 * Math.abs(value);
    }

    /** The reader of {@code value} named {@code opName} whose inputs are {@code inputs} in either order. */
    private SameDiffOp consumer(String value, String opName, List<String> inputs) {
        for (SameDiffOp op : consumers.getOrDefault(value, List.of())) {
            List<String> in = PlanInputs.inputs(op);
            if (op.getOp().opName().equals(opName) && op.getOutputsOfOp().size() == 1 && in.size() == inputs.size()
                    && (in.equals(inputs) || in.size() == 2 && in.get(0).equals(inputs.get(1))
                    && in.get(1).equals(inputs.get(0)))) {
                return op;
            }
        }
        return null;
    }

    private List<SameDiffOp> others(String value, SameDiffOp except) {
        List<SameDiffOp> out = new ArrayList<>(consumers.getOrDefault(value, List.of()));
        out.remove(except);
        return out;
    }
}
