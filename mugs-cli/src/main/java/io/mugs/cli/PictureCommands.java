package io.mugs.cli;

import io.mugs.data.EvalPreprocessing;
import io.mugs.data.Image;
import io.mugs.data.ImageSource;
import io.mugs.data.aug.Resize;
import io.mugs.plots.AttentionMaps;
import io.mugs.eval.BarnesHutTsne;
import io.mugs.plots.TrainingCurves;
import io.mugs.plots.TsnePlot;
import io.mugs.vit.VisionTransformer;
import io.mugs.vit.VitOutputs;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.Callable;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;

/**
 * The commands that draw pictures: {@code mugs attention}, {@code mugs tsne}, {@code mugs curves},
 * {@code mugs compare}.
 *
 * <pre>
 * mugs attention --model runs/fm/teacher.safetensors --data fmnist-bundled:test --out attention.png --images 6
 * mugs curves    --metrics runs/fm/metrics.jsonl --out runs/fm/curves
 * mugs compare   --runs a=runs/a/metrics.jsonl,b=runs/b/metrics.jsonl --out knn.png --x epochs
 * </pre>
 */
final class PictureCommands {

    private PictureCommands() {
    }

    private static void createParent(Path file) throws java.io.IOException {
        Files.createDirectories(file.toAbsolutePath().getParent());
    }

    @Command(name = "attention", mixinStandardHelpOptions = true, sortOptions = false,
            description = "A PNG grid: each image beside the last block's CLS attention of every head.")
    static final class Attention implements Callable<Integer> {

        @Mixin
        ModelOptions model;

        @Option(names = "--data", required = true, paramLabel = "DATA", description = "Images to show.")
        DataSpec data;

        @Option(names = "--out", required = true, paramLabel = "FILE.png", description = "The picture.")
        Path out;

        @Option(names = "--images", paramLabel = "N", defaultValue = "4",
                description = "Rows: the first N images. Default: ${DEFAULT-VALUE}.")
        int images;

        @Spec
        CommandSpec spec;

        @Override
        public Integer call() throws Exception {
            if (images < 1) {
                throw new ParameterException(spec.commandLine(), "--images must be >= 1, got " + images);
            }
            if (model.pixels()) {
                throw new ParameterException(spec.commandLine(), "attention maps need a backbone, not pixels");
            }
            ModelOptions.Loaded m = model.load();
            ImageSource src = data.open();
            VisionTransformer vit = m.backbone();
            int n = Math.min(src.size(), images);
            int size = m.input().imageSize();
            int c = vit.config().inChannels();
            float[] pixels = new float[n * c * size * size];
            Image[] shown = new Image[n];
            for (int i = 0; i < n; i++) {
                Image img = src.load(i);
                EvalPreprocessing.apply(img, size, m.input().mean(), m.input().std(), pixels, i * c * size * size);
                shown[i] = img.height() == size && img.width() == size ? img : Resize.resize(img, size, size);
            }
            var sd = vit.sameDiff();
            SDVariable x = sd.placeHolder("attention_input", DataType.FLOAT, -1, c, size, size);
            VitOutputs o = vit.apply(x, size, size, VisionTransformer.Mode.INFERENCE, "attention");
            String name = o.lastAttention().name();
            INDArray attn = sd.output(Map.of("attention_input", Nd4j.create(pixels, new long[] {n, c, size, size},
                    DataType.FLOAT)), name).get(name);
            createParent(out);
            AttentionMaps.write(out, shown, attn, size / vit.config().patchSize(), 0.6, Math.max(1, 112 / size));
            spec.commandLine().getOut().println("wrote " + out);
            return 0;
        }
    }

    @Command(name = "tsne", mixinStandardHelpOptions = true, sortOptions = false,
            description = "A PNG of the Barnes-Hut t-SNE of the features, coloured by class.")
    static final class Tsne implements Callable<Integer> {

        @Mixin
        ModelOptions model;

        @Option(names = "--data", required = true, paramLabel = "DATA", description = "Images to place.")
        DataSpec data;

        @Option(names = "--out", required = true, paramLabel = "FILE.png", description = "The picture.")
        Path out;

        @Option(names = "--points", paramLabel = "N", defaultValue = "1000",
                description = "The first N images. Default: ${DEFAULT-VALUE}.")
        int points;

        @Option(names = "--perplexity", paramLabel = "P", defaultValue = "30",
                description = "t-SNE perplexity. Default: ${DEFAULT-VALUE}.")
        double perplexity;

        @Spec
        CommandSpec spec;

        @Override
        public Integer call() throws Exception {
            if (points < 2 || !(perplexity > 0)) {
                throw new ParameterException(spec.commandLine(), "--points must be >= 2 and --perplexity > 0");
            }
            ModelOptions.Loaded m = model.load();
            ImageSource src = data.open();
            INDArray f = m.features(src);
            int n = Math.min(src.size(), points);
            double[][] x = new double[n][];
            int[] labels = new int[n];
            for (int i = 0; i < n; i++) {
                x[i] = f.getRow(i).toDoubleVector();
                labels[i] = Math.max(0, src.label(i));
            }
            double[][] xy = new BarnesHutTsne(perplexity, 0.5, 1000, 0).embed(x);
            createParent(out);
            TsnePlot.write(out, xy, labels, src.classNames());
            spec.commandLine().getOut().println("wrote " + out);
            return 0;
        }
    }

    @Command(name = "curves", mixinStandardHelpOptions = true, sortOptions = false,
            description = "PNG curves of a run's metrics.jsonl: losses, learning rate, k-NN accuracy (of a "
                    + "fine-tuning run: test top-1) and the training health (health.png, docs/training-health.md).")
    static final class Curves implements Callable<Integer> {

        @Option(names = "--metrics", required = true, paramLabel = "FILE", description = "RUN/metrics.jsonl.")
        Path metrics;

        @Option(names = "--out", required = true, paramLabel = "DIR", description = "Folder for the PNGs.")
        Path out;

        @Spec
        CommandSpec spec;

        @Override
        public Integer call() throws Exception {
            for (Path p : TrainingCurves.write(metrics, out)) {
                spec.commandLine().getOut().println("wrote " + p);
            }
            return 0;
        }
    }

    @Command(name = "compare", mixinStandardHelpOptions = true, sortOptions = false,
            description = "One series of several runs in one PNG.")
    static final class Compare implements Callable<Integer> {

        @Option(names = "--runs", required = true, split = ",", paramLabel = "LABEL=FILE",
                description = "Runs as label=RUN/metrics.jsonl, separated by commas.")
        LinkedHashMap<String, Path> runs;

        @Option(names = "--out", required = true, paramLabel = "FILE.png", description = "The picture.")
        Path out;

        @Option(names = "--series", paramLabel = "NAME", defaultValue = "knn_top1",
                description = "A metrics.jsonl field. Default: ${DEFAULT-VALUE}.")
        String series;

        @Option(names = "--x", paramLabel = "AXIS", defaultValue = "minutes",
                description = "minutes, epochs or iterations. Default: ${DEFAULT-VALUE}.")
        TrainingCurves.Axis x;

        @Spec
        CommandSpec spec;

        @Override
        public Integer call() throws Exception {
            createParent(out);
            spec.commandLine().getOut().println("wrote " + TrainingCurves.compare(runs, series, x, out));
            return 0;
        }
    }
}
