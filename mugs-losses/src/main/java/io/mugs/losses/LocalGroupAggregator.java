package io.mugs.losses;

import io.mugs.vit.TransformerBlock;
import io.mugs.vit.VisionTransformer;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.buffer.DataType;

/**
 * The local-group aggregator of Mugs (paper Sec. 3.2, the "transformer" of Fig. 1b; reference §3.2): transformer
 * blocks over the sequence [query; k neighbours] without positional embedding, whose output token 0 passes
 * through the backbone's final LayerNorm.
 * <pre>
 *   u = mean of all pre-LN backbone tokens (incl. CLS)   [B, D]   (VitOutputs.tokenMean)
 *   y* = norm(Blocks([u; n_1 .. n_k])[0])                 [B, D]
 * </pre>
 * Depth defaults to 1 as in the released code (the paper says 2). Blocks use the backbone's width, heads, MLP
 * ratio and qkv bias, no drop-path. Names: {@code relation_blocks.i.*} under the prefix. Gradients reach the
 * blocks and, through u, the backbone; neighbours come from a {@link NeighbourMemory} and carry none.
 *
 * <pre>{@code
 * LocalGroupAggregator agg = new LocalGroupAggregator(sd, "", vit, 1, DataType.FLOAT, seed);
 * SDVariable y = agg.apply(outputs.tokenMean(), neighbours, vit);   // [B, D]
 * }</pre>
 */
public final class LocalGroupAggregator {

    private final List<TransformerBlock> blocks = new ArrayList<>();
    private final SameDiff sd;
    private final int dim;

    public LocalGroupAggregator(SameDiff sd, String prefix, VisionTransformer backbone, int depth, DataType type,
                                long seed) {
        if (depth < 1) {
            throw new IllegalArgumentException("aggregator depth must be at least 1, got " + depth);
        }
        this.sd = sd;
        var cfg = backbone.config();
        this.dim = cfg.embedDim();
        SplittableRandom rng = new SplittableRandom(seed);
        for (int i = 0; i < depth; i++) {
            blocks.add(new TransformerBlock(sd, prefix + "relation_blocks." + i + ".", dim, cfg.numHeads(),
                    cfg.mlpHidden(), cfg.qkvBias(), cfg.layerNormEps(), type, rng));
        }
    }

    /**
     * @param query      u [B, D]
     * @param neighbours [B, k, D]
     * @param k          neighbours per query
     * @param backbone   whose final LayerNorm normalises the output
     * @return [B, D]
     */
    public SDVariable apply(SDVariable query, SDVariable neighbours, int k, VisionTransformer backbone) {
        int t = k + 1;
        SDVariable x = sd.concat(1, sd.reshape(query, -1, 1, dim), neighbours);   // [B, 1+k, D]
        x = sd.reshape(x, -1, dim);
        for (TransformerBlock b : blocks) {
            x = b.apply(x, t, null, null).tokens();
        }
        SDVariable first = sd.stridedSlice(sd.reshape(x, -1, t, dim), new long[] {0, 0, 0}, new long[] {0, 1, 0},
                new long[] {1, 1, 1}, 0b101, 0b101, 0, 0, 0);
        return backbone.finalNorm(sd.reshape(first, -1, dim));
    }

    public List<String> parameterNames() {
        List<String> names = new ArrayList<>();
        blocks.forEach(b -> names.addAll(b.parameterNames()));
        return names;
    }
}
