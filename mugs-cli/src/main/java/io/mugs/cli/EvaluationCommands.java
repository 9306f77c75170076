package io.mugs.cli;

import io.mugs.data.ImageSource;
import io.mugs.eval.FineTuneRun;
import io.mugs.eval.KnnClassifier;
import io.mugs.eval.LabelSubset;
import io.mugs.eval.LinearProbe;
import io.mugs.eval.LogisticRegression;
import io.mugs.eval.NpyFiles;
import io.mugs.eval.OnnxExport;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.concurrent.Callable;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.indexing.NDArrayIndex;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;

/**
 * The evaluation commands on frozen features: {@code mugs knn}, {@code mugs linear}, {@code mugs export}.
 *
 * <pre>
 * mugs knn    --model runs/fm/teacher.safetensors --train fmnist-bundled:train --test fmnist-bundled:test
 * mugs linear --model runs/fm/teacher.safetensors --train DIR/train --test DIR/val --epochs 100
 * mugs export --model runs/fm/teacher.safetensors --data fmnist-bundled:test --out features.npy
 * mugs export --model runs/fm/teacher.safetensors --format onnx --out teacher.onnx
 * </pre>
 */
final class EvaluationCommands {

    private static final Logger LOG = LoggerFactory.getLogger(EvaluationCommands.class);

    private EvaluationCommands() {
    }

    /** Train and test features of one backbone. */
    private record TrainTest(ImageSource train, ImageSource test, INDArray trainFeatures, INDArray testFeatures) {

        static TrainTest extract(ModelOptions model, DataSpec train, DataSpec test) throws Exception {
            ModelOptions.Loaded m = model.load();
            ImageSource tr = train.open();
            ImageSource te = test.open();
            ModelOptions.labels(tr);
            ModelOptions.labels(te);
            return new TrainTest(tr, te, m.features(tr), m.features(te));
        }
    }

    @Command(name = "knn", mixinStandardHelpOptions = true, sortOptions = false,
            description = "Weighted k-NN classification of frozen features (the DINO / Mugs protocol): the "
                    + "training images are the memory, each test image votes with its k nearest by cosine.")
    static final class Knn implements Callable<Integer> {

        @Mixin
        ModelOptions model;

        @Option(names = "--train", required = true, paramLabel = "DATA", description = "Labelled memory images.")
        DataSpec train;

        @Option(names = "--test", required = true, paramLabel = "DATA", description = "Labelled query images.")
        DataSpec test;

        @Option(names = "--k", split = ",", paramLabel = "K", defaultValue = "10,20,100,200",
                description = "Neighbour counts (those above the training image count are left out). "
                        + "Default: ${DEFAULT-VALUE}.")
        int[] ks;

        @Option(names = "--temperature", paramLabel = "T", defaultValue = "0.07",
                description = "Vote temperature. Default: ${DEFAULT-VALUE}.")
        double temperature;

        @Spec
        CommandSpec spec;

        @Override
        public Integer call() throws Exception {
            if (Arrays.stream(ks).anyMatch(k -> k < 1) || !(temperature > 0)) {
                throw new ParameterException(spec.commandLine(), "--k values must be >= 1 and --temperature > 0");
            }
            TrainTest d = TrainTest.extract(model, train, test);
            int classes = d.train().classNames().size();
            var acc = new KnnClassifier(d.trainFeatures(), d.train().labels(), classes)
                    .evaluate(d.testFeatures(), d.test().labels(), usable(ks, d.train().size()), temperature);
            PrintWriter out = spec.commandLine().getOut();
            acc.forEach((k, a) -> out.printf("k=%d T=%.3f: top-1 %.2f %%, top-5 %.2f %%%n", k, temperature,
                    100 * a.top1(), 100 * a.top5()));
            out.flush();
            return 0;
        }
    }

