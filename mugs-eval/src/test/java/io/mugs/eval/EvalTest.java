package io.mugs.eval;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.mugs.data.IdxImageSource;
import io.mugs.data.ImageSource;
import io.mugs.vit.VisionTransformer;
import io.mugs.vit.VitConfig;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

class EvalTest {

    private static INDArray angles(double... degrees) {
        double[][] v = new double[degrees.length][];
        for (int i = 0; i < degrees.length; i++) {
            double r = Math.toRadians(degrees[i]);
            v[i] = new double[] {Math.cos(r), Math.sin(r)};
        }
        return Nd4j.create(v).castTo(DataType.FLOAT);
    }

    @Test
    void weightedKnnOnHandBuiltFeatures() {
        // Training points on the unit circle: class 0 near 0 degrees, class 1 near 90, class 2 near 180.
        INDArray train = angles(0, 10, 20, 85, 95, 180);
        int[] labels = {0, 0, 0, 1, 1, 2};
        KnnClassifier knn = new KnnClassifier(train.mul(3), labels, 3, 1);   // scale does not matter (cosine)
        // Query at 50 degrees: nearest are 20 (cos 30 = .866, class 0) and 85 (cos 35 = .819, class 1).
        INDArray test = angles(50, 170);
        Map<Integer, KnnClassifier.Accuracy> acc = knn.evaluate(test, new int[] {1, 2}, new int[] {1, 3}, 0.07);
        // k = 1: 50 -> class 0 (wrong), 170 -> class 2 (right) = 50 %.
        assertEquals(0.5, acc.get(1).top1(), 1e-12);
        // k = 3 for 50: neighbours 20 (c0), 85 (c1), 10 (c0: cos 40 = .766):
        // votes c0 = e^(.866/.07) + e^(.766/.07), c1 = e^(.819/.07): c0 wins, still wrong; 170 -> c2 = 50 %.
        double c0 = Math.exp(Math.cos(Math.toRadians(30)) / 0.07) + Math.exp(Math.cos(Math.toRadians(40)) / 0.07);
        double c1 = Math.exp(Math.cos(Math.toRadians(35)) / 0.07);
        assertTrue(c0 > c1);
        assertEquals(0.5, acc.get(3).top1(), 1e-12);
        assertEquals(1.0, acc.get(3).top5(), 1e-12, "3 classes: everything is in the top 5");
        // With a high temperature the single class-1 vote of the nearer-than-10-degree neighbour matters less.
        Map<Integer, KnnClassifier.Accuracy> chunked = new KnnClassifier(train, labels, 3, 256)
                .evaluate(test, new int[] {1, 2}, new int[] {1, 3}, 0.07);
        assertEquals(acc.get(3).top1(), chunked.get(3).top1());
        var e = assertThrows(IllegalArgumentException.class,
                () -> knn.evaluate(test, new int[] {1, 2}, new int[] {7}, 0.07));
        assertTrue(e.getMessage().contains("exceeds the 6 training features"), e.getMessage());
    }

    @Test
    void linearProbeSeparatesSeparableData() {
        SplittableRandom r = new SplittableRandom(3);
        int n = 600;
        double[][] x = new double[n][8];
        int[] y = new int[n];
        for (int i = 0; i < n; i++) {
            y[i] = i % 3;
            for (int j = 0; j < 8; j++) {
                x[i][j] = 0.3 * r.nextGaussian() + (j == y[i] ? 2.0 : 0.0);
            }
        }
        INDArray all = Nd4j.create(x).castTo(DataType.FLOAT);
        INDArray train = all.get(org.nd4j.linalg.indexing.NDArrayIndex.interval(0, 450),
                org.nd4j.linalg.indexing.NDArrayIndex.all());
        INDArray val = all.get(org.nd4j.linalg.indexing.NDArrayIndex.interval(450, 600),
                org.nd4j.linalg.indexing.NDArrayIndex.all());
        int[] trainY = java.util.Arrays.copyOfRange(y, 0, 450);
        int[] valY = java.util.Arrays.copyOfRange(y, 450, 600);
        List<LinearProbe.Result> results = new LinearProbe(20, 32, 0, 1).sweep(train, trainY, val, valY, 3,
                new double[] {1e-4, 0.1});
        assertTrue(results.get(1).top1() >= 0.99, "lr 0.1: " + results.get(1).top1());
        assertEquals(1e-4, results.get(0).lr());
        // Shuffled labels cannot be learned: validation accuracy stays near chance (1/3).
        int[] shuffled = trainY.clone();
        for (int i = shuffled.length - 1; i > 0; i--) {
            int j = r.nextInt(i + 1);
            int t = shuffled[i];
            shuffled[i] = shuffled[j];
            shuffled[j] = t;
        }
        double chance = new LinearProbe(20, 32, 0, 1).train(train, shuffled, val, valY, 3, 0.1).top1();
        assertTrue(chance < 0.6, "shuffled labels: " + chance);
        assertEquals(1.0, results.get(1).top5(), 1e-12);
    }

