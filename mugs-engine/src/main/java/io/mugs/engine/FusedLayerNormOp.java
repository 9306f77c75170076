package io.mugs.engine;

import java.util.List;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.ops.DynamicCustomOp;
import org.nd4j.linalg.api.ops.OpContext;
import org.nd4j.linalg.api.shape.LongShapeDescriptor;

/**
 * The fused LayerNorm over the rows of x {@code [N, D]} with an epsilon that {@link LayerNormFusion} puts into a
 * plan in place of the forward's 9 ops ({@code layernorm_rows}) or the backward's 13 or 14 ({@code
 * layernorm_rows_bp}). Forward: inputs x, gain, bias; outputs y (x's shape), μ and r ({@code [N, 1]}). Backward:
 * inputs x, gain, bias, μ, r, dy and optionally o (a residual's gradient of x); outputs dx (x's shape), dgain (gain's
 * shape), dbias (bias's shape). {@link Kernels} runs it with {@link RowLayerNorm}'s kernels; it has no native
 * implementation, and SameDiff never sees it (the graph is unchanged).
 *
 * <pre>{@code
 * SameDiffOp fused = SameDiffOp.builder().name(name).op(new FusedLayerNormOp(false, 1e-6))
 *         .inputsToOp(List.of(x, gain, bias)).outputsOfOp(List.of(y, mu, r)).build();
 * }</pre>
 */
final class FusedLayerNormOp extends DynamicCustomOp {
    final boolean backward;
    final double eps;

    FusedLayerNormOp(boolean backward, double eps) {
        super(backward ? "layernorm_rows_bp" : "layernorm_rows");
        this.backward = backward;
        this.eps = eps;
    }

    @Override
    public String opName() {
        return backward ? "layernorm_rows_bp" : "layernorm_rows";
    }

    @Override
    public List<LongShapeDescriptor> calculateOutputShape(OpContext oc) {
        INDArray x = oc.getInputArray(0);
        LongShapeDescriptor full = LongShapeDescriptor.fromShape(x.shape(), x.dataType());
        if (backward) {
            INDArray gain = oc.getInputArray(1);
            INDArray bias = oc.getInputArray(2);
            return List.of(full, LongShapeDescriptor.fromShape(gain.shape(), gain.dataType()),
                    LongShapeDescriptor.fromShape(bias.shape(), bias.dataType()));
        }
        LongShapeDescriptor row = LongShapeDescriptor.fromShape(new long[] {x.size(0), 1}, x.dataType());
        return List.of(full, row, row);
    }
}
