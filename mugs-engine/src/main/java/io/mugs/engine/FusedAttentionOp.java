package io.mugs.engine;

import java.util.List;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.ops.DynamicCustomOp;
import org.nd4j.linalg.api.ops.OpContext;
import org.nd4j.linalg.api.shape.LongShapeDescriptor;

/**
 * The fused multi-head self-attention (Vaswani et al. 2017, §3.2.2) that {@link AttentionFusion} puts into a plan in
 * place of the forward's 13 ops ({@code attention}) or the backward's 17 ({@code attention_bp}). Forward: input qkv
 * {@code [B*T, 3D]}, outputs ctx {@code [B*T, D]} and (when {@code withProbabilities}) P {@code [B, H, T, T]}.
 * Backward: inputs qkv, P and dctx, output dqkv {@code [B*T, 3D]}. {@code D = heads·headDim}, T = {@code tokens};
 * {@code scale} multiplies q (1/√dh in the ViT). {@link Kernels} runs it with {@link Attention}'s kernels; it has no
 * native implementation, and SameDiff never sees it (the graph is unchanged).
 *
 * <pre>{@code
 * SameDiffOp fused = SameDiffOp.builder().name(name).op(new FusedAttentionOp(false, true, 17, 4, 16, 0.25))
 *         .inputsToOp(List.of(qkv)).outputsOfOp(List.of(ctx, p)).build();
 * }</pre>
 */
final class FusedAttentionOp extends DynamicCustomOp {
    final boolean backward;
    final boolean withProbabilities;
    final int tokens;
    final int heads;
    final int headDim;
    final double scale;

    FusedAttentionOp(boolean backward, boolean withProbabilities, int tokens, int heads, int headDim, double scale) {
        super(backward ? "attention_bp" : "attention");
        this.backward = backward;
        this.withProbabilities = withProbabilities;
        this.tokens = tokens;
        this.heads = heads;
        this.headDim = headDim;
        this.scale = scale;
    }

    @Override
    public String opName() {
        return backward ? "attention_bp" : "attention";
    }

    @Override
    public List<LongShapeDescriptor> calculateOutputShape(OpContext oc) {
        INDArray qkv = oc.getInputArray(0);
        if (backward) {
            return List.of(LongShapeDescriptor.fromShape(qkv.shape(), qkv.dataType()));
        }
        long rows = qkv.size(0);
        LongShapeDescriptor ctx = LongShapeDescriptor.fromShape(new long[] {rows, (long) heads * headDim},
                qkv.dataType());
        if (!withProbabilities) {
            return List.of(ctx);
        }
        return List.of(ctx, LongShapeDescriptor.fromShape(new long[] {rows / tokens, heads, tokens, tokens},
                qkv.dataType()));
    }
}
