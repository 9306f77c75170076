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
import org.nd4j.linalg.api.ops.ScalarOp;

/**
 * A plan-level pattern match: finds multi-head self-attention as {@code TransformerBlock.apply} writes it (Vaswani et
 * al. 2017, §3.2.2; qkv {@code [B*T, 3D]}, {@code D = H·dh}) in a plan's op order and puts one
 * {@link FusedAttentionOp} in place of its 13 forward ops, and one in place of the 17 backward ops SameDiff
 * differentiates it into:
 * <pre>
 * forward   [q', k', v'] = split(qkv, 3, 1); q = permute(reshape(q'·c, -1,T,H,dh), 0,2,1,3); k, v likewise
 *           without c; S = matmul(q, k, transposeB); P = softmax(S, -1); O = matmul(P, v);
 *           ctx = reshape(permute(O, 0,2,1,3), -1, D)                          → ctx [B*T, D], P [B, H, T, T]
 * backward  dO = permute(reshape(dctx, shape_of(permute(O))), 0,2,1,3); [dP, dv] = matmul_bp(P, v, dO);
 *           dS = softmax_bp(S, dP); [dq, dk] = matmul_bp(q, k, dS, transposeB);
 *           dq' = reshape(permute(dq), shape_of(q'·c))·c; dk' = reshape(permute(dk), shape_of(k'));
 *           dv' likewise; dqkv = concat(dq', dk', dv', 1)                      → dqkv [B*T, 3D]
 * </pre>
 * A pattern is replaced only when every intermediate is read by its own ops and by nothing else (and is not
 * requested), with one exception: {@code P} (the block's returned attention) may be read or requested elsewhere,
 * and is then an output of the fused forward. A gradient flowing into {@code P} from outside breaks the backward
 * match, and the pattern is left alone. In a gradient graph the forward is fused only together with its backward,
 * which reads {@code qkv} and {@code P}: {@code S} and the head-major copies of q, k, v no longer stay alive from the
 * forward to the backward pass. The graph itself is unchanged, so SameDiff's own session still computes the op
 * sequence.
 *
 * <p>Used by {@link ExecutionPlan} when the Java kernel {@code attention} is selected ({@link Kernels}; never on
 * CUDA, where the native sequence runs); the fused ops run {@link Attention}'s kernels.
 *
 * <pre>{@code
 * List<SameDiffOp> ops = AttentionFusion.apply(graph, order, requested);   // order itself when nothing matched
 * }</pre>
 */
final class AttentionFusion extends PlanFusion {

    /** The matched forward: its ops in plan order and what the fused op needs. */
    private record Forward(List<SameDiffOp> ops, String qkv, String[] parts, String scaled, String[] reshaped,
                           String[] heads, String scores, String probabilities, String product, String merged,
                           String context, int tokens, int headCount, int headDim, double scale) {
    }

    private AttentionFusion(SameDiff graph, List<SameDiffOp> order, Set<String> requested) {
        super(graph, order, requested);
    }

    /** {@code order} with every matching attention (and its backward) fused, or {@code order} itself. */
    static List<SameDiffOp> apply(SameDiff graph, List<SameDiffOp> order, Set<String> requested) {
        return new AttentionFusion(graph, order, requested).fuse(order);
    }

