package io.mugs.engine;

import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Function;
import org.nd4j.autodiff.samediff.internal.SameDiffOp;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.ops.DynamicCustomOp;

/**
 * Planning step 2a, unread gradients: a 2-D {@code matmul_bp} computes the gradients of both factors, but when one of
 * them is read by no op and not requested (the gradient of a placeholder: the instance loss's queue of keys, the
 * local-group memory, the images of the patch embedding), only the other is computed, by one {@code matmul}. That
 * halves the op's work and never allocates the unread value (a queue's gradient is as large as the queue).
 *
 * <p>The product that replaces the op is the one {@code matmul_bp} computes for the read output ({@code dA = dC
 * op(B)^T}, {@code dB = op(A)^T dC}, transposed back when the factor was), so the value is the same up to the
 * rounding order of the native product. {@code -Dmugs.engine.unreadGradients=false} (or {@code
 * -Dmugs.engine.rewrites=false}) computes both.
 *
 * <pre>{@code
 * UnreadGradients unread = new UnreadGradients(order, requested, marked);
 * SameDiffOp op2 = unread.replace(op, arrays);   // op itself, or one product for its only read output
 * }</pre>
 */
final class UnreadGradients {

    private final Set<String> read = new HashSet<>();

    /**
     * @param order     the plan order (after fusions)
     * @param requested the values the caller reads after a run
     * @param marked    the values a replica-mean hook replaces (always computed)
     */
    UnreadGradients(List<SameDiffOp> order, Set<String> requested, Map<String, Boolean> marked) {
        for (SameDiffOp op : order) {
            read.addAll(PlanInputs.inputs(op));
        }
        read.addAll(requested);
        read.addAll(marked.keySet());
    }

    /** Whether the planner drops unread gradients ({@code -Dmugs.engine.unreadGradients}, default true). */
    static boolean enabled() {
        return !"false".equalsIgnoreCase(System.getProperty("mugs.engine.unreadGradients"));
    }

    /**
     * {@code op}, or, for a {@code matmul_bp} of two 2-D factors (no transposed result) with exactly one of its two
     * gradients read, the single product that computes that gradient.
     *
     * @param arrays the array of an input by name (a computed value, a variable, a constant or a placeholder's feed)
     */
    SameDiffOp replace(SameDiffOp op, Function<String, INDArray> arrays) {
        if (!op.getOp().opName().equals("matmul_bp") || !(op.getOp() instanceof DynamicCustomOp d)
                || op.getOutputsOfOp().size() != 2) {
            return op;
        }
        List<String> in = PlanInputs.inputs(op);
        long[] i = d.iArgs();
        if (in.size() != 3 || i.length > 2 && i[2] != 0) {
            return op;
        }
        for (String name : in) {
            INDArray a = arrays.apply(name);
            if (a == null || a.rank() != 2) {
                return op;
            }
        }
        boolean ta = i.length > 0 && i[0] != 0;
        boolean tb = i.length > 1 && i[1] != 0;
        String dA = op.getOutputsOfOp().get(0);
        String dB = op.getOutputsOfOp().get(1);
        boolean readA = read.contains(dA);
        boolean readB = read.contains(dB);
        if (readA == readB) {
            return op;
        }
        return readA ? LateGradients.gradientOfA(op.getName(), in, ta, tb, dA)
                : LateGradients.gradientOfB(op.getName(), in, ta, tb, dB);
    }
}
