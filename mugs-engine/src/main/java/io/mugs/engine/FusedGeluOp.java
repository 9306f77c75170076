package io.mugs.engine;

import java.util.List;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.ops.DynamicCustomOp;
import org.nd4j.linalg.api.ops.OpContext;
import org.nd4j.linalg.api.shape.LongShapeDescriptor;

/**
 * The fused exact GELU that {@link GeluFusion} puts into a plan in place of the forward's 4 ops ({@code gelu_exact})
 * or the backward's 11 ({@code gelu_exact_bp}): one input x (forward) or x and dy (backward), one output of x's shape
 * ({@code [N, D]} or any shape). {@link Kernels} runs it with {@link ExactGelu}'s kernels; it has no native
 * implementation, and SameDiff never sees it (the graph is unchanged).
 *
 * <pre>{@code
 * SameDiffOp fused = SameDiffOp.builder().name(name).op(new FusedGeluOp(false))
 *         .inputsToOp(List.of(x)).outputsOfOp(List.of(y)).build();
 * }</pre>
 */
final class FusedGeluOp extends DynamicCustomOp {
    final boolean backward;

    FusedGeluOp(boolean backward) {
        super(backward ? "gelu_exact_bp" : "gelu_exact");
        this.backward = backward;
    }

    @Override
    public String opName() {
        return backward ? "gelu_exact_bp" : "gelu_exact";
    }

    @Override
    public List<LongShapeDescriptor> calculateOutputShape(OpContext oc) {
        INDArray x = oc.getInputArray(0);
        return List.of(LongShapeDescriptor.fromShape(x.shape(), x.dataType()));
    }
}