    /** Tries the pattern starting at {@code split}; records what it replaces. */
    @Override
    void match(SameDiffOp split, Set<SameDiffOp> removed, Map<SameDiffOp, SameDiffOp> replaced) {
        if (!split.getOp().opName().equals("split")) {
            return;
        }
        Forward f = matchForward(split);
        if (f == null) {
            return;
        }
        Set<SameDiffOp> forward = new HashSet<>(f.ops());
        boolean readOutside = false;
        for (SameDiffOp op : f.ops()) {
            for (String v : op.getOutputsOfOp()) {
                if (v.equals(f.context()) || v.equals(f.probabilities())) {
                    continue;
                }
                for (SameDiffOp reader : consumers.getOrDefault(v, List.of())) {
                    readOutside |= !forward.contains(reader);
                }
            }
        }
        boolean probabilitiesOut = requested.contains(f.probabilities());
        for (SameDiffOp reader : consumers.getOrDefault(f.probabilities(), List.of())) {
            probabilitiesOut |= !forward.contains(reader);
        }
        List<SameDiffOp> backward = List.of();
        if (readOutside) {
            backward = matchBackward(f);
            if (backward == null) {
                return;
            }
        }
        Set<SameDiffOp> members = new HashSet<>(forward);
        members.addAll(backward);
        Set<String> results = new HashSet<>(List.of(f.context(), f.probabilities()));
        if (!backward.isEmpty()) {
            results.add(out(backward.get(backward.size() - 1)));
        }
        if (!privateValues(members, results)) {
            return;
        }
        boolean keepP = !backward.isEmpty() || probabilitiesOut;
        List<String> fwdOut = keepP ? List.of(f.context(), f.probabilities()) : List.of(f.context());
        removed.addAll(f.ops());
        replaced.put(split, fused(false, keepP, f, List.of(f.qkv()), fwdOut, split.getName()));
        if (!backward.isEmpty()) {
            SameDiffOp concat = backward.get(backward.size() - 1);
            String dctx = in(backward.get(1), 0);
            removed.addAll(backward);
            replaced.put(concat, fused(true, true, f, List.of(f.qkv(), f.probabilities(), dctx),
                    List.of(out(concat)), concat.getName()));
        }
    }

    /** The 13 forward ops (split first, the final reshape last), or {@code null}. */
    private Forward matchForward(SameDiffOp split) {
        List<String> splitIn = PlanInputs.inputs(split);
        if (splitIn.size() != 1 || split.getOutputsOfOp().size() != 3
                || !java.util.Arrays.equals(iArgs(split), new long[] {3, 1})) {
            return null;
        }
        String qkv = splitIn.get(0);
        DataType type = graph.getVariable(qkv).dataType();
        if (type != DataType.FLOAT && type != DataType.DOUBLE || !computed(qkv)) {
            return null;
        }
        String[] parts = split.getOutputsOfOp().toArray(new String[0]);
        SameDiffOp scale = only(parts[0]);
        Double c = scale == null ? null : scalarMul(scale);
        if (c == null) {
            return null;
        }
        String[] toHeadsIn = {out(scale), parts[1], parts[2]};
        SameDiffOp[] reshapes = new SameDiffOp[3];
        SameDiffOp[] permutes = new SameDiffOp[3];
        long[] shape = null;
        for (int i = 0; i < 3; i++) {
            reshapes[i] = consumer(toHeadsIn[i], "reshape", List.of(toHeadsIn[i]));
            long[] args = reshapes[i] == null ? null : iArgs(reshapes[i]);
            if (args == null || args.length != 5 || args[0] != -99 || args[1] != -1 || args[2] <= 0 || args[3] <= 0
                    || args[4] <= 0 || shape != null && !java.util.Arrays.equals(args, shape)) {
                return null;
            }
            shape = args;
            permutes[i] = consumer(out(reshapes[i]), "permute", List.of(out(reshapes[i])));
            if (!isSwap12(permutes[i])) {
                return null;
            }
        }
        int tokens = (int) shape[2];
        int heads = (int) shape[3];
        int headDim = (int) shape[4];
        SameDiffOp scores = consumer(out(permutes[0]), "matmul", List.of(out(permutes[0]), out(permutes[1])));
        if (scores == null || !PlanInputs.inputs(scores).get(0).equals(out(permutes[0]))
                || !matmulArgs(scores, 0, 1)) {
            return null;
        }
        SameDiffOp softmax = consumer(out(scores), "softmax", List.of(out(scores)));
        if (softmax == null || !lastAxis(softmax)) {
            return null;
        }
        SameDiffOp product = consumer(out(softmax), "matmul", List.of(out(softmax), out(permutes[2])));
        if (product == null || !PlanInputs.inputs(product).get(0).equals(out(softmax)) || !matmulArgs(product, 0, 0)) {
            return null;
        }
        SameDiffOp merge = consumer(out(product), "permute", List.of(out(product)));
        if (!isSwap12(merge)) {
            return null;
        }
        SameDiffOp flatten = consumer(out(merge), "reshape", List.of(out(merge)));
        if (flatten == null || !java.util.Arrays.equals(iArgs(flatten), new long[] {-99, -1, (long) heads * headDim})) {
            return null;
        }
        List<SameDiffOp> ops = List.of(split, scale, reshapes[0], permutes[0], reshapes[1], permutes[1], reshapes[2],
                permutes[2], scores, softmax, product, merge, flatten);
        return new Forward(ops, qkv, parts, out(scale),
                new String[] {out(reshapes[0]), out(reshapes[1]), out(reshapes[2])},
                new String[] {out(permutes[0]), out(permutes[1]), out(permutes[2])}, out(scores), out(softmax),
                out(product), out(merge), out(flatten), tokens, heads, headDim, c);
    }

