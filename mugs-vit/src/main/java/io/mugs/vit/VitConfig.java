package io.mugs.vit;

import com.fasterxml.jackson.annotation.JsonCreator;
import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonProperty;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;

/**
 * Immutable configuration of a {@link VisionTransformer} backbone.
 *
 * <p>The presets reproduce the official Mugs / DINO models exactly (reference §5):
 * <pre>
 *   preset  D     depth heads  params (patch 16, 224 px, no head)
 *   tiny    192   12    3       5,524,416
 *   small   384   12    6      21,665,664
 *   base    768   12    12     85,798,656
 *   large   1024  24    16    303,301,632
 * </pre>
 * All use MLP ratio 4, qkv bias, LayerNorm eps 1e-6 and exact (erf) GELU.
 *
 * <pre>{@code
 * VitConfig s16 = VitConfig.small(16);
 * VitConfig fm  = VitConfig.builder().imageSize(28).inChannels(1).patchSize(4)
 *                          .embedDim(192).depth(6).numHeads(3).build();
 * }</pre>
 *
 * @param imageSize     side of the square training image the learned positional grid is laid out for
 * @param inChannels    image channels (1 for grayscale, 3 for RGB)
 * @param patchSize     side of a square patch; must divide {@code imageSize}
 * @param embedDim      token width D
 * @param depth         number of transformer blocks
 * @param numHeads      attention heads; must divide {@code embedDim}
 * @param mlpRatio      hidden width of the MLP as a multiple of D
 * @param qkvBias       whether the q/k/v projection has a bias
 * @param dropPathRate  maximum stochastic-depth rate (block i uses {@code rate * i / (depth - 1)}); training graphs only
 * @param layerNormEps  LayerNorm epsilon (1e-6; 0 selects ND4J's fused layer_norm, which has no epsilon and is
 *                      about 18 % faster)
 * @param stemChannels  0 (default, the official ViT): the image goes straight into the p x p patch embedding.
 *                      S > 0: a small convolutional stem first, a 3 x 3 stride-1 convolution to S channels with
 *                      exact GELU (weights {@code stem.weight [S,C,3,3]}, {@code stem.bias [S]}), whose output the
 *                      patch embedding reads ({@code patch_embed.proj.weight [D,S,p,p]}); a convolution ahead of the
 *                      patchify step helps ViTs on small images (Xiao et al. 2021, "Early convolutions help
 *                      transformers see better"). Not part of the official models: official weights load only
 *                      with 0, and configurations with 0 write the same JSON as before the option existed.
 */
