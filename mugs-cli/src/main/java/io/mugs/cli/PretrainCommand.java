package io.mugs.cli;

import io.mugs.core.MugsConfig;
import io.mugs.core.MugsListener;
import io.mugs.core.MugsListeners;
import io.mugs.core.MugsTrainer;
import io.mugs.data.ImageSource;
import io.mugs.plots.TrainingCurves;
import io.mugs.vit.weights.BackboneFiles;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import java.util.function.Supplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;

/**
 * {@code mugs pretrain}: Mugs pretraining from the command line, through {@code MugsTrainer.fit}. The data is the
 * bundled Fashion-MNIST subset (default), Fashion-MNIST idx files ({@code fmnist:DIR}) or a folder of JPEG/PNG
 * images (with class sub-folders or flat). The run folder receives {@code config.json}, {@code metrics.jsonl},
 * {@code checkpoint-*.safetensors} (an existing run there is resumed) and, at the end, the teacher backbone as
 * {@code teacher.safetensors}, with its input normalisation, for {@code mugs knn} and the other tools.
 *
 * <p>Settings, in order: the preset; {@code --epochs}, {@code --batch}, {@code --seed}; for an image folder, its
 * channel count and its measured mean and std (or {@code --mean}/{@code --std}); then every {@code --set}.
 *
 * <pre>
 * mugs pretrain --preset fashion-mnist-tiny --epochs 4          # the main job, on the bundled subset
 * mugs pretrain --data ~/photos --preset vit-small --set crops.globalSize=96 --output runs/photos
 * </pre>
 */
@Command(name = "pretrain", mixinStandardHelpOptions = true, sortOptions = false,
        description = "Mugs self-supervised pretraining of a ViT; resumes the run in --output if there is one.",
        footer = {"", "Examples:",
                "  mugs pretrain --epochs 4                   the main job: bundled Fashion-MNIST",
                "  mugs pretrain --data fmnist:DIR --max-minutes 60",
                "  mugs pretrain --data my-images/train --output runs/my-images",
                "", "The run folder gets config.json, metrics.jsonl, checkpoint-<step>.safetensors",
                "and, at the end, teacher.safetensors for the evaluation commands."})
final class PretrainCommand implements Callable<Integer> {

    private static final Logger LOG = LoggerFactory.getLogger(PretrainCommand.class);
    /** The neighbours of MugsListeners' k-NN monitor. */
    private static final int MONITOR_K = 20;

    /** The presets, by their command-line names. */
    enum Preset {
        FASHION_MNIST_TINY("fashion-mnist-tiny", MugsConfig::fashionMnistTiny),
        FASHION_MNIST("fashion-mnist", MugsConfig::fashionMnist),
        VIT_SMALL("vit-small", MugsConfig::vitSmall),
        VIT_BASE("vit-base", MugsConfig::vitBase),
        VIT_LARGE("vit-large", MugsConfig::vitLarge);

        final String option;
        final Supplier<MugsConfig> config;

        Preset(String option, Supplier<MugsConfig> config) {
            this.option = option;
            this.config = config;
        }

        @Override
        public String toString() {
            return option;
        }
    }

    @Option(names = "--data", paramLabel = "DATA", defaultValue = "fmnist-bundled",
            description = "fmnist-bundled (4,000 images inside the library), fmnist:DIR (Fashion-MNIST idx files) or "
                    + "a folder of JPEG/PNG images, with one sub-folder per class or flat. Default: ${DEFAULT-VALUE}.")
    String data;

    @Option(names = "--preset", paramLabel = "NAME", defaultValue = "fashion-mnist-tiny",
            converter = PresetConverter.class,
            description = "fashion-mnist-tiny (sized for the bundled 4,000 images), fashion-mnist (the full "
                    + "data in 60 minutes on 2 cores), vit-small, vit-base or vit-large. Default: ${DEFAULT-VALUE}.")
    Preset preset;

    @Option(names = "--set", paramLabel = "PATH=VALUE",
            description = "Change a field of the configuration's JSON (repeatable, applied last), e.g. --set lr=2e-3 "
                    + "--set vit.depth=6 --set lossWeights.group=0.")
    List<String> sets = new ArrayList<>();

    @Option(names = "--epochs", paramLabel = "N", description = "Epochs (default: the preset's).")
    Integer epochs;

    @Option(names = "--batch", paramLabel = "B", description = "Images per step (default: the preset's).")
    Integer batch;

    @Option(names = "--seed", paramLabel = "S", defaultValue = "0", description = "Seed. Default: ${DEFAULT-VALUE}.")
    long seed;

    @Option(names = "--output", paramLabel = "DIR",
            description = "Run folder (default runs/PRESET); an existing run there is resumed.")
    Path output;

    @Option(names = "--max-minutes", paramLabel = "M",
            description = "Stop after M training minutes (the checkpoint and k-NN still run; rerun to resume).")
    Double maxMinutes;

