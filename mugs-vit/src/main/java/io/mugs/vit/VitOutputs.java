package io.mugs.vit;

import java.util.List;
import org.nd4j.autodiff.samediff.SDVariable;

/**
 * What one application of a {@link VisionTransformer} to a batch of crops makes available.
 *
 * <p>Shapes use B = images in the batch, T = 1 + N tokens (CLS + N patches), D = embedDim, H = heads.
 * SameDiff executes only what a requested output needs, so unused outputs cost nothing at run time.
 *
 * @param images        the input [B, C, H, W]
 * @param tokensPerImage T
 * @param tokens        output of the last block, before the final LayerNorm, [B*T, D]
 * @param cls           final-LN CLS token [B, D] (DINO's {@code forward_knn}; input of the instance and group heads)
 * @param patchTokens   final-LN patch tokens [B, N, D]
 * @param patchMean     mean of the final-LN patch tokens [B, D] (what Mugs writes into the neighbour memory)
 * @param tokenMean     mean of all pre-LN tokens including CLS [B, D] (the local-group query)
 * @param lastAttention softmax attention of the last block [B, H, T, T]
 * @param blockTokens   each block's output before LayerNorm, [B*T, D], first block first
 * @param dropPath      drop-path mask placeholders the caller must feed in a training graph (empty otherwise)
 */
public record VitOutputs(
        SDVariable images,
        int tokensPerImage,
        SDVariable tokens,
        SDVariable cls,
        SDVariable patchTokens,
        SDVariable patchMean,
        SDVariable tokenMean,
        SDVariable lastAttention,
        List<SDVariable> blockTokens,
        List<DropPath.Slot> dropPath) {
}
