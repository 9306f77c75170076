package io.mugs.examples;

import io.mugs.core.RuntimeSettings;
import io.mugs.core.MugsConfig;
import io.mugs.core.MugsListener;
import io.mugs.core.MugsListeners;
import io.mugs.core.MugsTrainer;
import io.mugs.core.Pretraining;
import io.mugs.core.RunSettings;
import io.mugs.data.IdxImageSource;
import io.mugs.data.ImageSource;
import io.mugs.data.EvalPreprocessing;
import io.mugs.eval.KnnClassifier;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * The main job: Mugs pretraining of a small ViT on Fashion-MNIST, then the k-NN accuracy of the teacher's features
 * on the test images. With no arguments it uses the bundled 4,000 / 1,000 image subset; runnable from an IDE.
 *
 * <pre>
 * mvn -q -B package -DskipTests exec:exec                                    # bundled subset, preset epochs
 * mvn -q -B package -DskipTests exec:exec -Dexec.args="--data /usr/share/datasets/fashion-mnist --epochs 20"
 * </pre>
 */
public final class PretrainFashionMnist {

    private static final String USAGE = """
            PretrainFashionMnist: Mugs pretraining on Fashion-MNIST, then weighted 20-NN top-1 on the test set.
              --data DIR      folder with the four Fashion-MNIST idx files (default: the bundled subset)
              --epochs N      epochs (default: the fashionMnistTiny preset's)
              --batch B       images per step (default: the preset's)
              --output DIR    run folder for config, metrics.jsonl and checkpoints (default runs/fashion-mnist);
                              an existing run there is resumed
              --seed S        seed (default 0)
              --knn-every N   k-NN monitor every N epochs (default 1)
              --max-minutes M stop after M training minutes (checkpoint and k-NN first; a rerun resumes)
              --knn-student B also monitor the student's k-NN (default true; false halves the monitor's time)
              --set PATH=V    change a field of the preset's MugsConfig JSON, e.g. --set lr=2e-3
                              --set vit.depth=2 --set lossWeights.group=0 (repeatable; applied last)
            """;

    private PretrainFashionMnist() {
    }

    public static void main(String[] argv) throws Exception {
        RuntimeSettings.apply();   // the launcher\'s JVM settings when run from an IDE
        Args a = new Args(argv, Set.of("data", "epochs", "batch", "output", "seed", "knn-every", "knn-student",
                "max-minutes", "set"), USAGE);
        ImageSource train;
        ImageSource test;
        if (a.get("data", null) == null) {
            train = IdxImageSource.bundledFashionMnist(true);
            test = IdxImageSource.bundledFashionMnist(false);
        } else {
            train = IdxImageSource.fashionMnist(Path.of(a.get("data", "")), true);
            test = IdxImageSource.fashionMnist(Path.of(a.get("data", "")), false);
        }
        MugsConfig preset = MugsConfig.fashionMnistTiny();
        MugsConfig cfg = preset.toBuilder().epochs(a.getInt("epochs", preset.epochs()))
                .batchSize(a.getInt("batch", preset.batchSize())).seed(a.getInt("seed", 0))
                .warmupEpochs(Math.min(preset.warmupEpochs(), a.getInt("epochs", preset.epochs()))).build()
                .with(a.getAll("set").stream().filter(x -> !RunSettings.names(x)).toArray(String[]::new));
        RunSettings run = RunSettings.forThisMachine(cfg.batchSize())
                .with(a.getAll("set").stream().filter(RunSettings::names).toArray(String[]::new));
        Path out = Path.of(a.get("output", "runs/fashion-mnist"));
        System.out.printf("Pretraining on %d images (%d test images), %d epochs; run folder %s%n", train.size(),
                test.size(), cfg.epochs(), out.toAbsolutePath());
        List<MugsListener> listeners = new ArrayList<>();
        if (a.get("max-minutes", null) != null) {
            listeners.add(MugsListeners.timeBudget(a.getDouble("max-minutes", 0)));
        }
        listeners.addAll(MugsListeners.defaults(out, MugsListeners.Options.of().withKnn(train, test)
                .withKnnEvery(a.getInt("knn-every", 1))
                .withKnnStudent(Boolean.parseBoolean(a.get("knn-student", "true")))));
        MugsTrainer trainer = Pretraining.fit(cfg, run, train, out, listeners);
        double acc = MugsListeners.knnAccuracy(trainer, MugsListeners.teacherFeatures(trainer), train, test);
        double raw = rawPixelKnn(train, test, cfg);
        double points = 100 * (acc - raw);   // the same line as `mugs pretrain`
        System.out.printf("k-NN top-1 (k 20, T 0.07) on %d test images: Mugs teacher %.2f %%, raw pixels %.2f %% "
                + "(%.2f points %s raw pixels)%n", test.size(), 100 * acc, 100 * raw, Math.abs(points),
                points < 0 ? "below" : "above");
    }

    /** The baseline pretraining must beat: the same k-NN on normalised pixels. */
    static double rawPixelKnn(ImageSource train, ImageSource test, MugsConfig cfg) throws Exception {
        INDArray tr = pixels(train, cfg);
        INDArray te = pixels(test, cfg);
        return new KnnClassifier(tr, train.labels(), train.classNames().size())
                .evaluate(te, test.labels(), new int[] {20}, 0.07).get(20).top1();
    }


    private static INDArray pixels(ImageSource s, MugsConfig cfg) throws Exception {
        int size = cfg.crops().globalSize();
        int len = cfg.crops().channels() * size * size;
        float[] d = new float[s.size() * len];
        for (int i = 0; i < s.size(); i++) {
            EvalPreprocessing.apply(s.load(i), size, cfg.crops().mean(), cfg.crops().std(), d, i * len);
        }
        INDArray x = Nd4j.create(d, new long[] {s.size(), len}, DataType.FLOAT);
        return x.diviColumnVector(x.norm2(1).reshape(s.size(), 1).addi(1e-12));
    }
}
