package io.mugs.eval;

import io.mugs.vit.DropPath;
import io.mugs.vit.Initializers;
import io.mugs.vit.Layers;
import io.mugs.vit.VisionTransformer;
import io.mugs.vit.VitConfig;
import io.mugs.vit.VitOutputs;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.autodiff.samediff.VariableType;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * The fine-tuning graph (paper §4.1, Appendix B.2.1): a ViT backbone and a linear classifier on its final-LN CLS token
 * (or CLS and the mean patch token), one SameDiff graph with a training pass (drop path, soft-target cross-entropy)
 * and an inference pass (no drop path, logits) sharing the weights.
 * <pre>
 *   train:  images [B,C,S,S] -> backbone (drop-path masks fed per step) -> f [B,F] -> logits = f W^T + b   [B,K]
 *           loss = -1/B sum_i sum_k targets[i,k] log softmax(logits)[i,k]        targets [B,K] (smoothed, mixed)
 *   eval:   eval_images [B,C,S,S] -> backbone (inference) -> eval_logits [B,K]
 * </pre>
 * Variables: {@code backbone.*} (the official backbone names), {@code head.weight [K,F]} ~ trunc. N(0, 0.02) and
 * {@code head.bias [K]} = 0, as DeiT initialises its head.
 *
 * <p>Parameter groups as BEiT assigns them ({@link #layerId}, {@link #lrScale}, {@link #decays}): with D blocks,
 * {@code cls_token}, {@code pos_embed} and {@code patch_embed.*} are layer 0, block i is layer i + 1, the final norm
 * and the head are layer D + 1; the learning rate of layer l is lr x decay^(D + 1 - l). Weight decay applies to the
 * weight matrices only, not to biases, norms, {@code pos_embed} or {@code cls_token}.
 *
 * <pre>{@code
 * FineTuneModel m = new FineTuneModel(vitConfig, 10, FineTuneConfig.defaults(), DataType.FLOAT);
 * m.backbone().loadWeights(pretrained);
 * double s = FineTuneModel.lrScale("blocks.0.attn.qkv.weight", 4, 0.65);   // 0.65^4
 * }</pre>
 */
public final class FineTuneModel {

    /** Placeholders and outputs. */
    public static final String IMAGES = "images";
    public static final String TARGETS = "targets";
    public static final String LOSS = "loss";
    public static final String EVAL_IMAGES = "eval_images";
    public static final String EVAL_LOGITS = "eval_logits";
    /** Prefix of the backbone's variables. */
    public static final String BACKBONE = "backbone.";

    private final SameDiff sd = SameDiff.create();
    private final VisionTransformer backbone;
    private final List<DropPath.Slot> dropPath;
    private final int tokens;
    private final int classes;
    private final DataType type;

    /**
     * Builds both passes with a randomly initialised backbone (drawn from {@code config.seed()}) of architecture
     * {@code vit} (its drop-path rate replaced by {@code config.dropPath()}) and a head for {@code classes} classes.
     */
    public FineTuneModel(VitConfig vit, int classes, FineTuneConfig config, DataType type) {
        this(vit, vit.imageSize(), classes, config, type);
    }

    /**
     * As above, for images of {@code imageSize} pixels (a multiple of the patch size; the positional embedding is
     * interpolated when it differs from the architecture's image size).
     */
    public FineTuneModel(VitConfig vit, int imageSize, int classes, FineTuneConfig config, DataType type) {
        if (classes < 2) {
            throw new IllegalArgumentException("fine-tuning needs at least 2 classes, got " + classes);
        }
        this.classes = classes;
        this.type = type;
        VitConfig arch = vit.toBuilder().dropPathRate(config.dropPath()).build();
        backbone = new VisionTransformer(sd, BACKBONE, arch, type, config.seed());
        int s = imageSize;
        int c = arch.inChannels();
        int f = config.clsAndPatchMean() ? 2 * arch.embedDim() : arch.embedDim();
        SplittableRandom rng = new SplittableRandom(config.seed() + 101);
        SDVariable w = sd.var("head.weight", Initializers.truncatedNormal(rng, type, 0.02, classes, f));
        SDVariable b = sd.var("head.bias", Nd4j.zeros(type, classes));

        VitOutputs train = backbone.apply(sd.placeHolder(IMAGES, type, -1, c, s, s), s, s,
                VisionTransformer.Mode.TRAINING, "train");
        dropPath = train.dropPath();
        tokens = train.tokensPerImage();
        SDVariable logits = Layers.linear(sd, feature(train, config.clsAndPatchMean()), w, b);
        SDVariable targets = sd.placeHolder(TARGETS, type, -1, classes);
        SDVariable perImage = sd.sum(targets.mul(sd.nn.logSoftmax(logits)), 1);
        SDVariable loss = sd.identity(LOSS, sd.math.neg(sd.mean(perImage)));
        sd.setLossVariables(loss);

        VitOutputs eval = backbone.apply(sd.placeHolder(EVAL_IMAGES, type, -1, c, s, s), s, s,
                VisionTransformer.Mode.INFERENCE, "eval");
        sd.identity(EVAL_LOGITS, Layers.linear(sd, feature(eval, config.clsAndPatchMean()), w, b));
    }

    private SDVariable feature(VitOutputs out, boolean withPatchMean) {
        return withPatchMean ? sd.concat(1, out.cls(), out.patchMean()) : out.cls();
    }

    /**
     * BEiT's layer of a parameter (name without the {@code backbone.} prefix) in a backbone of {@code depth}
     * blocks: 0 for {@code cls_token}, {@code pos_embed}, {@code patch_embed.*}; i + 1 for {@code blocks.i.*};
     * depth + 1 for everything else (final norm, head).
     */
    public static int layerId(String name, int depth) {
        String n = name.startsWith(BACKBONE) ? name.substring(BACKBONE.length()) : name;
        if (n.equals("cls_token") || n.equals("pos_embed") || n.startsWith("patch_embed")) {
            return 0;
        }
        if (n.startsWith("blocks.")) {
            int dot = n.indexOf('.', "blocks.".length());
            return Integer.parseInt(n.substring("blocks.".length(), dot)) + 1;
        }
        return depth + 1;
    }

    /** The learning-rate multiplier {@code decay^(depth + 1 - layerId)}. */
    public static double lrScale(String name, int depth, double decay) {
        return Math.pow(decay, depth + 1 - layerId(name, depth));
    }

    /** Weight decay applies: not a bias, not 1-D (norms), not {@code pos_embed} or {@code cls_token}. */
    public static boolean decays(String name, INDArray param) {
        return !name.endsWith(".bias") && param.rank() > 1 && !name.endsWith("pos_embed")
                && !name.endsWith("cls_token");
    }

    /** Every trainable variable (live arrays), backbone first, then {@code head.weight}, {@code head.bias}. */
    public Map<String, INDArray> parameters() {
        Map<String, INDArray> out = new LinkedHashMap<>();
        for (SDVariable v : sd.variables()) {
            if (v.getVariableType() == VariableType.VARIABLE) {
                out.put(v.name(), v.getArr());
            }
        }
        return out;
    }

    public SameDiff sameDiff() {
        return sd;
    }

    public VisionTransformer backbone() {
        return backbone;
    }

    /** Drop-path mask placeholders of the training pass (empty when the rate is 0). */
    public List<DropPath.Slot> dropPath() {
        return dropPath;
    }

    /** Tokens per image (1 + patches). */
    public int tokensPerImage() {
        return tokens;
    }

    public int classes() {
        return classes;
    }

    public DataType type() {
        return type;
    }
}
