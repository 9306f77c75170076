package io.mugs.core;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.MapperFeature;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.json.JsonMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.mugs.data.MultiCropConfig;
import io.mugs.losses.LossWeights;
import io.mugs.losses.MultiCropPairing;
import io.mugs.vit.VitConfig;
import io.mugs.io.InputNormalisation;

/**
 * Everything that defines a Mugs pretraining run: one immutable, validated value with a JSON form, written next
 * to every run and checkpoint. Defaults and presets follow the official recipes (reference §1.3, §6).
 *
 * <pre>{@code
 * MugsConfig cfg = MugsConfig.fashionMnistTiny().toBuilder().epochs(5).build();
 * String json = cfg.toJson();  MugsConfig same = MugsConfig.fromJson(json);
 * }</pre>
 *
 * @param vit                    student backbone (the teacher is the same without drop-path)
 * @param crops                  multi-crop augmentation
 * @param instanceHidden         projector hidden width of the instance and local-group heads (2048)
 * @param instanceOut            their output width (256)
 * @param predictorHidden        student predictor hidden width (4096)
 * @param groupHidden            group-head hidden width (2048)
 * @param groupBottleneck        group-head bottleneck (256)
 * @param prototypes             group prototypes (65,536)
 * @param normLastLayer          fix the prototype gains to 1
 * @param useBnInHead            batch norm in the projectors
 * @param queueSize              rows of each InfoNCE queue (65,536)
 * @param memorySize             rows of each neighbour memory (65,536)
 * @param neighbours             top-k neighbours (8)
 * @param aggregatorDepth        transformer blocks of the local-group aggregator (1)
 * @param officialPointerQuirk   reproduce the released memory-pointer bug
 * @param instanceTemp           InfoNCE temperature of the instance loss (0.2)
 * @param localGroupTemp         InfoNCE temperature of the local-group loss (0.2)
 * @param studentTemp            group-loss student temperature (0.1)
 * @param warmupTeacherTemp      group-loss teacher temperature at epoch 0 (0.04)
 * @param teacherTemp            teacher temperature after warm-up (0.04)
 * @param warmupTeacherTempEpochs epochs of teacher-temperature warm-up (0)
 * @param lossWeights            which losses and how they combine
 * @param pairing                multi-crop pair weighting
 * @param epochs                 training epochs
 * @param batchSize              images per step (the global batch)
 * @param lr                     base learning rate for batch 256 (scaled by batchSize / 256)
 * @param minLr                  final learning rate
 * @param warmupEpochs           linear learning-rate warm-up epochs (fractions allowed: 0.25 = a quarter epoch)
 * @param weightDecay            weight decay at the start (0.04)
 * @param weightDecayEnd         weight decay at the end (cosine)
 * @param momentumTeacher        EMA momentum at the start (0.996, cosine to 1)
 * @param clipGrad               per-tensor gradient-norm clip (3.0; 0 disables)
 * @param freezeLastLayer        epochs during which the prototypes stay frozen (fractions allowed)
 * @param patchEmbedLrMult       learning-rate multiplier of the patch embedding (0.2)
 * @param centreMomentum         group-loss centre momentum (0.9)
 * @param seed                   seed of every random draw
 *
 * <p>How a start executes (loader threads, replicas) is not part of the recipe: see {@link RunSettings}. Config JSON
 * written before they moved there still reads; its {@code workers} and {@code replicas} are ignored.
 *
 * <p>Adding a setting: a record component with its {@code @param} line here, its default in {@link #defaults()},
 * and (optionally) a one-line builder setter; JSON, {@link #with}, {@link #toBuilder()} and the resume check follow.
 */
