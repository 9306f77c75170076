package io.mugs.eval;

import io.mugs.data.IdxImageSource;
import io.mugs.data.Image;
import io.mugs.data.ImageFolderSource;
import io.mugs.data.ImageSource;
import io.mugs.data.EvalPreprocessing;
import io.mugs.plots.AttentionMaps;
import io.mugs.plots.TrainingCurves;
import io.mugs.plots.TsnePlot;
import io.mugs.vit.VisionTransformer;
import io.mugs.vit.VitOutputs;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * Command line of the evaluation tools.
 * <pre>
 * mugs knn       --model CKPT --train DATA --test DATA [--k 10,20,100,200] [--temperature 0.07]
 * mugs linear    --model CKPT --train DATA --test DATA [--lrs 0.001,0.01,0.1] [--epochs 100]
 * mugs export    --model CKPT --data DATA --out FILE.npy|FILE.csv
 * mugs attention --model CKPT --data DATA --out FILE.png [--images 4]
 * mugs tsne      --model CKPT --data DATA --out FILE.png [--points 1000] [--perplexity 30]
 * mugs curves    --metrics RUN/metrics.jsonl --out DIR
 * mugs compare   --runs label=RUN/metrics.jsonl,label=... --out FILE.png [--series knn_top1] [--x minutes]
 * </pre>
 * DATA is {@code fmnist-bundled:train|test}, {@code fmnist:DIR:train|test} or an image folder.
 */
public final class MugsCli {

    static final String USAGE = """
            usage: mugs <command> [options]
              knn        weighted k-NN of frozen features     --model F --train DATA --test DATA [--k 10,20,100,200]
                                                              [--temperature 0.07]
              linear     linear probe with an lr sweep        --model F --train DATA --test DATA
                                                              [--lrs 0.001,0.01,0.1] [--epochs 100] [--batch 256]
                                                              [--val-fraction 0.1: pick the lr on a held-out part
                                                              of the training set, report it on the test set]
              export     features + labels to .npy or .csv    --model F --data DATA --out FILE
              attention  last-block attention grid (PNG)      --model F --data DATA --out FILE.png [--images 4]
              tsne       t-SNE of features by class (PNG)     --model F --data DATA --out FILE.png [--points 1000]
                                                              [--perplexity 30]
              curves     loss / lr / k-NN curves (PNG)        --metrics RUN/metrics.jsonl --out DIR
              compare    one series of several runs (PNG)     --runs label=RUN/metrics.jsonl,label=... --out F.png
                                                              [--series knn_top1] [--x minutes|epochs|iterations]
            F is a checkpoint-*.safetensors of a training run (its teacher is used) or a backbone .safetensors.
            DATA is fmnist-bundled:train, fmnist-bundled:test, fmnist:DIR:train, fmnist:DIR:test, or an image folder.
            Features are the final-LN CLS token; --feature last4 or cls+mean selects the linear-probe variants.
            """;

    private MugsCli() {
    }

    static TrainingCurves.Axis axis(String name) {
        try {
            return TrainingCurves.Axis.valueOf(name.toUpperCase(java.util.Locale.ROOT));
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("--x must be minutes, epochs or iterations, got '" + name + "'");
        }
    }

    /** {@code label=path,label=path} in order. */
    static Map<String, Path> runs(String spec) {
        Map<String, Path> runs = new java.util.LinkedHashMap<>();
        for (String part : spec.split(",")) {
            int eq = part.indexOf('=');
            if (eq <= 0) {
                throw new IllegalArgumentException("--runs wants label=RUN/metrics.jsonl pairs separated by commas, got '"
                        + part + "'");
            }
            runs.put(part.substring(0, eq), Path.of(part.substring(eq + 1)));
        }
        return runs;
    }

    public static void main(String[] args) throws Exception {
        int code = run(args);
        if (code != 0) {
            System.exit(code);
        }
    }

    /** Runs a command; returns the process exit code (0 ok, 2 usage error, 1 failure). */
    public static int run(String[] args) {
        if (args.length == 0 || args[0].equals("--help") || args[0].equals("-h")) {
            System.out.print(USAGE);
            return args.length == 0 ? 2 : 0;
        }
        Map<String, String> o = new HashMap<>();
        for (int i = 1; i < args.length; i++) {
            if (!args[i].startsWith("--") || i + 1 >= args.length) {
                System.err.println("Error: options are --name value pairs; got '" + args[i] + "'\n\n" + USAGE);
                return 2;
            }
            o.put(args[i].substring(2), args[++i]);
        }
        try {
            switch (args[0]) {
                case "knn" -> knn(o);
                case "linear" -> linear(o);
                case "export" -> export(o);
                case "attention" -> attention(o);
                case "tsne" -> tsne(o);
                case "curves" -> TrainingCurves.write(Path.of(need(o, "metrics")), Path.of(need(o, "out")))
                        .forEach(p -> System.out.println("wrote " + p));
                case "compare" -> System.out.println("wrote " + TrainingCurves.compare(runs(need(o, "runs")),
                        o.getOrDefault("series", "knn_top1"), axis(o.getOrDefault("x", "minutes")),
                        Path.of(need(o, "out"))));
                default -> {
                    System.err.println("Error: unknown command '" + args[0] + "'\n\n" + USAGE);
                    return 2;
                }
            }
            return 0;
        } catch (IllegalArgumentException e) {
            System.err.println("Error: " + e.getMessage());
            return 2;
        } catch (Exception e) {
            System.err.println("Error: " + e.getMessage());
            return 1;
        }
    }

