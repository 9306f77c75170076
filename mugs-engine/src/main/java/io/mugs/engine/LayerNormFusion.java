package io.mugs.engine;

import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.autodiff.samediff.internal.SameDiffOp;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ops.DynamicCustomOp;
import org.nd4j.linalg.api.ops.ReduceOp;
import org.nd4j.linalg.api.ops.ScalarOp;

/**
 * A plan-level pattern match: finds the LayerNorm with an epsilon over the rows of x [N, D] (how
 * {@code Layers.layerNorm} writes it when {@code eps != 0}) in a plan's op order and puts one
 * {@link FusedLayerNormOp} in place of its 9 forward ops, and one in place of the 13 (or 14) backward ops SameDiff
 * differentiates it into:
 * <pre>
 * forward   μ = mean(x, 1); c = x - μ; s = c·c; v = mean(s, 1); ve = v + eps; r = rsqrt(ve);
 *           x̂ = c·r; g = x̂·gain; y = g + bias                       → [y, μ, r] = layernorm(x, gain, bias)
 * backward  [dg, dbias] = add_bp(g, bias, dy); [dx̂, dgain] = multiply_bp(x̂, gain, dg);
 *           [dc1, dr] = multiply_bp(c, r, dx̂); dv = dr·(-0.5·ve^-1.5); ds = reduce_mean_bp(s, dv);
 *           [dc2, dc3] = multiply_bp(c, c, ds); dc = dc1 + dc2 + dc3; [dx1, dμ] = subtract_bp(x, μ, dc);
 *           dx2 = reduce_mean_bp(x, dμ); dx = dx1 + dx2 (+ o)         → [dx, dgain, dbias] = layernorm_bp(x, gain,
 *                                                                          bias, μ, r, dy [, o])
 * </pre>
 * {@code o} is a gradient of x from another reader of x (a residual connection), when SameDiff adds it between
 * {@code dx1} and {@code dx2}: the fused backward adds it in the same pass. μ and r are the forward's own
 * [N, 1] values, now written by the fused forward; the [N, D] intermediates c and x̂ no longer stay alive from the
 * forward to the backward pass (the fused backward reads x instead; s, g and x are read by SameDiff's backward for
 * their shapes only).
 *
 * <p>A pattern is replaced only when every intermediate is read by its own ops and by nothing else (and is not
 * requested), and when the readers of dgain and dbias come after the fused backward, which takes the place of the
 * earliest backward op that comes after dy and o are computed. In a gradient graph the forward is fused only
 * together with its backward. The graph itself is unchanged, so SameDiff's own session still computes the op
 * sequence.
 *
 * <p>Used by {@link ExecutionPlan} when the Java kernel {@code layernorm} is selected ({@link Kernels}; never on
 * CUDA, where the native sequence runs); the fused ops run {@link RowLayerNorm}'s kernels.
 *
 * <pre>{@code
 * List<SameDiffOp> ops = LayerNormFusion.apply(graph, order, requested);   // order itself when nothing matched
 * }</pre>
 */
final class LayerNormFusion extends PlanFusion {

    /** The forward ops, in pattern order, and what they compute. */
    private record Forward(List<SameDiffOp> ops, String x, String gain, String bias, double eps) {
        SameDiffOp mean() {
            return ops.get(0);
        }

        SameDiffOp centre() {
            return ops.get(1);
        }

        SameDiffOp square() {
            return ops.get(2);
        }

        SameDiffOp plusEps() {
            return ops.get(4);
        }

        SameDiffOp rsqrt() {
            return ops.get(5);
        }

        SameDiffOp normalised() {
            return ops.get(6);
        }

        SameDiffOp scaled() {
            return ops.get(7);
        }

        SameDiffOp shifted() {
            return ops.get(8);
        }
    }

    /** The backward ops, the sum giving dx, and the parameters' gradients. */
    private record Backward(List<SameDiffOp> ops, AddChain dx, String dgain, String dbias) {
    }

    private LayerNormFusion(SameDiff graph, List<SameDiffOp> order, Set<String> requested) {
        super(graph, order, requested);
    }

    /** {@code order} with every LayerNorm (and its backward) fused, or {@code order} itself when none is found. */
    static List<SameDiffOp> apply(SameDiff graph, List<SameDiffOp> order, Set<String> requested) {
        return new LayerNormFusion(graph, order, requested).fuse(order);
    }

