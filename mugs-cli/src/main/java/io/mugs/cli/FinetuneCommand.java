package io.mugs.cli;

import io.mugs.data.ImageSource;
import io.mugs.eval.FrozenBackbone;
import io.mugs.eval.FineTuneConfig;
import io.mugs.eval.FineTuneRun;
import io.mugs.eval.LabelSubset;
import io.mugs.io.InputNormalisation;
import io.mugs.io.PthReader;
import io.mugs.vit.VisionTransformer;
import io.mugs.vit.weights.OfficialWeights;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.Callable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;

/**
 * {@code mugs finetune}: the backbone and a linear classifier trained end to end ({@link FineTuneRun}), from a
 * pretrained backbone or, with {@code --from-scratch}, from random initialisation with the same recipe and budget;
 * on all labels or a class-balanced subset ({@code --labels 1%}). Top-1 on the test set after every epoch goes into
 * {@code OUT/metrics.jsonl}; an existing run in {@code --output} is resumed.
 *
 * <pre>
 * mugs finetune --model runs/fm/teacher.safetensors --data fmnist:DIR --labels 1% --preset fashion-mnist \
 *               --output runs/ft-1pct
 * mugs finetune --model runs/fm/teacher.safetensors --data fmnist:DIR --labels runs/ft-1pct/labels.json \
 *               --preset fashion-mnist --from-scratch --output runs/scratch-1pct
 * mugs finetune --model dino_deitsmall16_pretrain.pth --data my-images --epochs 30
 * </pre>
 */
@Command(name = "finetune", mixinStandardHelpOptions = true, sortOptions = false,
        description = "Fine-tunes a backbone with a linear classifier end to end (AdamW, layer-wise learning-rate "
                + "decay, warm-up + cosine, drop path, label smoothing, mixup/cutmix, RandAugment); resumes the run "
                + "in --output if there is one.",
        footer = {"", "Examples:",
                "  mugs finetune --model runs/fm/teacher.safetensors --data fmnist:DIR --labels 1%% \\",
                "                --preset fashion-mnist --output runs/ft1",
                "  mugs finetune --model runs/fm/teacher.safetensors --data fmnist:DIR --from-scratch \\",
                "                --preset fashion-mnist --labels runs/ft1/labels.json --output runs/scratch1",
                "                (the same 600 labels, the same recipe and budget)",
                "  mugs finetune --model vit_small_backbone.pth --data my-images --epochs 30 --batch 32",
                "  mugs finetune --model runs/fm/teacher.safetensors --train fmnist:VAL:train --test fmnist:VAL:test",
                "                (choose settings on a held-out split: scripts/make-fashion-mnist-validation.py)",
                "", "The run folder gets config.json, labels.json (the labelled images), metrics.jsonl (test_top1",
                "per epoch; mugs curves / mugs compare --series test_top1 plot it), checkpoint-<step>.safetensors",
                "and, at the end, backbone.safetensors (the fine-tuned backbone, for knn, linear and attention)."})
final class FinetuneCommand implements Callable<Integer> {

    private static final Logger LOG = LoggerFactory.getLogger(FinetuneCommand.class);
    private static final double[] IMAGENET_MEAN = {0.485, 0.456, 0.406};
    private static final double[] IMAGENET_STD = {0.229, 0.224, 0.225};

    @Option(names = "--model", required = true, paramLabel = "MODEL",
            description = "A backbone file, a run's teacher.safetensors, a training or fine-tuning checkpoint, or an "
                    + "official PyTorch .pth; with --from-scratch only its architecture and input normalisation "
                    + "are used.")
    Path model;

    @Option(names = "--data", paramLabel = "DATA",
            description = "fmnist-bundled, fmnist:DIR (train and test splits of the idx files) or a folder with "
                    + "train/ and val/, each with one sub-folder per class.")
    String data;

    @Option(names = "--train", paramLabel = "DATA", description = "Labelled training images (instead of --data).")
    DataSpec train;

    @Option(names = "--test", paramLabel = "DATA", description = "Labelled test images (instead of --data).")
    DataSpec test;

    @Option(names = "--labels", paramLabel = "SPEC", defaultValue = "100%",
            description = "Labelled training images: 1%%, 10%%, 100%%, N-per-class (class-balanced, drawn with "
                    + "--labels-seed) or a labels.json written by an earlier run. Default: 100%%.")
    String labels;

