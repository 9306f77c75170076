package io.mugs.vit;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import org.nd4j.autodiff.samediff.SDIndex;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.ops.impl.layers.convolution.config.Conv2DConfig;
import org.nd4j.linalg.api.ops.impl.layers.convolution.config.PaddingMode;
import org.nd4j.linalg.factory.Nd4j;

/**
 * A Vision Transformer backbone as a SameDiff graph builder (DINO / Mugs {@code VisionTransformer}).
 *
 * <p>Constructing it creates (or binds to) the backbone's variables in a {@link SameDiff} under the official
 * state-dict names ({@code cls_token [1,1,D]}, {@code pos_embed [1,1+N,D]},
 * {@code patch_embed.proj.weight [D,C,p,p]}, {@code blocks.i.*}, {@code norm.*}) with an optional prefix.
 * Each call of {@link #apply} adds one forward pass over a batch of crops of one resolution; several calls
 * share the same weights, which is how one model serves 224 px global and 96 px local crops.
 *
 * <pre>
 *   images [B,C,H,W] -> patches (conv p x p stride p, as one GEMM) [B*N, D]
 *   tokens = [CLS ; patches] + pos  (pos bicubic-resized when the crop grid differs)   [B*T, D]
 *   tokens = blocks(tokens)  (pre-norm, drop-path only in TRAINING graphs)
 *   cls = norm(tokens[:,0]); patchMean = mean(norm(tokens[:,1:])); tokenMean = mean(tokens)
 * </pre>
 *
 * <pre>{@code
 * SameDiff sd = SameDiff.create();
 * VisionTransformer vit = new VisionTransformer(sd, "", VitConfig.small(16), DataType.FLOAT, 42);
 * SDVariable x = sd.placeHolder("x", DataType.FLOAT, -1, 3, 96, 96);
 * VitOutputs out = vit.apply(x, 96, 96, VisionTransformer.Mode.INFERENCE, "local");
 * INDArray cls = out.cls().eval(Map.of("x", images));   // [B, 384]
 * }</pre>
 */
public final class VisionTransformer {

    /** Whether a forward pass uses stochastic depth. */
    public enum Mode {
        /** Drop-path masks are placeholders fed per step (see {@link DropPath}). */
        TRAINING,
        /** No drop-path: the teacher, evaluation and export graphs. */
        INFERENCE
    }

    private final SameDiff sd;
    private final String prefix;
    private final VitConfig config;
    private final DataType type;
    private final SDVariable clsToken;
    private final SDVariable posEmbed;
    private final SDVariable stemWeight;
    private final SDVariable stemBias;
    private final SDVariable patchWeight;
    private final SDVariable patchBias;
    private final List<TransformerBlock> blocks = new ArrayList<>();
    private final SDVariable normWeight;
    private final SDVariable normBias;

    /**
     * Creates the variables with the reference initialisation drawn from {@code seed}, or binds to
     * existing variables of the same names.
     *
     * @param prefix prepended to every variable name (e.g. {@code "student."}); may be empty
     */
    public VisionTransformer(SameDiff sd, String prefix, VitConfig config, DataType type, long seed) {
        this.sd = sd;
        this.prefix = prefix;
        this.config = config;
        this.type = type;
        SplittableRandom rng = new SplittableRandom(seed);
        int d = config.embedDim();
        int p = config.patchSize();
        int s = config.stemChannels();
        if (s > 0) {
            int ci = config.inChannels();
            double stemBound = 1.0 / Math.sqrt(ci * 9.0);       // PyTorch's default Conv2d init
            stemWeight = param("stem.weight", () -> Initializers.uniform(rng, type, stemBound, s, ci, 3, 3));
            stemBias = param("stem.bias", () -> Initializers.uniform(rng, type, stemBound, s));
        } else {
            stemWeight = null;
            stemBias = null;
        }
        int c = config.patchInChannels();
        double bound = 1.0 / Math.sqrt((double) c * p * p);   // PyTorch's default Conv2d init
        patchWeight = param("patch_embed.proj.weight", () -> Initializers.uniform(rng, type, bound, d, c, p, p));
        patchBias = param("patch_embed.proj.bias", () -> Initializers.uniform(rng, type, bound, d));
        clsToken = param("cls_token", () -> Initializers.truncatedNormal(rng, type, 0.02, 1, 1, d));
        posEmbed = param("pos_embed",
                () -> Initializers.truncatedNormal(rng, type, 0.02, 1, config.numPatches() + 1L, d));
        for (int i = 0; i < config.depth(); i++) {
            blocks.add(new TransformerBlock(sd, prefix + "blocks." + i + ".", d, config.numHeads(),
                    config.mlpHidden(), config.qkvBias(), config.layerNormEps(), type, rng));
        }
        normWeight = param("norm.weight", () -> Nd4j.ones(type, d));
        normBias = param("norm.bias", () -> Nd4j.zeros(type, d));
    }

