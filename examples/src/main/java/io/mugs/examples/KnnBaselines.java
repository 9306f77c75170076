package io.mugs.examples;

import io.mugs.core.RuntimeSettings;
import io.mugs.data.EvalPreprocessing;
import io.mugs.data.IdxImageSource;
import io.mugs.data.ImageSource;
import io.mugs.eval.FeatureExtractor;
import io.mugs.eval.KnnClassifier;
import io.mugs.vit.VisionTransformer;
import io.mugs.vit.VitConfig;
import java.nio.file.Path;
import java.util.Set;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * The k-NN baselines pretraining must beat on Fashion-MNIST (DINO protocol, k = 10/20/100/200, T = 0.07): raw
 * pixels (plain and normalised) and a randomly initialised ViT (dim 192, depth 6, 3 heads, patch 4).
 *
 * <pre>
 * mvn -q -B package -DskipTests exec:exec -Dexec.mainClass=io.mugs.examples.KnnBaselines \
 *     -Dexec.args="--data /usr/share/datasets/fashion-mnist"
 * </pre>
 */
public final class KnnBaselines {

    private static final String USAGE = """
            KnnBaselines: raw-pixel and random-ViT k-NN on Fashion-MNIST.
              --data DIR   folder with the four idx files (default: the bundled 4,000 / 1,000 subset)
              --skip-vit   only the pixel baselines
            """;

    private KnnBaselines() {
    }

    public static void main(String[] argv) throws Exception {
        RuntimeSettings.apply();   // the launcher\'s JVM settings when run from an IDE
        Args a = new Args(argv, Set.of("data", "skip-vit"), USAGE);
        String dir = a.get("data", null);
        ImageSource train = dir == null ? IdxImageSource.bundledFashionMnist(true)
                : IdxImageSource.fashionMnist(Path.of(dir), true);
        ImageSource test = dir == null ? IdxImageSource.bundledFashionMnist(false)
                : IdxImageSource.fashionMnist(Path.of(dir), false);
        int[] ks = {10, 20, 100, 200};
        int[] trY = train.labels();
        int[] teY = test.labels();
        System.out.printf("%d train / %d test images%n", train.size(), test.size());
        report("raw pixels [0, 1]", new KnnClassifier(pixels(train, 0, 1), trY, 10)
                .evaluate(pixels(test, 0, 1), teY, ks, 0.07));
        report("normalised pixels", new KnnClassifier(pixels(train, 0.2860, 0.3530), trY, 10)
                .evaluate(pixels(test, 0.2860, 0.3530), teY, ks, 0.07));
        if (a.get("skip-vit", null) == null) {
            VitConfig cfg = VitConfig.builder().imageSize(28).inChannels(1).patchSize(4).embedDim(192).depth(6)
                    .numHeads(3).build();
            VisionTransformer vit = new VisionTransformer(SameDiff.create(), "", cfg, DataType.FLOAT, 0);
            FeatureExtractor fx = new FeatureExtractor(vit, 28, FeatureExtractor.Kind.CLS, 1);
            long s = System.nanoTime();
            INDArray tr = fx.extract(train, new double[] {0.2860}, new double[] {0.3530}, 256);
            INDArray te = fx.extract(test, new double[] {0.2860}, new double[] {0.3530}, 256);
            System.out.printf("random ViT features: %.1f images/s%n",
                    (train.size() + test.size()) / ((System.nanoTime() - s) / 1e9));
            report("random-init ViT (192, depth 6, patch 4) CLS", new KnnClassifier(tr, trY, 10)
                    .evaluate(te, teY, ks, 0.07));
        }
    }

    private static void report(String name, java.util.Map<Integer, KnnClassifier.Accuracy> acc) {
        StringBuilder sb = new StringBuilder(String.format("%-45s", name));
        acc.forEach((k, v) -> sb.append(String.format("  k=%d %.2f %%", k, 100 * v.top1())));
        System.out.println(sb);
    }


    private static INDArray pixels(ImageSource s, double mean, double std) throws Exception {
        float[] d = new float[s.size() * 784];
        for (int i = 0; i < s.size(); i++) {
            EvalPreprocessing.apply(s.load(i), 28, new double[] {mean}, new double[] {std}, d, i * 784);
        }
        return Nd4j.create(d, new long[] {s.size(), 784}, DataType.FLOAT);
    }
}