    @Option(names = "--labels-seed", paramLabel = "S", defaultValue = "0",
            description = "Seed of the label draw. Default: ${DEFAULT-VALUE}.")
    long labelsSeed;

    @Option(names = "--from-scratch", description = "Random initialisation of the same architecture, same recipe.")
    boolean fromScratch;

    @Option(names = "--preset", paramLabel = "NAME", defaultValue = "default",
            description = "default (DeiT/BEiT recipe) or fashion-mnist (chosen on a held-out split for the "
                    + "project's Fashion-MNIST ViT: crop scale 0.5, no mixup/cutmix, no RandAugment, no random "
                    + "erasing, --feature cls+mean). Default: ${DEFAULT-VALUE}.")
    String preset;

    @Option(names = "--epochs", paramLabel = "N", description = "Epochs (default: the preset's, 100).")
    Integer epochs;

    @Option(names = "--batch", paramLabel = "B", description = "Images per step (default: the preset's, 64).")
    Integer batch;

    @Option(names = "--lr", paramLabel = "LR", description = "Peak learning rate of the head (default 1e-3).")
    Double lr;

    @Option(names = "--min-lr", paramLabel = "LR", description = "End of the cosine decay (default 1e-6).")
    Double minLr;

    @Option(names = "--warmup-epochs", paramLabel = "E", description = "Linear warm-up epochs (default 5).")
    Double warmupEpochs;

    @Option(names = "--weight-decay", paramLabel = "WD", description = "AdamW weight decay (default 0.05).")
    Double weightDecay;

    @Option(names = "--layer-decay", paramLabel = "D",
            description = "Layer-wise learning-rate decay; 1 is off (default 0.65; the paper: 0.55 for ViT-S/B).")
    Double layerDecay;

    @Option(names = "--drop-path", paramLabel = "P", description = "Drop-path rate (default 0.1).")
    Double dropPath;

    @Option(names = "--label-smoothing", paramLabel = "EPS", description = "Label smoothing; 0 is off (default 0.1).")
    Double labelSmoothing;

    @Option(names = "--mixup", paramLabel = "ALPHA",
            description = "Mixup Beta parameter; 0 is off (default 0.8; the fashion-mnist preset 0).")
    Double mixup;

    @Option(names = "--cutmix", paramLabel = "ALPHA",
            description = "Cutmix Beta parameter; 0 is off (default 1; the fashion-mnist preset 0).")
    Double cutmix;

    @Option(names = "--rand-augment", paramLabel = "BOOL", arity = "1",
            description = "RandAugment rand-m9-mstd0.5-inc1 on training images (default true; the fashion-mnist "
                    + "preset false).")
    Boolean randAugment;

    @Option(names = "--crop-scale", paramLabel = "S",
            description = "Smallest area of the random resized crop; 1 keeps the whole image (default 0.08; the "
                    + "fashion-mnist preset 0.5).")
    Double cropScale;

    @Option(names = "--flip", paramLabel = "BOOL", arity = "1", description = "Random horizontal flip (default true).")
    Boolean flip;

    @Option(names = "--random-erasing", paramLabel = "P",
            description = "Random erasing probability (default 0.25; the fashion-mnist preset 0).")
    Double randomErasing;

    @Option(names = "--feature", paramLabel = "F",
            description = "cls or cls+mean (CLS and the mean patch token) (default: the preset's; cls, the "
                    + "fashion-mnist preset cls+mean).")
    String feature;

    @Option(names = "--clip-grad", paramLabel = "C", description = "Per-tensor gradient-norm limit; 0 is off.")
    Double clipGrad;

    @Option(names = "--seed", paramLabel = "S", defaultValue = "0", description = "Seed. Default: ${DEFAULT-VALUE}.")
    long seed;

    @Option(names = "--output", paramLabel = "DIR", defaultValue = "runs/finetune",
            description = "Run folder; an existing run there is resumed. Default: ${DEFAULT-VALUE}.")
    Path output;

    @Option(names = "--max-minutes", paramLabel = "M",
            description = "Stop after M training minutes in total (with a checkpoint; rerun to resume).")
    Double maxMinutes;