    /** Tries the pattern starting at {@code mean} ({@code μ = mean(x, 1)}); records what it replaces. */
    @Override
    void match(SameDiffOp mean, Set<SameDiffOp> removed, Map<SameDiffOp, SameDiffOp> replaced) {
        Forward f = matchForward(mean);
        if (f == null) {
            return;
        }
        boolean hasBackward = false;
        for (SameDiffOp op : f.ops()) {
            for (String v : op == f.shifted() ? List.<String>of() : op.getOutputsOfOp()) {
                for (SameDiffOp reader : consumers.getOrDefault(v, List.of())) {
                    hasBackward |= !f.ops().contains(reader);
                }
            }
        }
        Backward b = hasBackward ? matchBackward(f) : null;
        if (hasBackward && b == null) {
            return;
        }
        Set<SameDiffOp> members = new HashSet<>(f.ops());
        String y = out(f.shifted());
        Set<String> results = new HashSet<>(List.of(y));
        SameDiffOp at = null;
        if (b != null) {
            members.addAll(b.ops());
            results.addAll(List.of(b.dx().result(), b.dgain(), b.dbias()));
            String extra = b.dx().extra();
            if (extra != null && members.contains(producer.get(extra))) {
                return;
            }
            at = backwardPosition(b);
            for (String g : List.of(b.dgain(), b.dbias())) {
                for (SameDiffOp reader : consumers.getOrDefault(g, List.of())) {
                    if (position.get(reader) <= position.get(at)) {
                        return;
                    }
                }
            }
        }
        if (!privateValues(members, results)) {
            return;
        }
        String mu = out(f.mean());
        String inv = out(f.rsqrt());
        removed.addAll(f.ops());
        replaced.put(f.shifted(), fused(false, f.eps(), List.of(f.x(), f.gain(), f.bias()), List.of(y, mu, inv),
                f.shifted().getName()));
        if (b != null) {
            String dy = in(b.ops().get(0), 2);
            List<String> inputs = new ArrayList<>(List.of(f.x(), f.gain(), f.bias(), mu, inv, dy));
            if (b.dx().extra() != null) {
                inputs.add(b.dx().extra());
            }
            removed.addAll(b.ops());
            replaced.put(at, fused(true, f.eps(), inputs, List.of(b.dx().result(), b.dgain(), b.dbias()),
                    at.getName()));
        }
    }

    /**
     * Where the fused backward goes: in place of its earliest op that comes after dy and the outside gradient are
     * computed. (A parameter shared by several LayerNorms, as the ViT's towers share theirs, has its gradients summed
     * by an op that may come before the last of these ops: the fused op must write dgain and dbias before it.)
     */
    private SameDiffOp backwardPosition(Backward b) {
        int ready = -1;
        for (String v : new String[] {in(b.ops().get(0), 2), b.dx().extra()}) {
            SameDiffOp p = v == null ? null : producer.get(v);
            if (p != null) {
                ready = Math.max(ready, position.get(p));
            }
        }
        SameDiffOp at = null;
        for (SameDiffOp op : b.ops()) {
            int pos = position.get(op);
            if (pos > ready && (at == null || pos < position.get(at))) {
                at = op;
            }
        }
        return at;
    }