    @Option(names = "--eval-train", paramLabel = "DATA",
            description = "Labelled k-NN memory for the monitor (default for fmnist data: its training split).")
    DataSpec evalTrain;

    @Option(names = "--eval-test", paramLabel = "DATA",
            description = "Labelled k-NN queries for the monitor (default for fmnist data: its test split).")
    DataSpec evalTest;

    @Option(names = "--knn-every", paramLabel = "N", defaultValue = "1",
            description = "k-NN monitor every N epochs. Default: ${DEFAULT-VALUE}.")
    int knnEvery;

    @Option(names = "--knn-student", paramLabel = "BOOL", arity = "1", defaultValue = "true",
            description = "Also monitor the student (false halves the monitor's time). Default: ${DEFAULT-VALUE}.")
    boolean knnStudent;

    @Option(names = "--mean", split = ",", paramLabel = "M",
            description = "Per-channel input mean of an image folder (default: measured on up to 256 images).")
    double[] mean;

    @Option(names = "--std", split = ",", paramLabel = "S", description = "Per-channel input std of an image folder.")
    double[] std;

    @Option(names = "--log-every", paramLabel = "N", defaultValue = "10",
            description = "A log line every N steps when the output is not a terminal. Default: ${DEFAULT-VALUE}.")
    int logEvery;

    @Option(names = "--keep", paramLabel = "N", defaultValue = "2",
            description = "Checkpoints kept (the newest). Default: ${DEFAULT-VALUE}.")
    int keep;

    @Spec
    CommandSpec spec;

    @Override
    public Integer call() throws Exception {
        checkOptions();
        DataSpec trainSpec = trainingData(data);
        ImageSource train = trainSpec.open();
        boolean folder = trainSpec.kind() == DataSpec.Kind.FOLDER;
        ImageStatistics stats = folder ? ImageStatistics.measure(train, 256) : null;
        MugsConfig cfg = config(stats);
        ImageSource knnTrain = null;
        ImageSource knnTest = null;
        String monitor = null;
        if (evalTrain != null) {
            knnTrain = evalTrain.open();
            knnTest = evalTest.open();
            ModelOptions.labels(knnTrain);
            ModelOptions.labels(knnTest);
            if (knnTrain.size() < MONITOR_K) {
                throw usage("--eval-train has " + knnTrain.size() + " images; the k-NN monitor needs at least "
                        + MONITOR_K + " (its k)");
            }
        } else if (!folder) {
            knnTrain = train;
            knnTest = trainSpec.otherSplit().open();
        } else {
            FolderMonitor found = FolderMonitor.find(trainSpec.folder(), train, cfg.crops().channels(), MONITOR_K);
            knnTrain = found.train();
            knnTest = found.test();
            monitor = found.message();
        }
        Path out = output != null ? output : Path.of("runs", preset.option);
        PrintWriter console = spec.commandLine().getOut();
        console.printf("Pretraining %s on %d images (%s), %d epochs of batch %d; run folder %s%n", preset,
                train.size(), data, cfg.epochs(), cfg.batchSize(), out.toAbsolutePath());
        console.println(FolderMonitor.describe(train, stats));
        if (monitor != null) {
            console.println(monitor);
        }
        console.flush();

        boolean terminal = System.console() != null;
        List<MugsListener> listeners = new ArrayList<>();
        if (maxMinutes != null) {
            listeners.add(MugsListeners.timeBudget(maxMinutes));
        }
        if (terminal) {
            listeners.add(new ProgressBarListener(System.out));
        }
        // In a terminal the bar replaces the per-step log lines (a log interval no run reaches).
        listeners.addAll(MugsListeners.defaults(out, terminal ? Integer.MAX_VALUE : logEvery, keep, knnTrain,
                knnTest, knnEvery, knnStudent));
        MugsTrainer trainer = MugsTrainer.fit(cfg, train, out, listeners);

        Path teacher = out.resolve("teacher.safetensors");
        BackboneFiles.save(teacher, trainer.model().teacherBackbone(), cfg.inputNormalisation());
        console.println("teacher backbone: " + teacher);
        if (knnTrain != null) {
            double acc = MugsListeners.knnAccuracy(trainer, MugsListeners.teacherFeatures(trainer), knnTrain,
                    knnTest);
            double raw = PixelBaseline.knnTop1(knnTrain, knnTest, cfg.inputNormalisation());
            double untrained = untrainedAccuracy(out.resolve("metrics.jsonl"));
            if (acc < untrained) {
                console.println(fallingHint(untrained, acc));
            }
            console.println(finalLine(knnTest.size(), untrained, acc, raw));
        }
        console.flush();
        return 0;
    }

