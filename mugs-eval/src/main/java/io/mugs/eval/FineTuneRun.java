package io.mugs.eval;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.mugs.data.ImageSource;
import io.mugs.io.CheckpointFile;
import io.mugs.io.InputNormalisation;
import io.mugs.io.SafeTensors;
import io.mugs.vit.VitConfig;
import io.mugs.vit.weights.BackboneFiles;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.stream.Stream;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A fine-tuning run in an output folder, resumable like pretraining: the loop over {@link FineTuner#step}, top-1 on
 * the test set after every epoch (or every {@code evalEvery}, and the last) into {@code metrics.jsonl} (fields {@code iteration}, {@code epoch}, {@code train_s},
 * {@code loss}, {@code lr}, {@code test_top1}, {@code test_top5}, {@code images_per_s}, {@code rss_bytes}: what
 * {@code mugs curves} and {@code mugs compare --series test_top1} plot), a checkpoint after every epoch and when
 * stopped early, and at the end the fine-tuned backbone as a backbone file.
 * <pre>
 * OUT/config.json                          the recipe, architecture, classes and input normalisation
 * OUT/labels.json                          the labelled images ({@link LabelSubset}); a resume must use the same
 * OUT/checkpoint-ITERATION.safetensors     model, AdamW moments, step counter ({@link CheckpointFile}); last 2 kept
 * OUT/metrics.jsonl                        one row per evaluated epoch (loss: mean since the last row)
 * OUT/backbone.safetensors                 the fine-tuned backbone ({@link BackboneFiles}), for knn/linear/attention
 * </pre>
 * Starting again with the same folder resumes from the newest intact checkpoint exactly (the batches and drop-path
 * masks are functions of the step), provided the recipe, architecture and labels are the same.
 *
 * <pre>{@code
 * FineTuneRun.Result r = FineTuneRun.fit(FineTuneConfig.fashionMnist(),
 *         FineTuneRun.Start.from(Path.of("runs/fm/teacher.safetensors")), train, LabelSubset.draw(train.labels(),
 *         10, "1%", 0), test, Path.of("runs/ft-1pct"), FineTuneRun.Options.defaults());
 * }</pre>
 */
public final class FineTuneRun {

    private static final Logger LOG = LoggerFactory.getLogger(FineTuneRun.class);
    private static final ObjectMapper JSON = new ObjectMapper();
    /** Metadata keys of a fine-tuning checkpoint. */
    public static final String CONFIG_KEY = "finetune.config";
    public static final String VIT_KEY = "finetune.vit";
    public static final String CLASSES_KEY = "finetune.classes";

    private FineTuneRun() {
    }

    /**
     * Where fine-tuning starts: the architecture, the initial backbone weights (ignored from scratch) and how input
     * images are normalised.
     */
    public record Start(VitConfig vit, Map<String, INDArray> weights, InputNormalisation input) {

        /** From a backbone file, a training checkpoint (its teacher) or a fine-tuning checkpoint. */
        public static Start from(Path model) throws IOException {
            var backbone = FrozenBackbone.load(model);
            InputNormalisation input = FrozenBackbone.normalisation(model).orElseThrow(() -> new IOException(model
                    + " does not say how its input images were normalised: build the Start with an "
                    + "InputNormalisation"));
            return new Start(backbone.config().toBuilder().dropPathRate(0).build(), backbone.weights(), input);
        }
    }

    /**
     * How the loop runs (not part of the recipe: may differ on every start).
     *
     * @param logEvery   a progress line every this many steps (0: epoch lines only)
     * @param maxSteps   stop (with a checkpoint) once this many steps are done in total; -1 for no limit
     * @param maxMinutes stop (with a checkpoint) after this many training minutes in total; 0 for no limit
     * @param evalEvery  test evaluation (and metrics row) every this many epochs, and after the last one
     * @param evalBatch  images per forward pass of the test evaluation
     * @param keepLast   checkpoints kept
     */
    public record Options(int logEvery, long maxSteps, double maxMinutes, int evalEvery, int evalBatch,
                          int keepLast) {

        public Options {
            if (logEvery < 0 || evalEvery < 1 || evalBatch < 1 || keepLast < 1) {
                throw new IllegalArgumentException("logEvery must be >= 0 and evalEvery, evalBatch, keepLast >= 1");
            }
        }

        /** Progress every 50 steps, no limits, evaluation after every epoch in batches of 256, 2 checkpoints. */
        public static Options defaults() {
            return new Options(50, -1, 0, 1, 256, 2);
        }

        public Options withMaxSteps(long steps) {
            return new Options(logEvery, steps, maxMinutes, evalEvery, evalBatch, keepLast);
        }
    }

    /**
     * What a run reached.
     *
     * @param finished whether every configured epoch ran (false when stopped by a limit)
     * @param testTop1 top-1 after the last evaluated epoch (NaN when none was)
     */
    public record Result(FineTuner tuner, boolean finished, double testTop1, double testTop5, double bestTop1,
                         double trainingSeconds, long steps) {
    }

    /**
     * Fine-tunes (or resumes fine-tuning) on the {@code labels} images of {@code train}, evaluating on {@code test}
     * after every epoch.
     */
    public static Result fit(FineTuneConfig config, Start start, ImageSource train, LabelSubset labels,
                             ImageSource test, Path out, Options options) throws IOException {
        Files.createDirectories(out);
        removeStaleTemporaryFiles(out);
        int classes = classes(train);
        Path labelsFile = out.resolve(LabelSubset.FILE_NAME);
        if (Files.isRegularFile(labelsFile)) {
            LabelSubset stored = LabelSubset.read(labelsFile, train.labels());
            if (!stored.equals(labels)) {
                throw new IllegalArgumentException("run folder " + out + " was fine-tuned on other labelled images ("
                        + stored + ", now " + labels + "): use a new output folder, or pass --labels "
                        + labelsFile);
            }
        }
        FineTuneBatches data = new FineTuneBatches(train, labels.indices(), config, start.input(), classes);
        FineTuner tuner = new FineTuner(config, start.vit(), start.input().imageSize(),
                config.fromScratch() ? null : start.weights(), classes, data.stepsPerEpoch());
        Optional<Path> resumed = FineTuneCheckpoints.restoreNewest(out, tuner, start.vit(), classes);
        dropMetricsFrom(out.resolve("metrics.jsonl"), tuner.iteration());
        labels.write(labelsFile);
        writeConfig(out, config, start, classes, labels);
        LOG.info("fine-tuning {} ({}) on {} labelled images ({}), {} classes, {} steps of {} per epoch, {} epochs{}",
                config.fromScratch() ? "from scratch" : "from the given backbone", start.vit().depth() + " blocks of "
                + start.vit().embedDim(), labels.size(), labels.spec(), classes, data.stepsPerEpoch(),
                data.batchSize(), config.epochs(), resumed.map(p -> "; resumed from " + p.getFileName()).orElse(""));
        double lastTop1 = Double.NaN;
        double lastTop5 = Double.NaN;
        double best = bestSoFar(out.resolve("metrics.jsonl"));
        double lossSum = 0;
        int lossCount = 0;
        long epochStart = System.nanoTime();
        double epochTrainSeconds = 0;
        int epochImages = 0;
        while (!tuner.finished()) {
            if (options.maxSteps() >= 0 && tuner.iteration() >= options.maxSteps()
                    || options.maxMinutes() > 0 && tuner.trainingSeconds() >= 60 * options.maxMinutes()) {
                Path file = FineTuneCheckpoints.save(out, tuner, start, classes, options.keepLast());
                LOG.info("stopped at step {} ({} training minutes) by a limit; {} resumes it", tuner.iteration(),
                        String.format("%.2f", tuner.trainingSeconds() / 60), file.getFileName());
                return new Result(tuner, false, lastTop1, lastTop5, best, tuner.trainingSeconds(),
                        tuner.iteration());
            }
            long t0 = System.nanoTime();
            double lr = tuner.currentLr();
            FineTuneBatches.Batch batch = data.batch(tuner.iteration());
            double loss = tuner.step(batch);
            double seconds = (System.nanoTime() - t0) / 1e9;
            tuner.addTrainingSeconds(seconds);
            epochTrainSeconds += seconds;
            epochImages += data.batchSize();
            lossSum += loss;
            lossCount++;
            long it = tuner.iteration();
            if (options.logEvery() > 0 && it % options.logEvery() == 0) {
                long total = (long) config.epochs() * data.stepsPerEpoch();
                double perStep = tuner.trainingSeconds() / Math.max(1, it);
                LOG.info(String.format("step %d/%d (epoch %d): loss %.4f, lr %.3g, %.0f images/s, ETA %.1f min", it,
                        total, tuner.epoch(), loss, lr, epochImages / Math.max(1e-9, epochTrainSeconds),
                        (total - it) * perStep / 60));
            }
            int epoch = (int) (it / data.stepsPerEpoch()) - 1;
            if (it % data.stepsPerEpoch() == 0 && ((epoch + 1) % options.evalEvery() == 0 || tuner.finished())) {
                double[] acc = tuner.evaluate(test, start.input(), options.evalBatch());
                lastTop1 = acc[0];
                lastTop5 = acc[1];
                best = Double.isNaN(best) ? acc[0] : Math.max(best, acc[0]);
                Map<String, Object> row = new LinkedHashMap<>();
                row.put("iteration", it - 1);
                row.put("epoch", epoch);
                row.put("train_s", tuner.trainingSeconds());
                row.put("loss", lossSum / Math.max(1, lossCount));
                row.put("lr", lr);
                row.put("test_top1", acc[0]);
                row.put("test_top5", acc[1]);
                row.put("images_per_s", epochImages / Math.max(1e-9, epochTrainSeconds));
                row.put("rss_bytes", rssBytes("VmRSS"));
                append(out.resolve("metrics.jsonl"), JSON.writeValueAsString(row));
                LOG.info(String.format("epoch %d/%d: loss %.4f, test top-1 %.2f %% (best %.2f %%), %.1f training "
                        + "minutes, %.0f s since the last evaluation", epoch + 1, config.epochs(), lossSum / Math.max(1, lossCount),
                        100 * acc[0], 100 * best, tuner.trainingSeconds() / 60,
                        (System.nanoTime() - epochStart) / 1e9));
                lossSum = 0;
                lossCount = 0;
                epochStart = System.nanoTime();
                epochTrainSeconds = 0;
                epochImages = 0;
            }
            if (it % data.stepsPerEpoch() == 0) {
                FineTuneCheckpoints.save(out, tuner, start, classes, options.keepLast());
            }
        }
        writeBackbone(out.resolve("backbone.safetensors"), tuner, start.input());
        if (Double.isNaN(lastTop1)) {      // resumed after the last epoch: evaluate once more for the result
            double[] acc = tuner.evaluate(test, start.input(), options.evalBatch());
            lastTop1 = acc[0];
            lastTop5 = acc[1];
        }
        return new Result(tuner, true, lastTop1, lastTop5, Double.isNaN(best) ? lastTop1 : best,
                tuner.trainingSeconds(), tuner.iteration());
    }

    /** Classes of a labelled training set: its class names, or the largest label + 1. */
    static int classes(ImageSource train) {
        int named = train.classNames().size();
        int max = -1;
        for (int l : train.labels()) {
            if (l < 0) {
                throw new IllegalArgumentException("fine-tuning needs a label for every training image; "
                        + "the images must sit in one sub-folder per class");
            }
            max = Math.max(max, l);
        }
        return Math.max(named, max + 1);
    }

    /** Checkpoint files of {@code dir}, oldest first. */
    public static List<Path> checkpoints(Path dir) throws IOException {
        return FineTuneCheckpoints.list(dir);
    }

    private static void writeConfig(Path out, FineTuneConfig config, Start start, int classes, LabelSubset labels)
            throws IOException {
        ObjectNode root = JSON.createObjectNode();
        root.set("finetune", JSON.readTree(config.toJson()));
        root.set("vit", JSON.readTree(start.vit().toJson()));
        root.set("input", JSON.readTree(start.input().toJson()));
        root.put("classes", classes);
        root.put("labels", labels.spec());
        root.put("labelled_images", labels.size());
        writeAtomically(out.resolve("config.json"), JSON.writerWithDefaultPrettyPrinter().writeValueAsString(root));
    }

    /** The fine-tuned backbone with its input normalisation (drop path off), readable by {@link FrozenBackbone#load}. */
    static void writeBackbone(Path file, FineTuner tuner, InputNormalisation input) throws IOException {
        VitConfig cfg = tuner.model().backbone().config().toBuilder().dropPathRate(0).build();
        SafeTensors.write(file, tuner.model().backbone().weights(), Map.of(BackboneFiles.CONFIG_KEY, cfg.toJson(),
                "format", "pt", InputNormalisation.METADATA_KEY, input.toJson()));
    }

    private static void removeStaleTemporaryFiles(Path dir) throws IOException {
        try (Stream<Path> s = Files.list(dir)) {
            for (Path p : s.filter(p -> p.getFileName().toString().endsWith(".tmp")).toList()) {
                Files.deleteIfExists(p);
            }
        }
    }

    /** Keeps the rows of {@code iteration} below {@code from} (and drops a line a crash cut short). */
    static void dropMetricsFrom(Path file, long from) throws IOException {
        if (!Files.isRegularFile(file)) {
            return;
        }
        List<String> kept = new ArrayList<>();
        for (String line : Files.readAllLines(file, StandardCharsets.UTF_8)) {
            try {
                JsonNode row = JSON.readTree(line);
                if (row != null && row.path("iteration").asLong(Long.MAX_VALUE) < from) {
                    kept.add(line);
                }
            } catch (IOException e) {
                // a line cut short by a crash
            }
        }
        writeAtomically(file, kept.isEmpty() ? "" : String.join("\n", kept) + "\n");
    }

    private static double bestSoFar(Path metrics) throws IOException {
        double best = Double.NaN;
        if (Files.isRegularFile(metrics)) {
            for (String line : Files.readAllLines(metrics, StandardCharsets.UTF_8)) {
                JsonNode t = JSON.readTree(line).path("test_top1");
                if (t.isNumber()) {
                    best = Double.isNaN(best) ? t.asDouble() : Math.max(best, t.asDouble());
                }
            }
        }
        return best;
    }

    private static void append(Path file, String line) throws IOException {
        Files.writeString(file, line + "\n", StandardCharsets.UTF_8, StandardOpenOption.CREATE,
                StandardOpenOption.APPEND);
    }

    private static void writeAtomically(Path file, String text) throws IOException {
        Path tmp = file.resolveSibling(file.getFileName() + ".tmp");
        Files.writeString(tmp, text, StandardCharsets.UTF_8);
        Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
    }

    /** A field of /proc/self/status in bytes ({@code VmRSS} now, {@code VmHWM} the peak); -1 when unknown. */
    public static long rssBytes(String field) {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
                if (line.startsWith(field + ":")) {
                    return Long.parseLong(line.replaceAll("[^0-9]", "")) * 1024;
                }
            }
        } catch (IOException | NumberFormatException e) {
            return -1;
        }
        return -1;
    }
}