    private static String need(Map<String, String> o, String key) {
        String v = o.get(key);
        if (v == null) {
            throw new IllegalArgumentException("missing --" + key + " (see mugs --help)");
        }
        return v;
    }

    /** Parses a DATA argument. */
    static ImageSource data(String spec) throws java.io.IOException {
        String[] p = spec.split(":");
        if (p[0].equals("fmnist-bundled") && p.length == 2) {
            return IdxImageSource.bundledFashionMnist(p[1].equals("train"));
        }
        if (p[0].equals("fmnist") && p.length == 3) {
            return IdxImageSource.fashionMnist(Path.of(p[1]), p[2].equals("train"));
        }
        return ImageFolderSource.scan(Path.of(spec));
    }

    private static double[] mean(ImageSource s, VisionTransformer vit) {
        return vit.config().inChannels() == 1 ? new double[] {0.2860} : new double[] {0.485, 0.456, 0.406};
    }

    private static double[] std(ImageSource s, VisionTransformer vit) {
        return vit.config().inChannels() == 1 ? new double[] {0.3530} : new double[] {0.229, 0.224, 0.225};
    }

    private static FeatureExtractor extractor(VisionTransformer vit, Map<String, String> o) {
        String f = o.getOrDefault("feature", "cls");
        return switch (f) {
            case "cls" -> new FeatureExtractor(vit, vit.config().imageSize(), FeatureExtractor.Kind.CLS, 1);
            case "last4" -> new FeatureExtractor(vit, vit.config().imageSize(), FeatureExtractor.Kind.LAST_BLOCKS_CLS,
                    Math.min(4, vit.config().depth()));
            case "cls+mean" -> new FeatureExtractor(vit, vit.config().imageSize(),
                    FeatureExtractor.Kind.CLS_AND_PATCH_MEAN, 1);
            default -> throw new IllegalArgumentException("--feature must be cls, last4 or cls+mean, got " + f);
        };
    }

    /** The labels of {@code s}, required for k-NN and linear probes. */
    private static int[] labels(ImageSource s) {
        int[] l = s.labels();
        for (int i = 0; i < l.length; i++) {
            if (l[i] < 0) {
                throw new IllegalArgumentException(s.describe(i) + " has no class label; k-NN and linear probes need "
                        + "labelled data (one sub-folder per class)");
            }
        }
        return l;
    }

    /** Train and test features of the --model backbone. */
    private record TrainTest(ImageSource train, ImageSource test, INDArray tr, INDArray te) {
    }

    private static TrainTest trainTest(Map<String, String> o) throws Exception {
        VisionTransformer vit = Backbones.load(Path.of(need(o, "model")));
        ImageSource train = data(need(o, "train"));
        ImageSource test = data(need(o, "test"));
        FeatureExtractor fx = extractor(vit, o);
        return new TrainTest(train, test, fx.extract(train, mean(train, vit), std(train, vit), 256),
                fx.extract(test, mean(test, vit), std(test, vit), 256));
    }

    private static void knn(Map<String, String> o) throws Exception {
        TrainTest d = trainTest(o);
        ImageSource train = d.train();
        ImageSource test = d.test();
        int[] ks = Arrays.stream(o.getOrDefault("k", "10,20,100,200").split(",")).mapToInt(Integer::parseInt).toArray();
        double t = Double.parseDouble(o.getOrDefault("temperature", "0.07"));
        var acc = new KnnClassifier(d.tr(), labels(train), train.classNames().size())
                .evaluate(d.te(), labels(test), ks, t);
        acc.forEach((k, a) -> System.out.printf("k=%d T=%.3f: top-1 %.2f %%, top-5 %.2f %%%n", k, t, 100 * a.top1(),
                100 * a.top5()));
    }