    private SDVariable param(String name, java.util.function.Supplier<INDArray> init) {
        String full = prefix + name;
        return sd.hasVariable(full) ? sd.getVariable(full) : sd.var(full, init.get());
    }

    public VitConfig config() {
        return config;
    }

    public SameDiff sameDiff() {
        return sd;
    }

    public String prefix() {
        return prefix;
    }

    /** All trainable variable names of the backbone, in the official order. */
    public List<String> parameterNames() {
        List<String> names = new ArrayList<>(List.of(clsToken.name(), posEmbed.name()));
        if (stemWeight != null) {
            names.add(stemWeight.name());
            names.add(stemBias.name());
        }
        names.add(patchWeight.name());
        names.add(patchBias.name());
        blocks.forEach(b -> names.addAll(b.parameterNames()));
        names.add(normWeight.name());
        names.add(normBias.name());
        return names;
    }

    /** The backbone's current weights under their official names (without the prefix). */
    public Map<String, INDArray> weights() {
        Map<String, INDArray> out = new LinkedHashMap<>();
        for (String name : parameterNames()) {
            out.put(name.substring(prefix.length()), sd.getArrForVarName(name));
        }
        return out;
    }

    /**
     * Copies weights given under official names into this backbone.
     *
     * @throws IllegalArgumentException naming every missing key and every shape mismatch
     */
    public void loadWeights(Map<String, INDArray> weights) {
        List<String> problems = new ArrayList<>();
        for (String name : parameterNames()) {
            String key = name.substring(prefix.length());
            INDArray source = weights.get(key);
            INDArray target = sd.getArrForVarName(name);
            if (source == null) {
                problems.add("missing " + key);
            } else if (!Arrays.equals(source.shape(), target.shape())) {
                problems.add(key + ": expected shape " + Arrays.toString(target.shape()) + " but got "
                        + Arrays.toString(source.shape()));
            }
        }
        if (!problems.isEmpty()) {
            throw new IllegalArgumentException("Weights do not fit " + config + ": " + String.join("; ", problems));
        }
        for (String name : parameterNames()) {
            sd.getArrForVarName(name).assign(weights.get(name.substring(prefix.length())));
        }
    }

    /**
     * The optional stem: a 3 x 3 stride-1 convolution with padding 1 and exact GELU, [B, C, H, W] -> [B, S, H, W].
     * The weights are kept in PyTorch's [S, C, 3, 3] layout and permuted to ND4J's [3, 3, C, S] in the graph.
     */
    private SDVariable convolutionalStem(SDVariable images) {
        Conv2DConfig conv = Conv2DConfig.builder().kH(3).kW(3).sH(1).sW(1).pH(1).pW(1).dH(1).dW(1)
                .paddingMode(PaddingMode.VALID).dataFormat("NCHW").build();
        SDVariable kernel = sd.permute(stemWeight, 2, 3, 1, 0);
        return Layers.gelu(sd, sd.cnn().conv2d(images, kernel, stemBias, conv));
    }

    /** Applies the backbone's final LayerNorm to a 2-D input [M, D] (also used by the local-group aggregator). */
    public SDVariable finalNorm(SDVariable x) {
        return Layers.layerNorm(sd, x, normWeight, normBias, config.layerNormEps());
    }