    /** The k values that fit {@code memory} training images; when none does, {@code memory} itself. */
    static int[] usable(int[] ks, int memory) {
        int[] fit = Arrays.stream(ks).filter(k -> k <= memory).distinct().toArray();
        if (fit.length < ks.length) {
            LOG.info("k above the {} training images left out of {}", memory, Arrays.toString(ks));
        }
        return fit.length > 0 ? fit : new int[] {memory};
    }

    @Command(name = "linear", mixinStandardHelpOptions = true, sortOptions = false,
            description = "Linear classifier on frozen features. On all labels: the linear probe (SGD with momentum "
                    + "and a cosine schedule, one probe per learning rate). With --labels: the paper's semi-supervised "
                    + "logistic regression on a class-balanced subset (AdamW, weight decay 0.05, batch 1,024, the "
                    + "learning rate chosen on a held-out part of the subset, then retrained on all of it).",
            footer = {"", "Examples:",
                    "  mugs linear --model runs/fm/teacher.safetensors --train fmnist:DIR:train --test fmnist:DIR:test",
                    "  mugs linear --model runs/fm/teacher.safetensors --train fmnist:DIR:train --test fmnist:DIR:test \\",
                    "              --labels 1%% --output runs/linear-1pct",
                    "  mugs linear --model pixels --mean 0.286 --std 0.353 --train fmnist:DIR:train \\",
                    "              --test fmnist:DIR:test --labels runs/linear-1pct/labels.json   (same images)"})
    static final class Linear implements Callable<Integer> {

        @Mixin
        ModelOptions model;

        @Option(names = "--train", required = true, paramLabel = "DATA", description = "Labelled training images.")
        DataSpec train;

        @Option(names = "--test", required = true, paramLabel = "DATA", description = "Labelled test images.")
        DataSpec test;

        @Option(names = "--lrs", split = ",", paramLabel = "LR",
                description = "Learning rates swept. Default: 0.001,0.01,0.1 for the probe; with --labels the "
                        + "paper's 0.03,0.06,0.1,0.2.")
        double[] lrs;

        @Option(names = "--epochs", paramLabel = "N", defaultValue = "100",
                description = "Epochs. Default: ${DEFAULT-VALUE}.")
        int epochs;

        @Option(names = "--batch", paramLabel = "B",
                description = "Batch size. Default: 256 for the probe, 1024 with --labels.")
        Integer batch;

        @Option(names = "--val-fraction", paramLabel = "F", defaultValue = "0",
                description = "Probe only: pick the learning rate on this last fraction of the training set and "
                        + "report only that probe on the test set (0: report every probe on the test set).")
        double valFraction;

        @Option(names = "--labels", paramLabel = "SPEC",
                description = "1%%, 10%%, N-per-class (class-balanced, drawn with --labels-seed) or a labels.json of "
                        + "an earlier run: the semi-supervised logistic regression on those images.")
        String labels;

        @Option(names = "--labels-seed", paramLabel = "S", defaultValue = "0",
                description = "Seed of the label draw and the held-out part. Default: ${DEFAULT-VALUE}.")
        long labelsSeed;

        @Option(names = "--held-out", paramLabel = "F", defaultValue = "0.2",
                description = "With --labels: the part of each class's labelled images that chooses the learning "
                        + "rate. Default: ${DEFAULT-VALUE}.")
        double heldOut;

        @Option(names = "--weight-decay", paramLabel = "WD", defaultValue = "0.05",
                description = "With --labels: AdamW weight decay. Default: ${DEFAULT-VALUE}.")
        double weightDecay;

        @Option(names = "--output", paramLabel = "DIR", defaultValue = "runs/linear",
                description = "With --labels: where labels.json (the labelled images) is written. "
                        + "Default: ${DEFAULT-VALUE}.")
        Path output;

        @Spec
        CommandSpec spec;