    /**
     * The main job's last line: the untrained teacher's k-NN (NaN when the log has none), the trained teacher's, the
     * raw-pixel k-NN and the distances between them.
     */
    static String finalLine(int testImages, double untrained, double teacher, double raw) {
        double points = 100 * (teacher - raw);
        String learned = Double.isNaN(untrained) ? "" : String.format(Locale.ROOT,
                "untrained teacher %.2f %%, ", 100 * untrained);
        String gain = Double.isNaN(untrained) ? "" : String.format(Locale.ROOT, " (%+.2f points from pretraining)",
                100 * (teacher - untrained));
        return String.format(Locale.ROOT, "k-NN top-1 (k 20, T 0.07) on %d test images: %sMugs teacher %.2f %%%s, "
                + "raw pixels %.2f %% (%.2f points %s raw pixels)", testImages, learned, 100 * teacher, gain,
                100 * raw, Math.abs(points), points < 0 ? "below" : "above");
    }

    /** The one hint line when pretraining made the teacher's k-NN worse than at initialisation. */
    static String fallingHint(double untrained, double teacher) {
        return String.format(Locale.ROOT, "hint: the teacher's k-NN fell below the untrained teacher's (%.2f %% < "
                + "%.2f %%): the EMA teacher lags the student by a few hundred steps, so first give it more steps "
                + "(more --epochs, or a smaller --batch on few images); for small images also try larger crops "
                + "(--set crops.globalScale=[0.7,1.0] --set crops.localScale=[0.2,0.5])", 100 * teacher,
                100 * untrained);
    }

    /** The k-NN of the untrained teacher (the monitor's first point, iteration -1) from the run's log, or NaN. */
    static double untrainedAccuracy(Path metrics) {
        try {
            List<double[]> knn = TrainingCurves.read(metrics).get("knn_top1");
            return knn != null && knn.get(0)[0] < 0 ? knn.get(0)[1] : Double.NaN;
        } catch (IOException e) {
            LOG.warn("cannot read the untrained k-NN from {}: {}", metrics, e.getMessage());
            return Double.NaN;
        }
    }

    private void checkOptions() {
        if ((evalTrain == null) != (evalTest == null)) {
            throw usage("give --eval-train and --eval-test together");
        }
        if ((mean == null) != (std == null)) {
            throw usage("give --mean and --std together");
        }
        if (knnEvery < 1 || logEvery < 1 || keep < 1) {
            throw usage("--knn-every, --log-every and --keep must be >= 1");
        }
        if (maxMinutes != null && !(maxMinutes > 0 && Double.isFinite(maxMinutes))) {
            throw usage("--max-minutes must be a positive number of minutes, got " + maxMinutes);
        }
    }

    /** The training data: DATA of the evaluation commands, with the split optional (training). */
    private DataSpec trainingData(String value) {
        String spec = value.equals("fmnist-bundled") || (value.startsWith("fmnist:") && !value.endsWith(":train")
                && !value.endsWith(":test")) ? value + ":train" : value;
        try {
            DataSpec d = DataSpec.parse(spec);
            if (!d.train()) {
                throw usage("--data " + value + ": pretraining uses the training split; drop ':test'");
            }
            return d;
        } catch (IllegalArgumentException e) {
            throw usage("--data: " + e.getMessage());
        }
    }

    /** The preset, the options and the --set assignments, in that order; an invalid result is a usage error. */
    private MugsConfig config(ImageStatistics stats) {
        MugsConfig base = preset.config.get();
        boolean folder = stats != null;
        try {
            int e = epochs != null ? epochs : base.epochs();
            MugsConfig.Builder b = base.toBuilder().epochs(e)
                    .batchSize(batch != null ? batch : base.batchSize()).seed(seed)
                    .warmupEpochs(Math.min(base.warmupEpochs(), e));
            if (folder) {
                double[] m = mean != null ? mean : stats.mean();
                double[] s = std != null ? std : stats.std();
                LOG.info("{}: {} channel(s), normalised with mean {} and std {} ({})", data, stats.channels(),
                        Arrays.toString(m), Arrays.toString(s),
                        mean != null ? "--mean/--std" : "measured on " + stats.images() + " images");
                b.crops(base.crops().toBuilder().channels(stats.channels()).mean(m).std(s).build())
                        .vit(base.vit().toBuilder().inChannels(stats.channels()).build());
            } else if (mean != null) {
                b.crops(base.crops().toBuilder().mean(mean).std(std).build());
            }
            return b.build().with(sets.toArray(String[]::new));
        } catch (IllegalArgumentException e) {
            throw usage(e.getMessage());
        }
    }

    private ParameterException usage(String message) {
        return new ParameterException(spec.commandLine(), message);
    }

    /** picocli's hook for the preset names. */
    static final class PresetConverter implements picocli.CommandLine.ITypeConverter<Preset> {
        @Override
        public Preset convert(String value) {
            for (Preset p : Preset.values()) {
                if (p.option.equalsIgnoreCase(value)) {
                    return p;
                }
            }
            throw new picocli.CommandLine.TypeConversionException("must be fashion-mnist-tiny, fashion-mnist, "
                    + "vit-small, vit-base or vit-large, got '" + value + "'");
        }
    }
}
