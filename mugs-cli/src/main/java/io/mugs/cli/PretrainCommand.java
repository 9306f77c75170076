package io.mugs.cli;

import io.mugs.core.BudgetPlan;
import io.mugs.core.MugsConfig;
import io.mugs.core.MugsListener;
import io.mugs.core.MugsListeners;
import io.mugs.core.MugsTrainer;
import io.mugs.core.Pretraining;
import io.mugs.core.RunFolder;
import io.mugs.core.RunSettings;
import io.mugs.core.RunLock;
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
import java.util.Optional;
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
 * {@code mugs pretrain}: Mugs pretraining from the command line, through {@code Pretraining.fit}. The data is the
 * bundled Fashion-MNIST subset (default), Fashion-MNIST idx files ({@code fmnist:DIR}) or a folder of
 * images (JPEG, PNG, WebP, BMP, TIFF, GIF; with class sub-folders or flat). The run folder receives
 * {@code config.json}, {@code metrics.jsonl},
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
                "  mugs pretrain --data fmnist:DIR --budget-minutes 60",
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
        FASHION_MNIST_V2("fashion-mnist-v2", MugsConfig::fashionMnistV2),
        FASHION_MNIST_V3("fashion-mnist-v3", MugsConfig::fashionMnistV3),
        FASHION_MNIST_V4("fashion-mnist-v4", MugsConfig::fashionMnistV4),
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
                    + "a folder of images (JPEG, PNG, WebP, BMP, TIFF, GIF), with one sub-folder per class or flat. "
                    + "Default: ${DEFAULT-VALUE}.")
    String data;

    @Option(names = "--preset", paramLabel = "NAME", defaultValue = "fashion-mnist-tiny",
            converter = PresetConverter.class,
            description = "fashion-mnist-tiny (sized for the bundled 4,000 images), fashion-mnist (the full "
                    + "data in 60 minutes on 2 cores), fashion-mnist-v2 (the same with a higher learning rate), "
                    + "fashion-mnist-v3 (v2 with InfoNCE temperatures of 0.1), fashion-mnist-v4 (v3 with six blocks: "
                    + "the best so far), vit-small, vit-base or vit-large. Default: ${DEFAULT-VALUE}.")
    Preset preset;

    @Option(names = "--set", paramLabel = "PATH=VALUE",
            description = "Change a field of the configuration's JSON (repeatable, applied last), e.g. --set lr=2e-3 "
                    + "--set vit.depth=6 --set lossWeights.group=0; or a run setting, which may differ on every "
                    + "start: --set workers=4 (loader threads), --set replicas=1 (default: 2 on a CPU with 2 cores "
                    + "or more and an even batch, else 1).")
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

    @Option(names = "--budget-minutes", paramLabel = "M",
            description = "Lay the schedules over the steps that fit M training minutes (the step time is measured "
                    + "once, at the first start, and kept in budget-plan.json; the run ends at the schedules' last "
                    + "step). --max-minutes is a hard stop instead.")
    Double budgetMinutes;

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

    @Option(names = "--checkpoint-minutes", paramLabel = "M", defaultValue = "10",
            description = "Also save a mid-epoch checkpoint every M minutes (only the newest is kept, apart from "
                    + "--keep), so a crash loses at most M minutes. Default: ${DEFAULT-VALUE}.")
    double checkpointMinutes;

    @Spec
    CommandSpec spec;

    @Override
    public Integer call() throws Exception {
        checkOptions();
        DataSpec trainSpec = trainingData(data);
        ImageSource train = trainSpec.open();
        boolean folder = trainSpec.kind() == DataSpec.Kind.FOLDER;
        ImageStatistics stats = folder ? ImageStatistics.measure(train, 256) : null;
        Path out = output != null ? output : Path.of("runs", preset.option);
        MugsConfig cfg = config(stats, out);
        RunSettings run = runSettings(cfg.batchSize());
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
        try (RunLock lock = RunLock.acquire(out)) {   // held through the teacher file written after the fit
            String scan = FolderMonitor.describe(train, stats)
                    + (monitor != null ? System.lineSeparator() + monitor : "");
            return pretrain(train, cfg, run, knnTrain, knnTest, out, scan);
        }
    }

    private int pretrain(ImageSource train, MugsConfig cfg, RunSettings run, ImageSource knnTrain,
                         ImageSource knnTest, Path out, String scan) throws IOException {
        PrintWriter console = spec.commandLine().getOut();
        var plan = BudgetPlan.read(out);   // a run folder's plan outlives the option
        console.printf(Locale.ROOT, "Pretraining %s on %d images (%s), %s of batch %d; run folder %s%n", preset,
                train.size(), data, plan.map(p -> p.totalSteps() + " steps (its " + BudgetPlan.FILE + ")")
                        .orElse(run.budgetMinutes() > 0 ? "schedules sized to " + budgetMinutes + " training minutes"
                        : cfg.epochs() + " epochs"), cfg.batchSize(), out.toAbsolutePath());
        console.println(scan);
        console.flush();

        boolean terminal = System.console() != null;
        List<MugsListener> listeners = new ArrayList<>();
        if (maxMinutes != null) {
            listeners.add(MugsListeners.timeBudget(maxMinutes));
        }
        listeners.add(MugsListeners.periodicCheckpoints(out, checkpointMinutes));
        if (terminal) {
            listeners.add(new ProgressBarListener(System.out));
        }
        // In a terminal the bar replaces the per-step log lines (a log interval no run reaches).
        listeners.addAll(MugsListeners.defaults(out, MugsListeners.Options.of()
                .withLogEvery(terminal ? Integer.MAX_VALUE : logEvery).withKeepLast(keep).withKnn(knnTrain, knnTest)
                .withKnnEvery(knnEvery).withKnnStudent(knnStudent)));
        long[] steps = {0};
        listeners.add(new MugsListener() {
            @Override
            public void onStep(MugsTrainer t, io.mugs.core.StepResult r) {
                steps[0]++;
            }
        });
        MugsTrainer trainer = Pretraining.fit(cfg, run, train, out, listeners);
        if (steps[0] == 0 && trainer.stopRequested()) {   // the budget was spent before this start
            console.printf(Locale.ROOT, "The --max-minutes budget of %s is spent (%.1f training minutes so far, "
                    + "iteration %d of %d): nothing done; pass a larger --max-minutes to continue%n",
                    maxMinutes, trainer.trainingSeconds() / 60, trainer.iteration(),
                    trainer.totalSteps());
            console.flush();
            return 0;
        }

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
        if (budgetMinutes != null && !(budgetMinutes > 0 && Double.isFinite(budgetMinutes))) {
            throw usage("--budget-minutes must be a positive number of minutes, got " + budgetMinutes);
        }
        if (!(checkpointMinutes > 0 && Double.isFinite(checkpointMinutes))) {
            throw usage("--checkpoint-minutes must be a positive number of minutes, got " + checkpointMinutes);
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

    /**
     * The run settings of the --set assignments that name one ({@code workers}, {@code replicas}), over this machine's
     * defaults ({@link RunSettings#forThisMachine}: two replicas on a CPU with two cores or more).
     */
    private RunSettings runSettings(int batchSize) {
        try {
            RunSettings run = RunSettings.forThisMachine(batchSize).with(sets.stream().filter(RunSettings::names)
                    .toArray(String[]::new));
            return budgetMinutes == null ? run : run.withBudgetMinutes(budgetMinutes);
        } catch (IllegalArgumentException e) {
            throw usage(e.getMessage());
        }
    }

    /**
     * The preset, the options and the recipe's --set assignments, in that order; an invalid result is a usage error.
     * An image folder's normalisation is measured at the first start of a run and reused from the run folder's
     * {@code config.json} on every rerun (images added in between do not change it).
     */
    private MugsConfig config(ImageStatistics stats, Path out) {
        MugsConfig base = preset.config.get();
        boolean folder = stats != null;
        try {
            int e = epochs != null ? epochs : base.epochs();
            MugsConfig.Builder b = base.toBuilder().epochs(e)
                    .batchSize(batch != null ? batch : base.batchSize()).seed(seed)
                    .warmupEpochs(Math.min(base.warmupEpochs(), e));
            if (folder) {
                Optional<MugsConfig> stored = mean != null ? Optional.empty() : RunFolder.storedConfig(out)
                        .filter(c -> c.crops().channels() == stats.channels());
                double[] m = mean != null ? mean : stored.map(c -> c.crops().mean()).orElse(stats.mean());
                double[] s = std != null ? std : stored.map(c -> c.crops().std()).orElse(stats.std());
                LOG.info("{}: {} channel(s), normalised with mean {} and std {} ({})", data, stats.channels(),
                        Arrays.toString(m), Arrays.toString(s), mean != null ? "--mean/--std"
                                : stored.isPresent() ? "as measured at the first start of " + out
                                : "measured on " + stats.images() + " images");
                b.crops(base.crops().toBuilder().channels(stats.channels()).mean(m).std(s).build())
                        .vit(base.vit().toBuilder().inChannels(stats.channels()).build());
            } else if (mean != null) {
                b.crops(base.crops().toBuilder().mean(mean).std(std).build());
            }
            return b.build().with(sets.stream().filter(a -> !RunSettings.names(a)).toArray(String[]::new));
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
            List<String> names = Arrays.stream(Preset.values()).map(p -> p.option).toList();
            throw new picocli.CommandLine.TypeConversionException("must be "
                    + String.join(", ", names.subList(0, names.size() - 1)) + " or " + names.get(names.size() - 1)
                    + ", got '" + value + "'");
        }
    }
}