    /**
     * The 17 backward ops (the reshape of dctx second, the final concat last), or {@code null} when SameDiff's
     * backward of this attention is not exactly the expected sequence.
     */
    private List<SameDiffOp> matchBackward(Forward f) {
        List<SameDiffOp> ops = new ArrayList<>();
        // dO = permute(reshape(dctx, shape_of(merged)))
        SameDiffOp mergedShape = consumer(f.merged(), "shape_of", List.of(f.merged()));
        SameDiffOp unflatten = mergedShape == null ? null : only(out(mergedShape));
        if (unflatten == null || !unflatten.getOp().opName().equals("reshape")
                || PlanInputs.inputs(unflatten).size() != 2 || !in(unflatten, 1).equals(out(mergedShape))) {
            return null;
        }
        SameDiffOp unmerge = only(out(unflatten));
        if (!isSwap12(unmerge)) {
            return null;
        }
        SameDiffOp productBp = sole(out(unmerge));
        if (!isMatmulBp(productBp, f.probabilities(), f.heads()[2], out(unmerge), 0)) {
            return null;
        }
        String dP = productBp.getOutputsOfOp().get(0);
        String dv = productBp.getOutputsOfOp().get(1);
        SameDiffOp softmaxBp = only(dP);
        if (softmaxBp == null || !softmaxBp.getOp().opName().equals("softmax_bp")
                || !PlanInputs.inputs(softmaxBp).equals(List.of(f.scores(), dP)) || !lastAxis(softmaxBp)) {
            return null;
        }
        SameDiffOp scoresBp = sole(out(softmaxBp));
        if (!isMatmulBp(scoresBp, f.heads()[0], f.heads()[1], out(softmaxBp), 1)) {
            return null;
        }
        ops.addAll(List.of(mergedShape, unflatten, unmerge, productBp, softmaxBp, scoresBp));
        String[] headGrads = {scoresBp.getOutputsOfOp().get(0), scoresBp.getOutputsOfOp().get(1), dv};
        String[] likes = {f.scaled(), f.parts()[1], f.parts()[2]};
        String[] partGrads = new String[3];
        for (int i = 0; i < 3; i++) {
            SameDiffOp unheads = only(headGrads[i]);
            if (!isSwap12(unheads)) {
                return null;
            }
            SameDiffOp shape = consumer(likes[i], "shape_of", List.of(likes[i]));
            SameDiffOp back = shape == null ? null : only(out(unheads));
            if (back == null || !back.getOp().opName().equals("reshape")
                    || !PlanInputs.inputs(back).equals(List.of(out(unheads), out(shape))) || only(out(shape)) != back) {
                return null;
            }
            ops.addAll(List.of(unheads, shape, back));
            partGrads[i] = out(back);
        }
        SameDiffOp rescale = only(partGrads[0]);
        Double c = rescale == null ? null : scalarMul(rescale);
        if (c == null || Math.abs(c - f.scale()) > 1e-12 * Math.abs(f.scale())) {
            return null;
        }
        ops.add(rescale);
        partGrads[0] = out(rescale);
        SameDiffOp concat = only(partGrads[0]);
        if (concat == null || !concat.getOp().opName().equals("concat")
                || !PlanInputs.inputs(concat).equals(List.of(partGrads)) || !java.util.Arrays.equals(iArgs(concat),
                new long[] {1})) {
            return null;
        }
        ops.add(concat);
        // The reshape of dctx second, concat last (the fused op takes the concat's place).
        ops.remove(unflatten);
        ops.add(1, unflatten);
        return ops;
    }

