package io.mugs.vit;

import java.util.List;
import java.util.SplittableRandom;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.factory.Nd4j;

/**
 * A pre-norm ViT block (timm / DINO {@code Block}):
 * <pre>
 *   x = x + dropPath(proj(attention(norm1(x))))
 *   x = x + dropPath(fc2(GELU(fc1(norm2(x)))))
 * </pre>
 * Attention is multi-head scaled dot-product attention with scale {@code headDim^-0.5}; the fused q/k/v
 * projection {@code qkv.weight [3D, D]} is laid out {@code [q | k | v]}, each head-major, as in PyTorch.
 *
 * <p>Tokens travel as a 2-D {@code [B*T, D]} matrix (T static, B read at run time), so every linear layer is
 * one GEMM. Parameter names are the official state-dict names under {@code prefix}, e.g.
 * {@code blocks.3.attn.qkv.weight}. The block also serves as Mugs' local-group aggregator
 * ({@code relation_blocks.0}).
 */
public final class TransformerBlock {

    private final SameDiff sd;
    private final String prefix;
    private final int dim;
    private final int heads;
    private final double eps;

    private final SDVariable norm1Weight;
    private final SDVariable norm1Bias;
    private final SDVariable qkvWeight;
    private final SDVariable qkvBias;
    private final SDVariable projWeight;
    private final SDVariable projBias;
    private final SDVariable norm2Weight;
    private final SDVariable norm2Bias;
    private final SDVariable fc1Weight;
    private final SDVariable fc1Bias;
    private final SDVariable fc2Weight;
    private final SDVariable fc2Bias;

    /** Output of one block application. */
    public record Output(SDVariable tokens, SDVariable attention) {
    }

    /**
     * Creates the block's variables, initialised as the reference (trunc-normal 0.02 weights, zero biases,
     * LayerNorm 1/0), or binds to existing ones when {@code sd} already has them (e.g. a loaded graph).
     *
     * @param prefix e.g. {@code "blocks.0."}
     */
    public TransformerBlock(SameDiff sd, String prefix, int dim, int heads, int mlpHidden, boolean qkvBias,
                            double eps, DataType type, SplittableRandom rng) {
        this.sd = sd;
        this.prefix = prefix;
        this.dim = dim;
        this.heads = heads;
        this.eps = eps;
        norm1Weight = param("norm1.weight", Nd4j.ones(type, dim));
        norm1Bias = param("norm1.bias", Nd4j.zeros(type, dim));
        qkvWeight = param("attn.qkv.weight", Initializers.truncatedNormal(rng, type, 0.02, 3L * dim, dim));
        this.qkvBias = qkvBias ? param("attn.qkv.bias", Nd4j.zeros(type, 3L * dim)) : null;
        projWeight = param("attn.proj.weight", Initializers.truncatedNormal(rng, type, 0.02, dim, dim));
        projBias = param("attn.proj.bias", Nd4j.zeros(type, dim));
        norm2Weight = param("norm2.weight", Nd4j.ones(type, dim));
        norm2Bias = param("norm2.bias", Nd4j.zeros(type, dim));
        fc1Weight = param("mlp.fc1.weight", Initializers.truncatedNormal(rng, type, 0.02, mlpHidden, dim));
        fc1Bias = param("mlp.fc1.bias", Nd4j.zeros(type, mlpHidden));
        fc2Weight = param("mlp.fc2.weight", Initializers.truncatedNormal(rng, type, 0.02, dim, mlpHidden));
        fc2Bias = param("mlp.fc2.bias", Nd4j.zeros(type, dim));
    }

    private SDVariable param(String name, org.nd4j.linalg.api.ndarray.INDArray init) {
        String full = prefix + name;
        return sd.hasVariable(full) ? sd.getVariable(full) : sd.var(full, init);
    }

    /** The block's parameter names (official names under the prefix). */
    public List<String> parameterNames() {
        return java.util.stream.Stream.of(norm1Weight, norm1Bias, qkvWeight, qkvBias, projWeight, projBias,
                        norm2Weight, norm2Bias, fc1Weight, fc1Bias, fc2Weight, fc2Bias)
                .filter(java.util.Objects::nonNull).map(SDVariable::name).toList();
    }

    /**
     * Applies the block.
     *
     * @param x              tokens [B*T, D]
     * @param tokensPerImage T
     * @param attnDropPath   per-row drop-path multiplier [B*T, 1] for the attention branch, or {@code null}
     * @param mlpDropPath    the same for the MLP branch, or {@code null}
     * @return tokens [B*T, D] and the attention probabilities [B, H, T, T]
     */
    public Output apply(SDVariable x, int tokensPerImage, SDVariable attnDropPath, SDVariable mlpDropPath) {
        int t = tokensPerImage;
        int dh = dim / heads;
        SDVariable h = Layers.layerNorm(sd, x, norm1Weight, norm1Bias, eps);
        SDVariable qkv = Layers.linear(sd, h, qkvWeight, qkvBias);                     // [B*T, 3D]
        SDVariable[] parts = sd.split(qkv, 3, 1);                                       // 3 x [B*T, D]
        SDVariable q = toHeads(parts[0].mul(1.0 / Math.sqrt(dh)), t, dh);              // [B, H, T, dh]
        SDVariable k = toHeads(parts[1], t, dh);
        SDVariable v = toHeads(parts[2], t, dh);
        SDVariable attention = sd.nn.softmax(sd.mmul(q, k, false, true, false), -1); // [B, H, T, T]
        SDVariable context = sd.permute(sd.mmul(attention, v), 0, 2, 1, 3);           // [B, T, H, dh]
        SDVariable attnOut = Layers.linear(sd, sd.reshape(context, -1, dim), projWeight, projBias);
        x = x.add(attnDropPath == null ? attnOut : attnOut.mul(attnDropPath));

        SDVariable m = Layers.layerNorm(sd, x, norm2Weight, norm2Bias, eps);
        m = Layers.linear(sd, Layers.gelu(sd, Layers.linear(sd, m, fc1Weight, fc1Bias)), fc2Weight, fc2Bias);
        x = x.add(mlpDropPath == null ? m : m.mul(mlpDropPath));
        return new Output(x, attention);
    }

    private SDVariable toHeads(SDVariable x, int t, int dh) {
        return sd.permute(sd.reshape(x, -1, t, heads, dh), 0, 2, 1, 3);
    }
}
