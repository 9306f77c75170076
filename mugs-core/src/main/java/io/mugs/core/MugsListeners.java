package io.mugs.core;

import com.fasterxml.jackson.databind.ObjectMapper;
import io.mugs.data.ImageSource;
import io.mugs.data.LogText;
import io.mugs.eval.FeatureExtractor;
import io.mugs.eval.KnnClassifier;
import java.io.BufferedWriter;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Ready-made {@link MugsListener}s and the preset bundle {@link #defaults}: console progress, a JSON-lines metrics
 * log, per-epoch checkpoints and a k-NN monitor.
 *
 * <pre>{@code
 * List<MugsListener> l = MugsListeners.defaults(outputDir, MugsListeners.Options.of().withLogEvery(20)
 *         .withKeepLast(3).withKnn(knnTrain, knnTest));
 * }</pre>
 */
public final class MugsListeners {

    private static final Logger LOG = LoggerFactory.getLogger(MugsListeners.class);
    private static final ObjectMapper JSON = new ObjectMapper();

    private MugsListeners() {
    }

    /**
     * The settings of the preset bundle {@link #defaults}, by name; {@link #of} gives the defaults and each
     * {@code with...} changes one.
     *
     * @param logEvery   a progress line every this many steps (10)
     * @param keepLast   epoch checkpoints kept, the newest (2)
     * @param knnTrain   labelled k-NN memory of the monitor; null (the default) runs no monitor
     * @param knnTest    labelled k-NN queries of the monitor (with {@code knnTrain})
     * @param knnEvery   the monitor every this many epochs (1)
     * @param knnStudent also monitor the student (true; false halves the monitor's time)
     */
    public record Options(int logEvery, int keepLast, ImageSource knnTrain, ImageSource knnTest, int knnEvery,
                          boolean knnStudent) {

        public Options {
            if (logEvery < 1 || keepLast < 1 || knnEvery < 1) {
                throw new IllegalArgumentException("logEvery, keepLast and knnEvery must be >= 1, got " + logEvery
                        + ", " + keepLast + ", " + knnEvery);
            }
            if ((knnTrain == null) != (knnTest == null)) {
                throw new IllegalArgumentException("give the k-NN monitor both its training and its test images");
            }
        }

        /** Progress every 10 steps, 2 checkpoints kept, no k-NN monitor. */
        public static Options of() {
            return new Options(10, 2, null, null, 1, true);
        }

        public Options withLogEvery(int v) {
            return new Options(v, keepLast, knnTrain, knnTest, knnEvery, knnStudent);
        }

        public Options withKeepLast(int v) {
            return new Options(logEvery, v, knnTrain, knnTest, knnEvery, knnStudent);
        }

        /** A k-NN monitor with memory {@code train} and queries {@code test} (both null: none). */
        public Options withKnn(ImageSource train, ImageSource test) {
            return new Options(logEvery, keepLast, train, test, knnEvery, knnStudent);
        }

        public Options withKnnEvery(int v) {
            return new Options(logEvery, keepLast, knnTrain, knnTest, v, knnStudent);
        }

        public Options withKnnStudent(boolean v) {
            return new Options(logEvery, keepLast, knnTrain, knnTest, knnEvery, v);
        }
    }

    /** {@link #defaults(Path, Options)} with {@link Options#of()}: progress, metrics and checkpoints. */
    public static List<MugsListener> defaults(Path outputDir) {
        return defaults(outputDir, Options.of());
    }

    /**
     * Progress every {@code logEvery} steps, metrics in {@code outputDir/metrics.jsonl}, a checkpoint after every
     * epoch (newest {@code keepLast} kept) and, when {@code knnTrain} is set, a k-NN monitor every {@code knnEvery}
     * epochs.
     */
    public static List<MugsListener> defaults(Path outputDir, Options options) {
        List<MugsListener> l = new ArrayList<>();
        l.add(progress(options.logEvery()));
        l.add(metrics(outputDir.resolve("metrics.jsonl")));
        // Before the monitor: a failing monitor never costs a checkpoint.
        l.add(checkpoints(outputDir, options.keepLast()));
        if (options.knnTrain() != null) {
            l.add(knn(options.knnTrain(), options.knnTest(), options.knnEvery(), outputDir.resolve("metrics.jsonl"),
                    options.knnStudent()));
        }
        return l;
    }

    /** Logs loss, learning rate, images/s and ETA every {@code every} steps. */
    public static MugsListener progress(int every) {
        return new MugsListener() {
            private long start = System.nanoTime();
            private long startIteration = -1;

            @Override
            public void onStep(MugsTrainer t, StepResult r) {
                if (startIteration < 0) {
                    startIteration = r.iteration();
                    start = System.nanoTime();
                    return;
                }
                if ((r.iteration() + 1) % every != 0) {
                    return;
                }
                double sec = (System.nanoTime() - start) / 1e9;
                long done = r.iteration() - startIteration;
                double perStep = sec / done;
                long total = t.totalSteps();
                double eta = perStep * (total - r.iteration() - 1);
                LOG.info(String.format("epoch %d step %d/%d  loss %.4f %s  lr %.2e  %.1f images/s  ETA %s", r.epoch() + 1,
                        r.iteration() + 1, total, r.loss(), components(r), r.lr(),
                        t.config().batchSize() / perStep, duration(eta)));
            }
        };
    }

    private static String components(StepResult r) {
        StringBuilder sb = new StringBuilder("(");
        r.losses().forEach((k, v) -> {
            if (!k.equals(MugsModel.LOSS)) {
                sb.append(sb.length() > 1 ? " " : "").append(k.replace("loss_", "")).append(' ')
                        .append(String.format("%.3f", v));
            }
        });
        return sb.append(')').toString();
    }

    static String duration(double seconds) {
        long s = Math.round(seconds);
        return s >= 3600 ? String.format("%dh%02dm", s / 3600, s / 60 % 60) : String.format("%dm%02ds", s / 60, s % 60);
    }

    /**
     * Appends one JSON object per step: losses, lr, wd, momentum, teacher temperature, weak fraction, timings, RSS,
     * and on the steps that read it (every {@link MugsTrainer#healthEvery()}-th) the training health as
     * {@code health_...} fields ({@link io.mugs.core.health.TrainingHealth#metrics()}, docs/training-health.md).
     * Its {@code epoch} and {@code iteration} fields are zero-based indices (the first epoch is {@code "epoch": 0});
     * logs, progress bars and tables count epochs from 1 ("epoch 1" is index 0), and plots against epochs use
     * epochs completed ({@code epoch + 1}; the k-NN of the initialisation has {@code "epoch": -1}).
     * At the start of a fit, rows past the resumed iteration are dropped ({@link RunFolder#dropMetricsAfter}).
     */
    public static MugsListener metrics(Path file) {
        return new MugsListener() {
            @Override
            public void onFitStart(MugsTrainer t) {
                try {
                    RunFolder.dropMetricsAfter(file, t.iteration());
                } catch (IOException e) {
                    throw new UncheckedIOException("cannot tidy " + file + " for the resumed run", e);
                }
            }

            @Override
            public void onStep(MugsTrainer t, StepResult r) {
                Map<String, Object> m = new LinkedHashMap<>();
                m.put("iteration", r.iteration());
                m.put("epoch", r.epoch());
                m.put("train_s", t.trainingSeconds());
                m.putAll(r.losses());
                m.put("lr", r.lr());
                m.put("wd", r.weightDecay());
                m.put("momentum", r.momentum());
                m.put("teacher_temp", r.teacherTemp());
                m.put("weak_fraction", r.weakFraction());
                m.put("clipped", r.clipped());
                double ms = r.millis().values().stream().mapToDouble(Double::doubleValue).sum();
                m.put("images_per_s", t.config().batchSize() / (ms / 1e3));
                m.put("step_ms", r.millis());
                m.put("rss_bytes", rssBytes());
                r.health().ifPresent(h -> m.putAll(h.metrics()));
                append(file, m);
            }
        };
    }

    static void append(Path file, Map<String, Object> record) {
        try {
            Files.createDirectories(file.toAbsolutePath().getParent());
            try (BufferedWriter w = Files.newBufferedWriter(file, StandardOpenOption.CREATE, StandardOpenOption.APPEND)) {
                w.write(JSON.writeValueAsString(record));
                w.newLine();
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write metrics to " + file, e);
        }
    }

    /** Resident set size of this process from /proc, or -1 where unavailable. */
    public static long rssBytes() {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
                if (line.startsWith("VmRSS:")) {
                    return Long.parseLong(line.replaceAll("\\D", "")) * 1024;
                }
            }
        } catch (IOException | NumberFormatException e) {
            return -1;
        }
        return -1;
    }

    /**
     * Stops the fit once {@link MugsTrainer#trainingSeconds()} reaches {@code minutes} (the step that crosses it
     * completes; the epoch-end listeners then save a checkpoint and evaluate). The schedules stay laid out for the
     * configured epochs, so choose epochs that end near the budget and let this guarantee it.
     */
    public static MugsListener timeBudget(double minutes) {
        if (!(minutes > 0)) {
            throw new IllegalArgumentException("the time budget must be positive minutes, got " + minutes);
        }
        return new MugsListener() {
            @Override
            public void onFitStart(MugsTrainer t) {
                if (t.trainingSeconds() >= minutes * 60 && t.iteration() < t.totalSteps()) {
                    LOG.warn(String.format(Locale.ROOT, "the time budget of %s training minutes is spent: this run "
                            + "has trained %.1f minutes (iteration %d of %d); no step taken. Pass a larger "
                            + "--max-minutes (or none) to continue", minutesText(minutes), t.trainingSeconds() / 60,
                            t.iteration(), t.totalSteps()));
                    t.requestStop();
                }
            }

            @Override
            public void onStep(MugsTrainer t, StepResult r) {
                if (!t.stopRequested() && t.trainingSeconds() >= minutes * 60) {
                    LOG.info(String.format("time budget of %.1f training minutes reached at iteration %d", minutes,
                            r.iteration()));
                    t.requestStop();
                }
            }
        };
    }

    private static String minutesText(double minutes) {
        return minutes == Math.rint(minutes) ? Long.toString((long) minutes) : Double.toString(minutes);
    }

    /**
     * Saves a mid-epoch checkpoint ({@link RunCheckpoints#saveInterim}) whenever {@code minutes} of wall-clock time have
     * passed since the fit started or since the last checkpoint of either kind, so a crash or a kill loses at most
     * that much work. Interim checkpoints do not count against the epoch checkpoints' keep-last; only the newest is
     * kept. {@code mugs pretrain --checkpoint-minutes} (default 10).
     */
    public static MugsListener periodicCheckpoints(Path dir, double minutes) {
        if (!(minutes > 0) || !Double.isFinite(minutes)) {
            throw new IllegalArgumentException("checkpoint interval must be a positive number of minutes, got "
                    + minutes);
        }
        long interval = (long) Math.min(Long.MAX_VALUE / 2, minutes * 60e9);
        return new MugsListener() {
            private long last = System.nanoTime();

            @Override
            public void onStep(MugsTrainer t, StepResult r) {
                if (System.nanoTime() - last < interval || t.stopRequested()
                        || (t.iteration() % t.itersPerEpoch() == 0)) {   // an epoch end writes its own
                    return;
                }
                try {
                    Path f = RunCheckpoints.saveInterim(dir, t);
                    LOG.info("interim checkpoint {} (every {} minutes)", LogText.quoted(f), minutesText(minutes));
                } catch (IOException e) {
                    throw new UncheckedIOException(e);
                }
                last = System.nanoTime();
            }

            @Override
            public void onEpochEnd(MugsTrainer t, int epoch) {
                last = System.nanoTime();
            }
        };
    }

    /** Saves a checkpoint after every epoch, keeping the newest {@code keepLast}. */
    public static MugsListener checkpoints(Path dir, int keepLast) {
        return new MugsListener() {
            @Override
            public void onEpochEnd(MugsTrainer t, int epoch) {
                try {
                    Path f = RunCheckpoints.save(dir, t, keepLast);
                    LOG.info("checkpoint {}", LogText.quoted(f));
                } catch (IOException e) {
                    throw new UncheckedIOException(e);   // its message names the folder and the bytes needed
                }
            }
        };
    }

    /**
     * Weighted 20-NN (T = 0.07) top-1 of the teacher's (and, when {@code withStudent}, the student's) CLS before
     * training and every {@code every} epochs, logged and appended to the metrics as {@code knn_top1} (teacher) and
     * {@code knn_student_top1}.
     */
    public static MugsListener knn(ImageSource train, ImageSource test, int every, Path metricsFile,
                                   boolean withStudent) {
        return new MugsListener() {
            private FeatureExtractor teacher;
            private FeatureExtractor student;

            @Override
            public void onFitStart(MugsTrainer t) {
                if (t.iteration() == 0) {
                    evaluate(t, -1);   // the initialisation: the first point of the k-NN curve
                }
            }

            @Override
            public void onEpochEnd(MugsTrainer t, int epoch) {
                if ((epoch + 1) % every == 0 || epoch + 1 == t.epochs() || t.stopRequested()) {
                    evaluate(t, epoch);
                }
            }

            private void evaluate(MugsTrainer t, int epoch) {
                if (teacher == null) {
                    teacher = teacherFeatures(t);
                    student = !withStudent ? null : new FeatureExtractor(t.model().studentBackbone(),
                            t.config().crops().globalSize(), FeatureExtractor.Kind.CLS, 1);
                }
                long start = System.nanoTime();
                double acc = knnAccuracy(t, teacher, train, test);
                double studentAcc = student == null ? Double.NaN : knnAccuracy(t, student, train, test);
                LOG.info(String.format("%s: k-NN top-1 %.2f %% teacher%s (k 20, T 0.07, %d train / %d test images, "
                        + "%.0f s)", epoch < 0 ? "initialisation" : "epoch " + (epoch + 1), 100 * acc,
                        student == null ? "" : String.format(", %.2f %% student", 100 * studentAcc), train.size(),
                        test.size(), (System.nanoTime() - start) / 1e9));
                Map<String, Object> m = new LinkedHashMap<>();
                m.put("iteration", t.iteration() - 1);
                m.put("epoch", epoch);
                m.put("train_s", t.trainingSeconds());
                m.put("knn_top1", acc);
                if (student != null) {
                    m.put("knn_student_top1", studentAcc);
                }
                append(metricsFile, m);
            }
        };
    }

    /** An extractor of the teacher's final-LN CLS at the global crop size (adds one inference pass to its graph). */
    public static FeatureExtractor teacherFeatures(MugsTrainer t) {
        return new FeatureExtractor(t.model().teacherBackbone(), t.config().crops().globalSize(),
                FeatureExtractor.Kind.CLS, 1);
    }

    /** Weighted 20-NN (T = 0.07) top-1 of teacher features: {@code train} as memory, {@code test} as queries. */
    public static double knnAccuracy(MugsTrainer t, FeatureExtractor extractor, ImageSource train, ImageSource test) {
        try {
            var crops = t.config().crops();
            INDArray tr = extractor.extract(train, crops.mean(), crops.std(), 256);
            INDArray te = extractor.extract(test, crops.mean(), crops.std(), 256);
            int classes = Math.max(1, train.classNames().size());
            return new KnnClassifier(tr, train.labels(), classes).evaluate(te, test.labels(), new int[] {20}, 0.07)
                    .get(20).top1();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

}