    /** The 9 forward ops from {@code mean} on, or {@code null}. */
    private Forward matchForward(SameDiffOp mean) {
        if (!rowMean(mean)) {
            return null;
        }
        String x = in(mean, 0);
        String mu = out(mean);
        DataType type = graph.getVariable(x).dataType();
        long[] shape = graph.getVariable(x).getShape();
        if (type != DataType.FLOAT && type != DataType.DOUBLE || !computed(x) || shape != null && shape.length != 2) {
            return null;
        }
        SameDiffOp centre = exact(mu, "subtract", List.of(x, mu));
        String c = centre == null ? null : out(centre);
        SameDiffOp square = c == null ? null : exact(c, "multiply", List.of(c, c));
        SameDiffOp variance = null;
        if (square != null) {
            for (SameDiffOp op : consumers.getOrDefault(out(square), List.of())) {
                if (rowMean(op)) {
                    variance = op;
                }
            }
        }
        SameDiffOp plusEps = variance == null ? null : only(out(variance));
        if (plusEps == null || !(plusEps.getOp() instanceof ScalarOp s)
                || !plusEps.getOp().opName().equals("add_scalar") || PlanInputs.inputs(plusEps).size() != 1
                || s.scalar() == null) {
            return null;
        }
        double eps = s.scalar().getDouble(0);
        SameDiffOp rsqrt = exact(out(plusEps), "rsqrt", List.of(out(plusEps)));
        if (!(eps > 0) || rsqrt == null) {
            return null;
        }
        String r = out(rsqrt);
        SameDiffOp normalised = either(c, "multiply", c, r);
        String xh = normalised == null ? null : out(normalised);
        SameDiffOp scaled = xh == null ? null : withOther(xh, "multiply");
        String gain = scaled == null ? null : other(scaled, xh);
        SameDiffOp shifted = scaled == null ? null : withOther(out(scaled), "add");
        String bias = shifted == null ? null : other(shifted, out(scaled));
        if (shifted == null || gain.equals(x) || bias.equals(x) || graph.getVariable(gain).dataType() != type
                || graph.getVariable(bias).dataType() != type) {
            return null;
        }
        return new Forward(List.of(mean, centre, square, variance, plusEps, rsqrt, normalised, scaled, shifted), x,
                gain, bias, eps);
    }

    /**
     * The backward ops, ending with the last {@code add} of dx, and the sum that gives dx; {@code null} when
     * SameDiff's backward of this LayerNorm is not exactly the expected sequence.
     */
    private Backward matchBackward(Forward f) {
        String c = out(f.centre());
        String s = out(f.square());
        String mu = out(f.mean());
        SameDiffOp addBp = bpOf(f.shifted(), "add_bp");
        SameDiffOp scaleBp = addBp == null ? null : bpOf(f.scaled(), "multiply_bp");
        if (scaleBp == null || !in(scaleBp, 2).equals(gradOf(addBp, f.shifted(), out(f.scaled())))) {
            return null;
        }
        SameDiffOp normBp = bpOf(f.normalised(), "multiply_bp");
        if (normBp == null || !in(normBp, 2).equals(gradOf(scaleBp, f.scaled(), out(f.normalised())))) {
            return null;
        }
        String dc1 = gradOf(normBp, f.normalised(), c);
        String dr = gradOf(normBp, f.normalised(), out(f.rsqrt()));
        SameDiffOp pow = exact(out(f.plusEps()), "pow", List.of(out(f.plusEps())));
        SameDiffOp half = pow != null && scalar(pow, -1.5) ? only(out(pow)) : null;
        if (half == null || !half.getOp().opName().equals("mul_scalar") || !scalar(half, -0.5)) {
            return null;
        }
        SameDiffOp dv = either(dr, "multiply", dr, out(half));
        SameDiffOp meanBp = dv == null ? null : exact(s, "reduce_mean_bp", List.of(s, out(dv)));
        if (meanBp == null || !rowMeanBp(meanBp)) {
            return null;
        }
        SameDiffOp squareBp = exact(out(meanBp), "multiply_bp", List.of(c, c, out(meanBp)));
        if (squareBp == null || squareBp.getOutputsOfOp().size() != 2) {
            return null;
        }
        AddChain dc = AddChain.match(this,
                List.of(dc1, squareBp.getOutputsOfOp().get(0), squareBp.getOutputsOfOp().get(1)), false);
        SameDiffOp subBp = dc == null ? null : exact(dc.result(), "subtract_bp", List.of(f.x(), mu, dc.result()));
        if (subBp == null || subBp.getOutputsOfOp().size() != 2) {
            return null;
        }
        String dmu = subBp.getOutputsOfOp().get(1);
        SameDiffOp muBp = exact(dmu, "reduce_mean_bp", List.of(f.x(), dmu));
        if (muBp == null || !rowMeanBp(muBp)) {
            return null;
        }
        AddChain dx = AddChain.match(this, List.of(subBp.getOutputsOfOp().get(0), out(muBp)), true);
        if (dx == null) {
            return null;
        }
        List<SameDiffOp> ops = new ArrayList<>(List.of(addBp, scaleBp, normBp, pow, half, dv, meanBp, squareBp));
        ops.addAll(dc.adds());
        ops.add(subBp);
        ops.add(muBp);
        ops.addAll(dx.adds());
        return new Backward(ops, dx, gradOf(scaleBp, f.scaled(), f.gain()), gradOf(addBp, f.shifted(), f.bias()));
    }