    /**
     * Adds one forward pass for crops of {@code height x width} pixels.
     *
     * @param images [B, C, height, width]
     * @param tower  a short name unique per call (e.g. {@code "global"}, {@code "local"}); names the outputs
     *               {@code prefix + tower + "/cls"} etc. and the drop-path placeholders
     */
    public VitOutputs apply(SDVariable images, int height, int width, Mode mode, String tower) {
        int p = config.patchSize();
        if (height % p != 0 || width % p != 0 || height < p || width < p) {
            throw new IllegalArgumentException("Crop " + height + "x" + width + " is not a multiple of the patch size "
                    + p + ": choose crop sizes divisible by " + p);
        }
        int gh = height / p;
        int gw = width / p;
        int n = gh * gw;
        int t = n + 1;
        int d = config.embedDim();
        int c = config.patchInChannels();
        String base = prefix + tower + "/";
        if (stemWeight != null) {
            images = convolutionalStem(images);
        }

        // Patch embedding: a p x p stride-p convolution written as one GEMM over extracted patches.
        SDVariable patches = sd.permute(sd.reshape(images, -1, c, gh, p, gw, p), 0, 2, 4, 1, 3, 5);
        patches = sd.reshape(patches, -1, (long) c * p * p);                            // [B*N, C*p*p]
        SDVariable embedded = Layers.linear(sd, patches, sd.reshape(patchWeight, d, (long) c * p * p), patchBias);
        embedded = sd.reshape(embedded, -1, n, d);                                       // [B, N, D]

        SDVariable batch = sd.reshape(sd.sizeAt(images, 0), 1);
        SDVariable repeats = sd.concat(0, batch, sd.constant(Nd4j.createFromArray(1L, 1L)).castTo(batch.dataType()));
        SDVariable x = sd.concat(1, sd.tile(clsToken, repeats), embedded);               // [B, T, D]
        x = x.add(positionalEmbedding(gh, gw));
        x = sd.reshape(x, -1, d);                                                         // [B*T, D]

        List<SDVariable> blockTokens = new ArrayList<>();
        List<DropPath.Slot> slots = new ArrayList<>();
        SDVariable attention = null;
        for (int i = 0; i < blocks.size(); i++) {
            double rate = config.blockDropPathRate(i);
            SDVariable attnMask = null;
            SDVariable mlpMask = null;
            if (mode == Mode.TRAINING && rate > 0) {
                attnMask = sd.placeHolder(base + "droppath." + i + ".attn", type, -1, 1);
                mlpMask = sd.placeHolder(base + "droppath." + i + ".mlp", type, -1, 1);
                slots.add(new DropPath.Slot(attnMask.name(), rate));
                slots.add(new DropPath.Slot(mlpMask.name(), rate));
            }
            TransformerBlock.Output out = blocks.get(i).apply(x, t, attnMask, mlpMask);
            x = out.tokens();
            attention = out.attention();
            blockTokens.add(x);
        }
        attention = sd.identity(base + "attention", attention);

        SDVariable tokens3 = sd.reshape(x, -1, t, d);
        SDVariable cls = sd.identity(base + "cls", finalNorm(clsOf(x, t)));
        SDVariable patchTokens = sd.reshape(finalNorm(x), -1, t, d)
                .get(SDIndex.all(), SDIndex.interval(1, t),
                        SDIndex.all());
        patchTokens = sd.identity(base + "patch_tokens", patchTokens);
        SDVariable patchMean = sd.mean(base + "patch_mean", patchTokens, 1);
        SDVariable tokenMean = sd.mean(base + "token_mean", tokens3, 1);
        return new VitOutputs(images, t, x, cls, patchTokens, patchMean, tokenMean, attention,
                Collections.unmodifiableList(blockTokens), Collections.unmodifiableList(slots));
    }

    /**
     * Final-LN CLS token of each of the last {@code n} blocks (DINO's {@code get_intermediate_layers}), in block
     * order; the linear-probe feature of the reference concatenates them.
     *
     * @return n variables of shape [B, D]
     */
    public List<SDVariable> intermediateCls(VitOutputs outputs, int n) {
        List<SDVariable> all = outputs.blockTokens();
        if (n < 1 || n > all.size()) {
            throw new IllegalArgumentException("n must be in [1, " + all.size() + "], got " + n);
        }
        List<SDVariable> out = new ArrayList<>();
        for (SDVariable block : all.subList(all.size() - n, all.size())) {
            out.add(finalNorm(clsOf(block, outputs.tokensPerImage())));
        }
        return out;
    }

    /** Token 0 of every image: [B*T, D] -> [B, D]. */
    private SDVariable clsOf(SDVariable tokens2d, int t) {
        SDVariable tokens3 = sd.reshape(tokens2d, -1, t, config.embedDim());
        return sd.reshape(sd.stridedSlice(tokens3, new long[] {0, 0, 0}, new long[] {0, 1, 0},
                new long[] {1, 1, 1}, 0b101, 0b101, 0, 0, 0), -1, config.embedDim());
    }

    /** [1, T, D]: the learned grid, bicubic-resized (as a constant matrix product) when the crop grid differs. */
    private SDVariable positionalEmbedding(int gh, int gw) {
        int g = config.gridSize();
        if (gh == g && gw == g) {
            return posEmbed;
        }
        int d = config.embedDim();
        SDVariable clsPos = posEmbed.get(SDIndex.all(),
                SDIndex.interval(0, 1), SDIndex.all());
        SDVariable grid = sd.reshape(posEmbed.get(SDIndex.all(),
                SDIndex.interval(1, g * g + 1),
                SDIndex.all()), (long) g * g, d);
        SDVariable matrix = sd.constant(PositionalEmbeddingInterpolator.matrix(g, g, gh, gw, type));
        SDVariable resized = sd.reshape(sd.mmul(matrix, grid), 1, (long) gh * gw, d);
        return sd.concat(1, clsPos, resized);
    }
}