    /** A {@code matmul_bp} of {@code a}·{@code b} (transposeB as given) with gradient {@code grad}, two outputs. */
    private static boolean isMatmulBp(SameDiffOp op, String a, String b, String grad, int transposeB) {
        return op != null && op.getOp().opName().equals("matmul_bp") && op.getOutputsOfOp().size() == 2
                && PlanInputs.inputs(op).equals(List.of(a, b, grad))
                && java.util.Arrays.equals(iArgs(op), new long[] {0, transposeB, 0});
    }

    /** A {@code matmul} with these transposes, no result transpose and alpha 1, beta 0 (or none given). */
    private static boolean matmulArgs(SameDiffOp op, int transposeA, int transposeB) {
        double[] t = ((DynamicCustomOp) op.getOp()).tArgs();
        return java.util.Arrays.equals(iArgs(op), new long[] {transposeA, transposeB, 0})
                && (t.length == 0 || t.length == 2 && t[0] == 1.0 && t[1] == 0.0);
    }

    private static boolean lastAxis(SameDiffOp op) {
        long[] a = iArgs(op);
        return a.length == 1 && (a[0] == -1 || a[0] == 3);
    }

    private static boolean isSwap12(SameDiffOp op) {
        return op != null && op.getOp().opName().equals("permute") && PlanInputs.inputs(op).size() == 1
                && op.getOutputsOfOp().size() == 1 && java.util.Arrays.equals(iArgs(op), new long[] {0, 2, 1, 3});
    }

    private static long[] iArgs(SameDiffOp op) {
        return op.getOp() instanceof DynamicCustomOp d ? d.iArgs() : null;
    }

    private SameDiffOp fused(boolean backward, boolean withP, Forward f, List<String> inputs, List<String> outputs,
                             String replacedOp) {
        return SameDiffOp.builder().name(replacedOp + (backward ? "/attention_bp" : "/attention"))
                .op(new FusedAttentionOp(backward, withP, f.tokens(), f.headCount(), f.headDim(), f.scale()))
                .inputsToOp(inputs).outputsOfOp(outputs).build();
    }

    /** The factor of a {@code mul_scalar} op with one input and one output, or {@code null}. */
    private static Double scalarMul(SameDiffOp op) {
        if (!(op.getOp() instanceof ScalarOp s) || !op.getOp().opName().equals("mul_scalar")
                || PlanInputs.inputs(op).size() != 1 || op.getOutputsOfOp().size() != 1 || s.scalar() == null) {
            return null;
        }
        return s.scalar().getDouble(0);
    }

    /** The reader of {@code value} named {@code opName} whose inputs are {@code inputs} in this order. */
    private SameDiffOp consumer(String value, String opName, List<String> inputs) {
        for (SameDiffOp op : consumers.getOrDefault(value, List.of())) {
            if (op.getOp().opName().equals(opName) && op.getOutputsOfOp().size() == 1
                    && PlanInputs.inputs(op).equals(inputs)) {
                return op;
            }
        }
        return null;
    }

    /** The single reader of {@code value} (of any number of outputs), or {@code null}. */
    private SameDiffOp sole(String value) {
        List<SameDiffOp> r = consumers.getOrDefault(value, List.of());
        return r.size() == 1 ? r.get(0) : null;
    }
}