    /** The backward op named {@code name} reading the inputs of {@code forward} (then its output gradient). */
    private SameDiffOp bpOf(SameDiffOp forward, String name) {
        List<String> fin = PlanInputs.inputs(forward);
        SameDiffOp found = null;
        for (SameDiffOp op : consumers.getOrDefault(fin.get(0), List.of())) {
            List<String> in = PlanInputs.inputs(op);
            if (op.getOp().opName().equals(name) && in.size() == 3 && in.subList(0, 2).equals(fin)
                    && op.getOutputsOfOp().size() == 2) {
                if (found != null) {
                    return null;
                }
                found = op;
            }
        }
        return found;
    }

    /** Output of backward op {@code bp} (of {@code forward}) that is the gradient of the forward input {@code v}. */
    private static String gradOf(SameDiffOp bp, SameDiffOp forward, String v) {
        return bp.getOutputsOfOp().get(PlanInputs.inputs(forward).indexOf(v));
    }

    private SameDiffOp fused(boolean backward, double eps, List<String> inputs, List<String> outputs,
                             String replacedOp) {
        return SameDiffOp.builder().name(replacedOp + (backward ? "/layernorm_rows_bp" : "/layernorm_rows"))
                .op(new FusedLayerNormOp(backward, eps)).inputsToOp(inputs).outputsOfOp(outputs).build();
    }

    /** A {@code reduce_mean} of one input over dimension 1, keeping it. */
    private static boolean rowMean(SameDiffOp op) {
        if (!(op.getOp() instanceof ReduceOp r) || !op.getOp().opName().equals("reduce_mean")
                || PlanInputs.inputs(op).size() != 1 || op.getOutputsOfOp().size() != 1 || !r.isKeepDims()) {
            return false;
        }
        int[] dims = op.getOp().getDimensions();
        return dims != null && dims.length == 1 && dims[0] == 1;
    }

    /** A {@code reduce_mean_bp} over dimension 1, keeping it. */
    private static boolean rowMeanBp(SameDiffOp op) {
        if (!(op.getOp() instanceof DynamicCustomOp d) || op.getOutputsOfOp().size() != 1) {
            return false;
        }
        long[] dims = d.iArgs();
        boolean[] b = d.bArgs();
        return dims.length == 1 && dims[0] == 1 && b.length >= 1 && b[0];
    }

    private static boolean scalar(SameDiffOp op, double value) {
        if (!(op.getOp() instanceof ScalarOp s) || PlanInputs.inputs(op).size() != 1
                || op.getOutputsOfOp().size() != 1 || s.scalar() == null) {
            return false;
        }
        double v = s.scalar().getDouble(0);
        return Math.abs(v - value) <= 1e-6 * Math.abs(value);
    }

    /** The reader of {@code value} named {@code opName} with one output and exactly {@code inputs}, in order. */
    private SameDiffOp exact(String value, String opName, List<String> inputs) {
        for (SameDiffOp op : consumers.getOrDefault(value, List.of())) {
            if (op.getOp().opName().equals(opName) && PlanInputs.inputs(op).equals(inputs)
                    && (op.getOutputsOfOp().size() == 1 || opName.endsWith("_bp"))) {
                return op;
            }
        }
        return null;
    }

    /** The reader of {@code value} named {@code opName} reading {@code a} and {@code b} in either order. */
    private SameDiffOp either(String value, String opName, String a, String b) {
        SameDiffOp op = exact(value, opName, List.of(a, b));
        return op != null ? op : exact(value, opName, List.of(b, a));
    }

    /** The only forward reader of {@code value}'s kind: a two-input {@code opName} with one output. */
    private SameDiffOp withOther(String value, String opName) {
        SameDiffOp found = null;
        for (SameDiffOp op : consumers.getOrDefault(value, List.of())) {
            List<String> in = PlanInputs.inputs(op);
            if (op.getOp().opName().equals(opName) && in.size() == 2 && op.getOutputsOfOp().size() == 1
                    && !in.get(0).equals(in.get(1))) {
                if (found != null) {
                    return null;
                }
                found = op;
            }
        }
        return found;
    }
}