        @Override
        public Integer call() throws Exception {
            int b = batch != null ? batch : labels != null ? 1024 : 256;
            if (epochs < 1 || b < 1 || lrs != null && lrs.length == 0 || !(valFraction >= 0 && valFraction < 1)
                    || !(heldOut > 0 && heldOut < 1) || weightDecay < 0) {
                throw new ParameterException(spec.commandLine(), "--epochs and --batch must be >= 1, --lrs not empty, "
                        + "--val-fraction in [0, 1), --held-out in (0, 1) and --weight-decay >= 0");
            }
            if (labels != null) {
                return semiSupervised(b);
            }
            double[] rates = lrs != null ? lrs : new double[] {0.001, 0.01, 0.1};
            TrainTest d = TrainTest.extract(model, train, test);
            INDArray tr = d.trainFeatures();
            int[] trY = d.train().labels();
            int[] teY = d.test().labels();
            int classes = d.train().classNames().size();
            LinearProbe probe = new LinearProbe(epochs, b, 0, 0);
            PrintWriter out = spec.commandLine().getOut();
            if (valFraction == 0) {
                for (LinearProbe.Result r : probe.sweep(tr, trY, d.testFeatures(), teY, classes, rates)) {
                    out.printf("lr %.4g: top-1 %.2f %%, top-5 %.2f %%%n", r.lr(), 100 * r.top1(), 100 * r.top5());
                }
                out.flush();
                return 0;
            }
            int nVal = (int) Math.round(tr.size(0) * valFraction);
            int nFit = (int) tr.size(0) - nVal;
            if (nVal < 1 || nFit < 1) {
                throw new ParameterException(spec.commandLine(), "--val-fraction " + valFraction + " leaves "
                        + nFit + " training and " + nVal + " validation images: both must be non-empty");
            }
            INDArray fitX = tr.get(NDArrayIndex.interval(0, nFit), NDArrayIndex.all());
            INDArray valX = tr.get(NDArrayIndex.interval(nFit, tr.size(0)), NDArrayIndex.all());
            LinearProbe.Result best = null;
            for (LinearProbe.Result r : probe.sweep(fitX, Arrays.copyOfRange(trY, 0, nFit), valX,
                    Arrays.copyOfRange(trY, nFit, trY.length), classes, rates)) {
                out.printf("lr %.4g: validation top-1 %.2f %%%n", r.lr(), 100 * r.top1());
                if (best == null || r.top1() > best.top1()) {
                    best = r;
                }
            }
            double[] acc = LinearProbe.accuracy(d.testFeatures(), teY, best.weights(), best.bias());
            out.printf("best lr %.4g on validation: test top-1 %.2f %%, top-5 %.2f %%%n", best.lr(), 100 * acc[0],
                    100 * acc[1]);
            out.flush();
            return 0;
        }

        /** The paper's logistic regression on the features of a labelled subset. */
        private int semiSupervised(int b) throws Exception {
            long t0 = System.nanoTime();
            ModelOptions.Loaded m = model.load();
            ImageSource tr = train.open();
            ImageSource te = test.open();
            int[] all = ModelOptions.labels(tr);
            ModelOptions.labels(te);
            int classes = Math.max(tr.classNames().size(), Arrays.stream(all).max().orElse(0) + 1);
            LabelSubset subset;
            try {
                subset = LabelSubset.resolve(labels, all, classes, labelsSeed);
            } catch (IllegalArgumentException e) {
                throw new ParameterException(spec.commandLine(), "--labels: " + e.getMessage());
            }
            subset.write(output.resolve(LabelSubset.FILE_NAME));
            ImageSource labelled = subset.of(tr);
            INDArray x = m.features(labelled);
            int[] y = labelled.labels();
            LabelSubset.Split split = LogisticRegression.positions(subset.indices(),
                    subset.holdOut(all, heldOut, labelsSeed));
            double[] rates = lrs != null ? lrs : LogisticRegression.PAPER_LRS;
            LogisticRegression.Sweep s = new LogisticRegression(epochs, b, weightDecay, 0).sweep(x, y, classes, rates,
                    split);
            PrintWriter out = spec.commandLine().getOut();
            for (int i = 0; i < rates.length; i++) {
                out.printf(java.util.Locale.ROOT, "lr %.4g: held-out top-1 %.2f %% (%d images fit, %d held out)%n",
                        rates[i], 100 * s.validationTop1()[i], split.fit().length, split.validation().length);
            }
            double[] acc = s.best().accuracy(m.features(te), te.labels());
            out.printf(java.util.Locale.ROOT, "best lr %.4g, retrained on all %d labelled images (%s): test top-1 "
                    + "%.2f %%, top-5 %.2f %%%n", s.best().lr(), subset.size(), subset.spec(), 100 * acc[0],
                    100 * acc[1]);
            out.printf(java.util.Locale.ROOT, "labels in %s; %.2f minutes, peak RSS %.2f GB%n",
                    output.resolve(LabelSubset.FILE_NAME), (System.nanoTime() - t0) / 6e10,
                    FineTuneRun.rssBytes("VmHWM") / 1e9);
            out.flush();
            return 0;
        }
    }