public record MugsConfig(
        VitConfig vit, MultiCropConfig crops,
        int instanceHidden, int instanceOut, int predictorHidden,
        int groupHidden, int groupBottleneck, int prototypes, boolean normLastLayer, boolean useBnInHead,
        int queueSize, int memorySize, int neighbours, int aggregatorDepth, boolean officialPointerQuirk,
        double instanceTemp, double localGroupTemp, double studentTemp,
        double warmupTeacherTemp, double teacherTemp, int warmupTeacherTempEpochs,
        LossWeights lossWeights, MultiCropPairing.Weighting pairing,
        int epochs, int batchSize, double lr, double minLr, double warmupEpochs,
        double weightDecay, double weightDecayEnd, double momentumTeacher, double clipGrad,
        double freezeLastLayer, double patchEmbedLrMult, double centreMomentum,
        long seed) {

    /**
     * Strict reading: 1.5 is not an int, "2" is not a number, an explicit null is refused ({@link #fromJson}); a
     * field a nested record omits when it holds its default (such as {@code vit.stemChannels}) reads as that default.
     */
    static final ObjectMapper JSON = JsonMapper.builder().enable(SerializationFeature.INDENT_OUTPUT)
            .disable(DeserializationFeature.ACCEPT_FLOAT_AS_INT)
            .disable(DeserializationFeature.FAIL_ON_NULL_FOR_PRIMITIVES)   // an omitted default (vit.stemChannels)
            .disable(MapperFeature.ALLOW_COERCION_OF_SCALARS).build();

    public MugsConfig {
        check(vit != null && crops != null && lossWeights != null && pairing != null,
                "vit, crops, lossWeights and pairing must be set");
        check(vit.inChannels() == crops.channels(), "the backbone has " + vit.inChannels()
                + " input channel(s) but the crops have " + crops.channels() + ": make them equal");
        check(crops.globalSize() % vit.patchSize() == 0 && crops.localSize() % vit.patchSize() == 0,
                "crop sizes " + crops.globalSize() + " and " + crops.localSize() + " must be multiples of the patch size "
                        + vit.patchSize());
        check(instanceHidden > 0 && instanceOut > 0 && predictorHidden > 0 && groupHidden > 0 && groupBottleneck > 0
                && prototypes > 0, "head sizes must be positive");
        check(queueSize > 0 && memorySize > 0, "queueSize and memorySize must be positive");
        // A softmax or a normalisation over an axis of one row or one feature has nothing to compare: the loss is
        // constant and ND4J's reductions drop such an axis, so the step would fail inside the engine.
        for (var axis : java.util.Map.of("queueSize", queueSize, "prototypes", prototypes, "instanceOut",
                instanceOut, "groupBottleneck", groupBottleneck).entrySet()) {
            check(axis.getValue() >= 2, axis.getKey() + " must be at least 2 (a softmax or normalisation over a "
                    + "single entry has nothing to compare), got " + axis.getValue());
        }
        check(neighbours >= 1 && neighbours <= memorySize, "neighbours must be in [1, memorySize], got " + neighbours);
        check(aggregatorDepth >= 1, "aggregatorDepth must be >= 1");
        check(instanceTemp > 0 && localGroupTemp > 0 && studentTemp > 0 && warmupTeacherTemp > 0 && teacherTemp > 0,
                "temperatures must be positive");
        double[] reals = {instanceTemp, localGroupTemp, studentTemp, warmupTeacherTemp, teacherTemp, lr, minLr,
            warmupEpochs, weightDecay, weightDecayEnd, momentumTeacher, clipGrad, freezeLastLayer, patchEmbedLrMult,
            centreMomentum};
        check(java.util.Arrays.stream(reals).allMatch(Double::isFinite), "every real-valued setting must be finite "
                + "(no NaN or Infinity): temperatures, lr, minLr, warmupEpochs, weight decay, momentumTeacher, "
                + "clipGrad, freezeLastLayer, patchEmbedLrMult, centreMomentum");
        check(warmupTeacherTempEpochs >= 0, "warmupTeacherTempEpochs must be >= 0");
        check(epochs >= 1, "epochs must be >= 1, got " + epochs);
        check(batchSize >= 2, "batchSize must be >= 2 (batch statistics and pairs need two images), got " + batchSize);
        check(lr > 0 && minLr >= 0, "lr must be positive and minLr >= 0");
        check(warmupEpochs >= 0 && warmupEpochs <= epochs, "warmupEpochs must be in [0, epochs], got " + warmupEpochs
                + " with " + epochs + " epochs");
        check(weightDecay >= 0 && weightDecayEnd >= 0, "weight decay must be >= 0");
        check(momentumTeacher >= 0 && momentumTeacher <= 1, "momentumTeacher must be in [0, 1]");
        check(clipGrad >= 0, "clipGrad must be >= 0 (0 disables clipping)");
        check(freezeLastLayer >= 0 && patchEmbedLrMult >= 0, "freezeLastLayer and patchEmbedLrMult must be >= 0");
        check(centreMomentum >= 0 && centreMomentum < 1, "centreMomentum must be in [0, 1)");
    }

    private static void check(boolean ok, String message) {
        if (!ok) {
            throw new IllegalArgumentException("Invalid MugsConfig: " + message);
        }
    }

    /** Student views per image: 2 globals + local crops. */
    public int studentViews() {
        return crops.studentViews();
    }

    /** How training normalises its inputs, as stored in checkpoints and backbone files for evaluation. */
    public InputNormalisation inputNormalisation() {
        return new InputNormalisation(crops.channels(), crops.globalSize(), crops.mean(), crops.std());
    }

    /** The learning rate after scaling: {@code lr * batchSize / 256}. */
    public double scaledLr() {
        return lr * batchSize / 256.0;
    }

    public String toJson() {
        try {
            return JSON.writeValueAsString(this);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }

    /**
     * Reads a configuration from {@link #toJson()}'s form, strictly ({@link MugsConfigJson#read}); a field left out
     * because it holds its default reads as that default, and the run settings of older files are ignored.
     *
     * @throws IllegalArgumentException {@code "Not a MugsConfig JSON: ..."}, saying what is wrong
     */
    public static MugsConfig fromJson(String json) {
        return MugsConfigJson.read(json);
    }

    /**
     * This configuration with some fields changed, each given as {@code path=value} where the path names a JSON
     * field of {@link #toJson()} ({@code "lr=2e-3"}, {@code "vit.patchSize=7"}, {@code "lossWeights.group=0"},
     * {@code "crops.globalScale=[0.4,1.0]"}). The result is validated like any other configuration.
     *
     * @throws IllegalArgumentException naming the assignment when a path does not exist or a value does not parse
     */
    public MugsConfig with(String... assignments) {
        return MugsConfigJson.with(this, assignments);
    }

    /** The official ViT-S/16 100-epoch recipe (global batch 512). */
    public static MugsConfig vitSmall() {
        return builder().build();
    }

    /** The official ViT-B/16 400-epoch recipe (global batch 1008). */
    public static MugsConfig vitBase() {
        return builder().vit(VitConfig.base(16).toBuilder().dropPathRate(0.1).build()).batchSize(1008).epochs(400)
                .minLr(2e-6).weightDecayEnd(0.1).freezeLastLayer(3).teacherTemp(0.07).warmupTeacherTempEpochs(50)
                .build();
    }

    /** The official ViT-L/16 250-epoch recipe (global batch 640; the released clip drop to 0.3 after epoch 100 is not applied). */
    public static MugsConfig vitLarge() {
        return builder().vit(VitConfig.large(16).toBuilder().dropPathRate(0.3).build()).batchSize(640).epochs(250)
                .lr(1.5e-3).minLr(1.5e-4).weightDecayEnd(0.08).freezeLastLayer(3).teacherTemp(0.07)
                .warmupTeacherTempEpochs(50).normLastLayer(true).build();
    }

    /**
     * Sized for a 2-core CPU and tuned on Fashion-MNIST (docs/results-fashion-mnist.md): a 4-block, 96-wide ViT with
     * patch 7 (16 tokens at 28 px, 4 at 14 px) and ND4J's fused layer norm ({@code layerNormEps 0}, 18 % faster),
     * {@link MultiCropConfig#fashionMnist()} crops, narrow heads with batch norm in the projectors (the official
     * recipe has none; with it the features learn faster at this scale), 1,024 prototypes, queues and memories of
     * 4,096, batch 32, lr 4e-3 per 256 images (5e-4 at batch 32), teacher momentum 0.99, 10 epochs with 1 warm-up
     * epoch. On the full 60,000 images use a shorter warm-up and freeze ({@code --set warmupEpochs=0.1}).
     */
    public static MugsConfig fashionMnistTiny() {
        return builder()
                .vit(VitConfig.builder().imageSize(28).inChannels(1).patchSize(7).embedDim(96).depth(4).numHeads(3)
                        .layerNormEps(0).build())
                .crops(MultiCropConfig.fashionMnist())
                .instanceHidden(512).instanceOut(128).predictorHidden(512)
                .groupHidden(512).groupBottleneck(128).prototypes(1024).useBnInHead(true)
                .queueSize(4096).memorySize(4096)
                .epochs(10).batchSize(32).lr(4e-3).minLr(1e-5).warmupEpochs(1)
                .weightDecayEnd(0.1).momentumTeacher(0.99)
                .build();
    }

    /**
     * The full-data Fashion-MNIST recipe for 60 training minutes on a 2-core CPU (60,000 images; chosen on a held-out
     * part of the training set, docs/results-fashion-mnist.md "Recipe study"): {@link #fashionMnistTiny()} with
     * larger crops (global 85-100 % of the image, local 30-60 %: the classes differ in sleeves, collars and hems that
     * smaller crops cut away), without the group loss (at this scale it slows the steps by a sixth and does not help
     * the features), a warm-up and a prototype freeze of 0.1 epoch instead of 1 (188 steps; the tiny preset's are
     * sized for the 4,000-image subset) and 7 epochs (13,125 steps of 32: 56.5 training minutes in the results
     * page's run). Its name on the command line is {@code fashion-mnist}; {@code fashion-mnist-tiny} keeps the
     * earlier settings for comparison.
     */
    public static MugsConfig fashionMnist() {
        MugsConfig tiny = fashionMnistTiny();
        return tiny.toBuilder()
                .crops(tiny.crops().toBuilder().globalScale(0.85, 1.0).localScale(0.3, 0.6).build())
                .lossWeights(new LossWeights(1, 1, 0, LossWeights.Combination.OFFICIAL))
                .epochs(7).warmupEpochs(0.1).freezeLastLayer(0.1)
                .build();
    }

    /**
     * {@link #fashionMnist()} with three times its peak learning rate (1.2e-2 per 256 images: 1.5e-3 at batch 32)
     * over a warm-up of half an epoch instead of 0.1 (938 steps). Chosen on the held-out split
     * (docs/results-fashion-mnist.md, "Third round": 2, 3 and 4 times the rate over this warm-up; 3 times gained 0.84
     * point over two seeds after 3 epochs, and the gain grew with the epochs); on the test set its 7 epochs end at
     * 84.90 % k-NN against the {@code fashion-mnist} preset's 84.45 %. Its name on the command line is
     * {@code fashion-mnist-v2}.
     */
    public static MugsConfig fashionMnistV2() {
        return fashionMnist().toBuilder().lr(1.2e-2).warmupEpochs(0.5).build();
    }

    /**
     * {@link #fashionMnistV2()} with harder InfoNCE: instance and local-group temperatures of 0.1 instead of 0.2.
     * Chosen on the held-out split (docs/results-fashion-mnist.md, "Fourth round": +0.80 point over two seeds after 3
     * epochs, the gain growing with the epochs; 0.05 gained less). Its name on the command line is
     * {@code fashion-mnist-v3}.
     */
    public static MugsConfig fashionMnistV3() {
        return fashionMnistV2().toBuilder().instanceTemp(0.1).localGroupTemp(0.1).build();
    }

    /**
     * {@link #fashionMnistV3()} with six transformer blocks instead of four. Chosen on the held-out split
     * (docs/results-fashion-mnist.md, "Fifth round": +0.25 point over two seeds after 3 epochs, ahead at every epoch
     * with both seeds) at about 1.35 times the step's cost; its 7 epochs still fit the hour on two cores. Its name on
     * the command line is {@code fashion-mnist-v4}.
     */
    public static MugsConfig fashionMnistV4() {
        MugsConfig v3 = fashionMnistV3();
        return v3.toBuilder().vit(v3.vit().toBuilder().depth(6).build()).build();
    }

    public Builder toBuilder() {
        return new Builder(JSON.valueToTree(this));
    }

    public static Builder builder() {
        return new Builder(defaults());
    }

    /** The official ViT-S/16 100-epoch defaults, one line per setting, as a JSON tree of this record. */
    private static ObjectNode defaults() {
        ObjectNode d = JSON.createObjectNode();
        d.set("vit", JSON.valueToTree(VitConfig.small(16).toBuilder().dropPathRate(0.1).build()));
        d.set("crops", JSON.valueToTree(MultiCropConfig.imageNet()));
        d.put("instanceHidden", 2048);
        d.put("instanceOut", 256);
        d.put("predictorHidden", 4096);
        d.put("groupHidden", 2048);
        d.put("groupBottleneck", 256);
        d.put("prototypes", 65_536);
        d.put("normLastLayer", false);
        d.put("useBnInHead", false);
        d.put("queueSize", 65_536);
        d.put("memorySize", 65_536);
        d.put("neighbours", 8);
        d.put("aggregatorDepth", 1);
        d.put("officialPointerQuirk", false);
        d.put("instanceTemp", 0.2);
        d.put("localGroupTemp", 0.2);
        d.put("studentTemp", 0.1);
        d.put("warmupTeacherTemp", 0.04);
        d.put("teacherTemp", 0.04);
        d.put("warmupTeacherTempEpochs", 0);
        d.set("lossWeights", JSON.valueToTree(LossWeights.defaults()));
        d.set("pairing", JSON.valueToTree(MultiCropPairing.Weighting.OFFICIAL));
        d.put("epochs", 100);
        d.put("batchSize", 512);
        d.put("lr", 8e-4);
        d.put("minLr", 1e-6);
        d.put("warmupEpochs", 10.0);
        d.put("weightDecay", 0.04);
        d.put("weightDecayEnd", 0.2);
        d.put("momentumTeacher", 0.996);
        d.put("clipGrad", 3.0);
        d.put("freezeLastLayer", 1.0);
        d.put("patchEmbedLrMult", 0.2);
        d.put("centreMomentum", 0.9);
        d.put("seed", 0L);
        return d;
    }

    /**
     * Builder over the JSON form: each setter replaces one field, {@link #build()} reads and validates the result
     * (its error is the constructor's). Starts from {@link #defaults()} or from a configuration ({@link #toBuilder()}).
     */
    public static final class Builder {
        private final ObjectNode node;

        private Builder(ObjectNode node) {
            this.node = node;
        }

        private Builder put(String field, Object value) {
            node.set(field, JSON.valueToTree(value));
            return this;
        }

        public Builder vit(VitConfig v) { return put("vit", v); }
        public Builder crops(MultiCropConfig v) { return put("crops", v); }
        public Builder instanceHidden(int v) { return put("instanceHidden", v); }
        public Builder instanceOut(int v) { return put("instanceOut", v); }
        public Builder predictorHidden(int v) { return put("predictorHidden", v); }
        public Builder groupHidden(int v) { return put("groupHidden", v); }
        public Builder groupBottleneck(int v) { return put("groupBottleneck", v); }
        public Builder prototypes(int v) { return put("prototypes", v); }
        public Builder normLastLayer(boolean v) { return put("normLastLayer", v); }
        public Builder useBnInHead(boolean v) { return put("useBnInHead", v); }
        public Builder queueSize(int v) { return put("queueSize", v); }
        public Builder memorySize(int v) { return put("memorySize", v); }
        public Builder neighbours(int v) { return put("neighbours", v); }
        public Builder aggregatorDepth(int v) { return put("aggregatorDepth", v); }
        public Builder officialPointerQuirk(boolean v) { return put("officialPointerQuirk", v); }
        public Builder instanceTemp(double v) { return put("instanceTemp", v); }
        public Builder localGroupTemp(double v) { return put("localGroupTemp", v); }
        public Builder studentTemp(double v) { return put("studentTemp", v); }
        public Builder warmupTeacherTemp(double v) { return put("warmupTeacherTemp", v); }
        public Builder teacherTemp(double v) { return put("teacherTemp", v); }
        public Builder warmupTeacherTempEpochs(int v) { return put("warmupTeacherTempEpochs", v); }
        public Builder lossWeights(LossWeights v) { return put("lossWeights", v); }
        public Builder pairing(MultiCropPairing.Weighting v) { return put("pairing", v); }
        public Builder epochs(int v) { return put("epochs", v); }
        public Builder batchSize(int v) { return put("batchSize", v); }
        public Builder lr(double v) { return put("lr", v); }
        public Builder minLr(double v) { return put("minLr", v); }
        public Builder warmupEpochs(double v) { return put("warmupEpochs", v); }
        public Builder weightDecay(double v) { return put("weightDecay", v); }
        public Builder weightDecayEnd(double v) { return put("weightDecayEnd", v); }
        public Builder momentumTeacher(double v) { return put("momentumTeacher", v); }
        public Builder clipGrad(double v) { return put("clipGrad", v); }
        public Builder freezeLastLayer(double v) { return put("freezeLastLayer", v); }
        public Builder patchEmbedLrMult(double v) { return put("patchEmbedLrMult", v); }
        public Builder centreMomentum(double v) { return put("centreMomentum", v); }
        public Builder seed(long v) { return put("seed", v); }

        /** @throws IllegalArgumentException {@code "Invalid MugsConfig: ..."}, saying what to change */
        public MugsConfig build() {
            try {
                return JSON.treeToValue(node, MugsConfig.class);
            } catch (JsonProcessingException e) {
                for (Throwable c = e; c != null; c = c.getCause()) {
                    if (c instanceof IllegalArgumentException iae) {
                        throw iae;
                    }
                }
                throw new IllegalArgumentException("Invalid MugsConfig: " + e.getOriginalMessage(), e);
            }
        }
    }
}