    @Test
    void npyAndCsvRoundTrip(@TempDir Path dir) throws Exception {
        INDArray f = Nd4j.create(new float[] {1.5f, -2f, 3f, 4.25f, 0f, -1f}, new long[] {3, 2}, DataType.FLOAT);
        Path file = dir.resolve("f.npy");
        NpyFiles.writeFloat(file, f);
        byte[] bytes = Files.readAllBytes(file);
        assertEquals(0x93, bytes[0] & 0xff);
        int headerLen = (bytes[8] & 0xff) | (bytes[9] & 0xff) << 8;
        assertEquals(0, (10 + headerLen) % 64, "header padded to 64 bytes");
        String header = new String(bytes, 10, headerLen, StandardCharsets.US_ASCII);
        assertTrue(header.startsWith("{'descr': '<f4', 'fortran_order': False, 'shape': (3, 2), }"), header);
        assertEquals(f, NpyFiles.read(file));
        Path labels = dir.resolve("y.npy");
        NpyFiles.writeInt(labels, new int[] {4, 5, 6});
        assertArrayEquals(new int[] {4, 5, 6}, NpyFiles.read(labels).toIntVector());
        Path csv = dir.resolve("f.csv");
        NpyFiles.writeCsv(csv, f, new int[] {4, 5, 6});
        assertEquals(List.of("label,f0,f1", "4,1.5,-2.0", "5,3.0,4.25", "6,0.0,-1.0"), Files.readAllLines(csv));
        Files.writeString(dir.resolve("bad.npy"), "hello");
        assertThrows(java.io.IOException.class, () -> NpyFiles.read(dir.resolve("bad.npy")));
    }

    @Test
    void featureKindsHaveTheRightShapesAndValues() throws Exception {
        VitConfig cfg = VitConfig.builder().imageSize(28).inChannels(1).patchSize(7).embedDim(16).depth(2)
                .numHeads(2).build();
        VisionTransformer vit = new VisionTransformer(SameDiff.create(), "", cfg, DataType.FLOAT, 1);
        ImageSource src = IdxImageSource.bundledFashionMnist(false);
        ImageSource few = new ImageSource() {
            public int size() {
                return 5;
            }

            public io.mugs.data.Image load(int i) throws java.io.IOException {
                return src.load(i);
            }

            public int label(int i) {
                return src.label(i);
            }

            public List<String> classNames() {
                return src.classNames();
            }

            public String describe(int i) {
                return src.describe(i);
            }
        };
        double[] mean = {0.286};
        double[] std = {0.353};
        INDArray cls = new FeatureExtractor(vit, 28, FeatureExtractor.Kind.CLS, 1).extract(few, mean, std, 2);
        INDArray last2 = new FeatureExtractor(vit, 28, FeatureExtractor.Kind.LAST_BLOCKS_CLS, 2)
                .extract(few, mean, std, 4);
        INDArray both = new FeatureExtractor(vit, 28, FeatureExtractor.Kind.CLS_AND_PATCH_MEAN, 1)
                .extract(few, mean, std, 5);
        assertArrayEquals(new long[] {5, 16}, cls.shape());
        INDArray again = new FeatureExtractor(vit, 28, FeatureExtractor.Kind.CLS, 1).extract(few, mean, std, 5);
        assertEquals(cls, again, "a second extractor with the same settings reuses the pass");
        assertArrayEquals(new long[] {5, 32}, last2.shape());
        assertArrayEquals(new long[] {5, 32}, both.shape());
        INDArray lastOfTwo = last2.get(org.nd4j.linalg.indexing.NDArrayIndex.all(),
                org.nd4j.linalg.indexing.NDArrayIndex.interval(16, 32));
        assertTrue(lastOfTwo.equalsWithEps(cls, 1e-5), "the last block's CLS is the CLS feature");
        assertTrue(both.get(org.nd4j.linalg.indexing.NDArrayIndex.all(),
                org.nd4j.linalg.indexing.NDArrayIndex.interval(0, 16)).equalsWithEps(cls, 1e-5));
    }
}