    private static void linear(Map<String, String> o) throws Exception {
        TrainTest d = trainTest(o);
        ImageSource train = d.train();
        ImageSource test = d.test();
        INDArray tr = d.tr();
        INDArray te = d.te();
        double[] lrs = Arrays.stream(o.getOrDefault("lrs", "0.001,0.01,0.1").split(","))
                .mapToDouble(Double::parseDouble).toArray();
        LinearProbe probe = new LinearProbe(Integer.parseInt(o.getOrDefault("epochs", "100")),
                Integer.parseInt(o.getOrDefault("batch", "256")), 0, 0);
        int classes = train.classNames().size();
        int[] trY = labels(train);
        double valFraction = Double.parseDouble(o.getOrDefault("val-fraction", "0"));
        if (valFraction > 0) {
            int nVal = (int) Math.round(tr.size(0) * valFraction);
            if (nVal < 1 || nVal >= tr.size(0)) {
                throw new IllegalArgumentException("--val-fraction must leave both parts non-empty, got " + valFraction);
            }
            int nTr = (int) tr.size(0) - nVal;
            INDArray fitX = tr.get(org.nd4j.linalg.indexing.NDArrayIndex.interval(0, nTr),
                    org.nd4j.linalg.indexing.NDArrayIndex.all());
            INDArray valX = tr.get(org.nd4j.linalg.indexing.NDArrayIndex.interval(nTr, tr.size(0)),
                    org.nd4j.linalg.indexing.NDArrayIndex.all());
            int[] fitY = Arrays.copyOfRange(trY, 0, nTr);
            int[] valY = Arrays.copyOfRange(trY, nTr, trY.length);
            LinearProbe.Result best = null;
            for (LinearProbe.Result r : probe.sweep(fitX, fitY, valX, valY, classes, lrs)) {
                System.out.printf("lr %.4g: validation top-1 %.2f %%%n", r.lr(), 100 * r.top1());
                if (best == null || r.top1() > best.top1()) {
                    best = r;
                }
            }
            double[] acc = LinearProbe.accuracy(te, labels(test), best.weights(), best.bias());
            System.out.printf("best lr %.4g on validation: test top-1 %.2f %%, top-5 %.2f %%%n", best.lr(),
                    100 * acc[0], 100 * acc[1]);
            return;
        }
        for (LinearProbe.Result r : probe.sweep(tr, trY, te, labels(test), classes, lrs)) {
            System.out.printf("lr %.4g: top-1 %.2f %%, top-5 %.2f %%%n", r.lr(), 100 * r.top1(), 100 * r.top5());
        }
    }

    private static void export(Map<String, String> o) throws Exception {
        VisionTransformer vit = Backbones.load(Path.of(need(o, "model")));
        ImageSource src = data(need(o, "data"));
        INDArray f = extractor(vit, o).extract(src, mean(src, vit), std(src, vit), 256);
        int[] l = src.labels();
        Path out = Path.of(need(o, "out"));
        if (out.toString().endsWith(".csv")) {
            NpyFiles.writeCsv(out, f, l);
        } else {
            NpyFiles.writeFloat(out, f);
            NpyFiles.writeInt(out.resolveSibling(out.getFileName().toString().replace(".npy", "") + "-labels.npy"), l);
        }
        System.out.println("wrote " + f.size(0) + " x " + f.size(1) + " features to " + out);
    }

    private static void tsne(Map<String, String> o) throws Exception {
        VisionTransformer vit = Backbones.load(Path.of(need(o, "model")));
        ImageSource src = data(need(o, "data"));
        INDArray f = extractor(vit, o).extract(src, mean(src, vit), std(src, vit), 256);
        int n = Math.min(src.size(), Integer.parseInt(o.getOrDefault("points", "1000")));
        double[][] x = new double[n][];
        int[] l = new int[n];
        for (int i = 0; i < n; i++) {
            x[i] = f.getRow(i).toDoubleVector();
            l[i] = Math.max(0, src.label(i));
        }
        double[][] xy = new BarnesHutTsne(Double.parseDouble(o.getOrDefault("perplexity", "30")), 0.5, 1000, 0)
                .embed(x);
        Path file = Path.of(need(o, "out"));
        TsnePlot.write(file, xy, l, src.classNames());
        System.out.println("wrote " + file);
    }

    private static void attention(Map<String, String> o) throws Exception {
        VisionTransformer vit = Backbones.load(Path.of(need(o, "model")));
        ImageSource src = data(need(o, "data"));
        int n = Math.min(src.size(), Integer.parseInt(o.getOrDefault("images", "4")));
        int size = vit.config().imageSize();
        int c = vit.config().inChannels();
        float[] d = new float[n * c * size * size];
        Image[] shown = new Image[n];
        for (int i = 0; i < n; i++) {
            Image img = src.load(i);
            EvalPreprocessing.apply(img, size, mean(src, vit), std(src, vit), d, i * c * size * size);
            shown[i] = img.height() == size && img.width() == size ? img
                    : io.mugs.data.aug.Resize.resize(img, size, size);
        }
        var sd = vit.sameDiff();
        SDVariable x = sd.placeHolder("attention_input", DataType.FLOAT, -1, c, size, size);
        VitOutputs out = vit.apply(x, size, size, VisionTransformer.Mode.INFERENCE, "attention");
        INDArray attn = sd.output(Map.of("attention_input", Nd4j.create(d, new long[] {n, c, size, size},
                DataType.FLOAT)), out.lastAttention().name()).get(out.lastAttention().name());
        Path file = Path.of(need(o, "out"));
        Files.createDirectories(file.toAbsolutePath().getParent());
        AttentionMaps.write(file, shown, attn, vit.config().gridSize(), 0.6, Math.max(1, 112 / size));
        System.out.println("wrote " + file);
    }
}