    @Command(name = "export", mixinStandardHelpOptions = true, sortOptions = false,
            description = {"Writes features and labels of --data: FILE.npy plus FILE-labels.npy (-1 = unlabelled), "
                    + "or one FILE.csv with the label in the first column (label,f0,f1,...).",
                    "--format onnx writes the backbone itself as an ONNX model (opset 17; input images [batch, C, S, "
                            + "S], normalised; outputs cls [batch, D] and patch_tokens [batch, N, D])."})
    static final class Export implements Callable<Integer> {

        /** What {@code --out} receives. */
        enum Format { npy, csv, onnx }

        @Mixin
        ModelOptions model;

        @Option(names = "--data", paramLabel = "DATA", description = "Images to describe (npy and csv).")
        DataSpec data;

        @Option(names = "--out", required = true, paramLabel = "FILE", description = "FILE.npy, FILE.csv or "
                + "FILE.onnx.")
        Path out;

        @Option(names = "--format", paramLabel = "F", description = "npy, csv or onnx. Default: from FILE's "
                + "extension.")
        Format format;

        @Spec
        CommandSpec spec;

        @Override
        public Integer call() throws Exception {
            String name = out.getFileName().toString();
            Format f = format;
            if (f == null) {
                int dot = name.lastIndexOf('.');
                try {
                    f = Format.valueOf(dot < 0 ? "" : name.substring(dot + 1).toLowerCase(java.util.Locale.ROOT));
                } catch (IllegalArgumentException e) {
                    throw new ParameterException(spec.commandLine(), "--out must end in .npy, .csv or .onnx (or give "
                            + "--format), got " + out);
                }
            }
            if (f == Format.onnx) {
                if (data != null) {
                    throw new ParameterException(spec.commandLine(), "--format onnx writes the backbone, not "
                            + "features: leave out --data");
                }
                ModelOptions.Backbone b = model.backbone();
                OnnxExport.write(out, b.vit(), b.input().orElse(null));
                spec.commandLine().getOut().println("wrote the ONNX model (opset " + OnnxExport.OPSET + ", input "
                        + "images [batch, " + b.vit().config().inChannels() + ", " + b.vit().config().imageSize()
                        + ", " + b.vit().config().imageSize() + "], outputs cls and patch_tokens) to " + out);
                return 0;
            }
            if (data == null) {
                throw new ParameterException(spec.commandLine(), "--format " + f + " writes features of images: "
                        + "give --data");
            }
            ModelOptions.Loaded m = model.load();
            ImageSource src = data.open();
            INDArray features = m.features(src);
            Path parent = out.toAbsolutePath().getParent();
            Files.createDirectories(parent);
            if (f == Format.csv) {
                NpyFiles.writeCsv(out, features, src.labels());
            } else {
                NpyFiles.writeFloat(out, features);
                String stem = name.endsWith(".npy") ? name.substring(0, name.length() - 4) : name;
                NpyFiles.writeInt(out.resolveSibling(stem + "-labels.npy"), src.labels());
            }
            spec.commandLine().getOut().println("wrote " + features.size(0) + " x " + features.size(1)
                    + " features to " + out);
            return 0;
        }
    }
}