    @Option(names = "--max-steps", paramLabel = "N",
            description = "Stop after N steps in total (with a checkpoint; rerun to resume).")
    Long maxSteps;

    @Option(names = "--eval-every", paramLabel = "N", defaultValue = "1",
            description = "Test top-1 every N epochs and after the last. Default: ${DEFAULT-VALUE}.")
    int evalEvery;

    @Option(names = "--log-every", paramLabel = "N", defaultValue = "50",
            description = "A progress line every N steps (0: epoch lines only). Default: ${DEFAULT-VALUE}.")
    int logEvery;

    @Option(names = "--mean", split = ",", paramLabel = "M",
            description = "Per-channel input mean; replaces the stored one (a .pth without it: ImageNet's).")
    double[] mean;

    @Option(names = "--std", split = ",", paramLabel = "S", description = "Per-channel input std, with --mean.")
    double[] std;

    @Option(names = "--heads", paramLabel = "H", defaultValue = "0",
            description = "Attention heads of a .pth backbone (0: from the official width). Default: ${DEFAULT-VALUE}.")
    int heads;

    @Spec
    CommandSpec spec;

    private ParameterException usage(String message) {
        return new ParameterException(spec.commandLine(), message);
    }

    /** The recipe: the preset, then every option given. */
    FineTuneConfig config() {
        FineTuneConfig.Builder b;
        try {
            b = FineTuneConfig.preset(preset).toBuilder();
        } catch (IllegalArgumentException e) {
            throw usage("--preset: " + e.getMessage());
        }
        Optional.ofNullable(epochs).ifPresent(b::epochs);
        Optional.ofNullable(batch).ifPresent(b::batchSize);
        Optional.ofNullable(lr).ifPresent(b::lr);
        Optional.ofNullable(minLr).ifPresent(b::minLr);
        Optional.ofNullable(warmupEpochs).ifPresent(b::warmupEpochs);
        Optional.ofNullable(weightDecay).ifPresent(b::weightDecay);
        Optional.ofNullable(layerDecay).ifPresent(b::layerDecay);
        Optional.ofNullable(dropPath).ifPresent(b::dropPath);
        Optional.ofNullable(labelSmoothing).ifPresent(b::labelSmoothing);
        Optional.ofNullable(mixup).ifPresent(b::mixup);
        Optional.ofNullable(cutmix).ifPresent(b::cutmix);
        Optional.ofNullable(randAugment).ifPresent(b::randAugment);
        Optional.ofNullable(cropScale).ifPresent(b::cropScale);
        Optional.ofNullable(flip).ifPresent(b::flip);
        Optional.ofNullable(randomErasing).ifPresent(b::randomErasing);
        Optional.ofNullable(clipGrad).ifPresent(b::clipGrad);
        if (feature != null) {
            b.clsAndPatchMean(switch (feature.toLowerCase(Locale.ROOT)) {
                case "cls" -> false;
                case "cls+mean" -> true;
                default -> throw usage("--feature must be cls or cls+mean, got '" + feature + "'");
            });
        }
        b.fromScratch(fromScratch).seed(seed);
        if (epochs != null && warmupEpochs == null) {
            b.warmupEpochs(Math.min(FineTuneConfig.preset(preset).warmupEpochs(), epochs));
        }
        try {
            return b.build();
        } catch (IllegalArgumentException e) {
            throw usage(e.getMessage());
        }
    }