public record VitConfig(
        int imageSize,
        int inChannels,
        int patchSize,
        int embedDim,
        int depth,
        int numHeads,
        double mlpRatio,
        boolean qkvBias,
        double dropPathRate,
        double layerNormEps,
        @JsonInclude(JsonInclude.Include.NON_DEFAULT) int stemChannels) {

    private static final ObjectMapper JSON = new ObjectMapper();

    /** Validates every field; the message says what to change. */
    public VitConfig(int imageSize, int inChannels, int patchSize, int embedDim, int depth, int numHeads,
                     double mlpRatio, boolean qkvBias, double dropPathRate, double layerNormEps, int stemChannels) {
        require(patchSize > 0, "patchSize must be positive, got " + patchSize);
        require(imageSize >= patchSize && imageSize % patchSize == 0,
                "imageSize " + imageSize + " must be a positive multiple of patchSize " + patchSize
                        + " (e.g. 224/16, 28/4 or 28/7)");
        require(inChannels >= 1, "inChannels must be at least 1 (1 = grayscale, 3 = RGB), got " + inChannels);
        require(embedDim > 0 && depth > 0 && numHeads > 0,
                "embedDim, depth and numHeads must be positive, got " + embedDim + ", " + depth + ", " + numHeads);
        require(embedDim % numHeads == 0,
                "embedDim " + embedDim + " must be divisible by numHeads " + numHeads);
        require(mlpRatio > 0 && Math.rint(embedDim * mlpRatio) == embedDim * mlpRatio,
                "mlpRatio " + mlpRatio + " must be positive and give an integer hidden width for embedDim " + embedDim);
        require(dropPathRate >= 0 && dropPathRate < 1, "dropPathRate must be in [0, 1), got " + dropPathRate);
        require(layerNormEps >= 0, "layerNormEps must be >= 0, got " + layerNormEps);
        require(stemChannels >= 0 && stemChannels <= 4096,
                "stemChannels must be 0 (no convolutional stem) or 1..4096, got " + stemChannels);
        this.imageSize = imageSize;
        this.inChannels = inChannels;
        this.patchSize = patchSize;
        this.embedDim = embedDim;
        this.depth = depth;
        this.numHeads = numHeads;
        this.mlpRatio = mlpRatio;
        this.qkvBias = qkvBias;
        this.dropPathRate = dropPathRate;
        this.layerNormEps = layerNormEps;
        this.stemChannels = stemChannels;
    }

    /**
     * The JSON form: every field required except {@code stemChannels}, which JSON leaves out when it is 0 (so a
     * strict reader that refuses missing numbers still reads every configuration written without a stem).
     */
    @JsonCreator
    static VitConfig fromJsonFields(
            @JsonProperty("imageSize") int imageSize,
            @JsonProperty("inChannels") int inChannels,
            @JsonProperty("patchSize") int patchSize,
            @JsonProperty("embedDim") int embedDim,
            @JsonProperty("depth") int depth,
            @JsonProperty("numHeads") int numHeads,
            @JsonProperty("mlpRatio") double mlpRatio,
            @JsonProperty("qkvBias") boolean qkvBias,
            @JsonProperty("dropPathRate") double dropPathRate,
            @JsonProperty("layerNormEps") double layerNormEps,
            @JsonProperty("stemChannels") Integer stemChannels) {
        return new VitConfig(imageSize, inChannels, patchSize, embedDim, depth, numHeads, mlpRatio, qkvBias,
                dropPathRate, layerNormEps, stemChannels == null ? 0 : stemChannels);
    }

    /** The plain ViT (no convolutional stem), as every official model is. */
    public VitConfig(int imageSize, int inChannels, int patchSize, int embedDim, int depth, int numHeads,
                     double mlpRatio, boolean qkvBias, double dropPathRate, double layerNormEps) {
        this(imageSize, inChannels, patchSize, embedDim, depth, numHeads, mlpRatio, qkvBias, dropPathRate,
                layerNormEps, 0);
    }

    /** Channels the patch embedding reads: the stem's width when there is a stem, else the image's channels. */
    public int patchInChannels() {
        return stemChannels > 0 ? stemChannels : inChannels;
    }

    private static void require(boolean ok, String message) {
        if (!ok) {
            throw new IllegalArgumentException("Invalid VitConfig: " + message);
        }
    }

    /** ViT-Tiny: D 192, 12 blocks, 3 heads, 224 px RGB. */
    public static VitConfig tiny(int patchSize) {
        return builder().patchSize(patchSize).embedDim(192).depth(12).numHeads(3).build();
    }

    /** ViT-Small: D 384, 12 blocks, 6 heads, 224 px RGB (Mugs' main model). */
    public static VitConfig small(int patchSize) {
        return builder().patchSize(patchSize).embedDim(384).depth(12).numHeads(6).build();
    }

    /** ViT-Base: D 768, 12 blocks, 12 heads, 224 px RGB. */
    public static VitConfig base(int patchSize) {
        return builder().patchSize(patchSize).embedDim(768).depth(12).numHeads(12).build();
    }

    /** ViT-Large: D 1024, 24 blocks, 16 heads, 224 px RGB. */
    public static VitConfig large(int patchSize) {
        return builder().patchSize(patchSize).embedDim(1024).depth(24).numHeads(16).build();
    }

    /** Looks a preset up by its official name ({@code vit_tiny}, {@code vit_small}, {@code vit_base}, {@code vit_large}). */
    public static VitConfig preset(String name, int patchSize) {
        return switch (name.toLowerCase().replace("vit_", "")) {
            case "tiny" -> tiny(patchSize);
            case "small" -> small(patchSize);
            case "base" -> base(patchSize);
            case "large" -> large(patchSize);
            default -> throw new IllegalArgumentException("Unknown ViT preset '" + name
                    + "': use one of vit_tiny, vit_small, vit_base, vit_large");
        };
    }

    /** Patches per side of the training image. */
    public int gridSize() {
        return imageSize / patchSize;
    }

    /** Patches of the training image; the learned positional grid has this many rows (plus CLS). */
    public int numPatches() {
        return gridSize() * gridSize();
    }

    public int headDim() {
        return embedDim / numHeads;
    }

    public int mlpHidden() {
        return (int) Math.round(embedDim * mlpRatio);
    }

    /** Drop-path rate of block {@code i}: {@code linspace(0, dropPathRate, depth)[i]}, as in timm / DINO. */
    public double blockDropPathRate(int block) {
        return depth == 1 ? 0.0 : dropPathRate * block / (depth - 1);
    }

    /** Number of trainable parameters of the backbone (no head), computed from the architecture. */
    public long parameterCount() {
        long d = embedDim;
        long stem = stemChannels > 0 ? (long) stemChannels * inChannels * 9 + stemChannels : 0;
        long patchEmbed = stem + (long) patchInChannels() * patchSize * patchSize * d + d;
        long tokens = d + (numPatches() + 1L) * d;
        long h = mlpHidden();
        long block = 2 * d + (3 * d * d + (qkvBias ? 3 * d : 0)) + (d * d + d) + 2 * d + (d * h + h) + (h * d + d);
        return patchEmbed + tokens + depth * block + 2 * d;
    }

    /** Forward FLOPs of one image at {@code size x size} pixels (multiply-add = 2 FLOPs; matmuls only). */
    public double forwardFlops(int size) {
        long n = (long) (size / patchSize) * (size / patchSize);
        long t = n + 1;
        double d = embedDim;
        double stem = 2.0 * size * size * inChannels * 9 * stemChannels;
        double patch = stem + 2.0 * n * patchInChannels() * patchSize * patchSize * d;
        double perBlock = 2.0 * t * d * 3 * d      // qkv
                + 2.0 * t * t * d * 2               // q k^T and attn v
                + 2.0 * t * d * d                   // proj
                + 2.0 * t * d * mlpHidden() * 2;    // fc1, fc2
        return patch + depth * perBlock;
    }

    public Builder toBuilder() {
        return new Builder().imageSize(imageSize).inChannels(inChannels).patchSize(patchSize).embedDim(embedDim)
                .depth(depth).numHeads(numHeads).mlpRatio(mlpRatio).qkvBias(qkvBias)
                .dropPathRate(dropPathRate).layerNormEps(layerNormEps).stemChannels(stemChannels);
    }

    public String toJson() {
        try {
            return JSON.writeValueAsString(this);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }

    public static VitConfig fromJson(String json) {
        try {
            return JSON.readValue(json, VitConfig.class);
        } catch (JsonProcessingException e) {
            throw new IllegalArgumentException("Not a VitConfig JSON: " + e.getOriginalMessage(), e);
        }
    }

    public static Builder builder() {
        return new Builder();
    }

    /** Builder with the official defaults: 224 px RGB, patch 16, ViT-S widths, qkv bias, no drop-path. */
    public static final class Builder {
        private int imageSize = 224;
        private int inChannels = 3;
        private int patchSize = 16;
        private int embedDim = 384;
        private int depth = 12;
        private int numHeads = 6;
        private double mlpRatio = 4.0;
        private boolean qkvBias = true;
        private double dropPathRate = 0.0;
        private double layerNormEps = 1e-6;
        private int stemChannels = 0;

        public Builder imageSize(int v) { imageSize = v; return this; }
        public Builder inChannels(int v) { inChannels = v; return this; }
        public Builder patchSize(int v) { patchSize = v; return this; }
        public Builder embedDim(int v) { embedDim = v; return this; }
        public Builder depth(int v) { depth = v; return this; }
        public Builder numHeads(int v) { numHeads = v; return this; }
        public Builder mlpRatio(double v) { mlpRatio = v; return this; }
        public Builder qkvBias(boolean v) { qkvBias = v; return this; }
        public Builder dropPathRate(double v) { dropPathRate = v; return this; }
        public Builder layerNormEps(double v) { layerNormEps = v; return this; }
        public Builder stemChannels(int v) { stemChannels = v; return this; }

        public VitConfig build() {
            return new VitConfig(imageSize, inChannels, patchSize, embedDim, depth, numHeads, mlpRatio, qkvBias,
                    dropPathRate, layerNormEps, stemChannels);
        }
    }
}