    @Override
    public Integer call() throws Exception {
        long wall0 = System.nanoTime();
        FineTuneConfig config = config();
        if ((mean == null) != (std == null)) {
            throw usage("give --mean and --std together");
        }
        if (evalEvery < 1) {
            throw usage("--eval-every must be >= 1, got " + evalEvery);
        }
        if (logEvery < 0 || maxMinutes != null && !(maxMinutes > 0) || maxSteps != null && maxSteps < 0) {
            throw usage("--log-every must be >= 0, --max-minutes positive and --max-steps >= 0");
        }
        DataSpec[] split = splits();
        ImageSource tr = split[0].open();
        ImageSource te = split[1].open();
        FineTuneRun.Start start = start(model, mean, std, heads);
        int classes = tr.classNames().isEmpty() ? java.util.Arrays.stream(tr.labels()).max().orElse(0) + 1
                : tr.classNames().size();
        LabelSubset subset;
        try {
            subset = LabelSubset.resolve(labels, tr.labels(), classes, labelsSeed);
        } catch (IllegalArgumentException e) {
            throw usage("--labels: " + e.getMessage());
        }
        FineTuneRun.Options options = new FineTuneRun.Options(logEvery, maxSteps == null ? -1 : maxSteps,
                maxMinutes == null ? 0 : maxMinutes, evalEvery, 256, 2);
        FineTuneRun.Result r = FineTuneRun.fit(config, start, tr, subset, te, output, options);
        PrintWriter out = spec.commandLine().getOut();
        if (r.finished()) {
            out.printf(Locale.ROOT, "test top-1 %.2f %%, top-5 %.2f %% (best epoch %.2f %%) after %d epochs on %d "
                    + "labelled images (%s, %s)%n", 100 * r.testTop1(), 100 * r.testTop5(), 100 * r.bestTop1(),
                    config.epochs(), subset.size(), subset.spec(), fromScratch ? "from scratch" : "fine-tuned");
            out.println("fine-tuned backbone: " + output.resolve("backbone.safetensors"));
        } else {
            out.printf(Locale.ROOT, "stopped at step %d by a limit; run the same command again to resume%n",
                    r.steps());
        }
        out.printf(Locale.ROOT, "%.2f training minutes, %.2f wall minutes, peak RSS %.2f GB%n",
                r.trainingSeconds() / 60, (System.nanoTime() - wall0) / 6e10,
                FineTuneRun.rssBytes("VmHWM") / 1e9);
        out.flush();
        return 0;
    }

    /** Training and test data from {@code --data} or {@code --train}/{@code --test}. */
    private DataSpec[] splits() {
        if (data != null && (train != null || test != null)) {
            throw usage("give --data, or --train and --test, not both");
        }
        if (data == null) {
            if (train == null || test == null) {
                throw usage("give --data, or --train and --test");
            }
            return new DataSpec[] {train, test};
        }
        if (data.equals("fmnist-bundled") || data.startsWith("fmnist:") && !data.endsWith(":train")
                && !data.endsWith(":test")) {
            DataSpec t = DataSpec.parse(data + ":train");
            return new DataSpec[] {t, t.otherSplit()};
        }
        Path root = Path.of(data);
        if (!Files.isDirectory(root.resolve("train")) || !Files.isDirectory(root.resolve("val"))) {
            throw usage("--data " + data + " must be fmnist-bundled, fmnist:DIR or a folder with train/ and val/ "
                    + "sub-folders (or give --train and --test)");
        }
        return new DataSpec[] {DataSpec.parse(root.resolve("train").toString()),
            DataSpec.parse(root.resolve("val").toString())};
    }

    /** The architecture, initial weights and input normalisation of {@code model}. */
    static FineTuneRun.Start start(Path model, double[] mean, double[] std, int heads) throws IOException {
        String name = model.getFileName().toString().toLowerCase(Locale.ROOT);
        VisionTransformer vit;
        Optional<InputNormalisation> stored;
        if (name.endsWith(".pth") || name.endsWith(".pt") || name.endsWith(".pth.tar")) {
            Map<String, INDArray> sd = OfficialWeights.backboneStateDict(PthReader.read(model));
            vit = OfficialWeights.load(sd, SameDiff.create(), heads);
            stored = Optional.empty();
            if (mean == null && vit.config().inChannels() == 3) {
                LOG.info("{}: ImageNet's input normalisation (give --mean/--std for another)", model);
                stored = Optional.of(new InputNormalisation(3, vit.config().imageSize(), IMAGENET_MEAN, IMAGENET_STD));
            }
        } else {
            vit = FrozenBackbone.load(model);
            stored = FrozenBackbone.normalisation(model);
        }
        InputNormalisation input;
        if (mean != null) {
            int size = stored.map(InputNormalisation::imageSize).orElse(vit.config().imageSize());
            input = new InputNormalisation(vit.config().inChannels(), size, mean, std);
        } else {
            input = stored.orElseThrow(() -> new IOException(model + " does not say how its input images were "
                    + "normalised: give --mean and --std (" + vit.config().inChannels() + " value(s) each)"));
        }
        return new FineTuneRun.Start(vit.config().toBuilder().dropPathRate(0).build(), vit.weights(), input);
    }
}
