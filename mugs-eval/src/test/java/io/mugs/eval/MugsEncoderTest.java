package io.mugs.eval;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.mugs.data.Image;
import io.mugs.data.ImageSource;
import io.mugs.io.InputNormalisation;
import io.mugs.vit.VisionTransformer;
import io.mugs.vit.VitConfig;
import io.mugs.vit.weights.BackboneFiles;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

class MugsEncoderTest {

    private static final double[] MEAN = {0.4, 0.5, 0.6};
    private static final double[] STD = {0.2, 0.25, 0.3};

    @TempDir
    Path dir;

    /** A tiny RGB ViT for 16 px images saved with its normalisation. */
    private Path tinyBackbone() throws IOException {
        VitConfig cfg = VitConfig.builder().imageSize(16).inChannels(3).patchSize(4).embedDim(32).depth(2)
                .numHeads(2).dropPathRate(0).build();
        VisionTransformer vit = new VisionTransformer(SameDiff.create(), "", cfg, DataType.FLOAT, 7);
        Path file = dir.resolve("teacher.safetensors");
        BackboneFiles.save(file, vit, new InputNormalisation(3, 16, MEAN, STD));
        return file;
    }

    /** Random RGB images, some not 16 x 16 (resized and cropped), as TYPE_INT_RGB. */
    private static List<BufferedImage> images(int n, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        List<BufferedImage> out = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            int h = i % 2 == 0 ? 16 : 20 + i;
            int w = i % 3 == 0 ? 16 : 18 + 2 * i;
            BufferedImage b = new BufferedImage(w, h, BufferedImage.TYPE_INT_RGB);
            for (int y = 0; y < h; y++) {
                for (int x = 0; x < w; x++) {
                    b.setRGB(x, y, r.nextInt(1 << 24));
                }
            }
            out.add(b);
        }
        return out;
    }

    /** The same images as a source of decoded {@link Image}s (what the FeatureExtractor path reads). */
    private static ImageSource source(List<BufferedImage> images) {
        return new ImageSource() {
            @Override
            public int size() {
                return images.size();
            }

            @Override
            public Image load(int index) {
                BufferedImage b = images.get(index);
                Image img = new Image(3, b.getHeight(), b.getWidth());
                for (int y = 0; y < b.getHeight(); y++) {
                    for (int x = 0; x < b.getWidth(); x++) {
                        int rgb = b.getRGB(x, y);
                        img.set(0, y, x, (rgb >> 16) & 255);
                        img.set(1, y, x, (rgb >> 8) & 255);
                        img.set(2, y, x, rgb & 255);
                    }
                }
                return img;
            }

            @Override
            public int label(int index) {
                return -1;
            }

            @Override
            public List<String> classNames() {
                return List.of();
            }

            @Override
            public String describe(int index) {
                return "image " + index;
            }
        };
    }

    private static void assertRowsEqual(INDArray expected, float[][] actual, double tol) {
        assertEquals(expected.rows(), actual.length);
        for (int i = 0; i < actual.length; i++) {
            assertEquals(expected.columns(), actual[i].length);
            for (int j = 0; j < actual[i].length; j++) {
                assertEquals(expected.getDouble(i, j), actual[i][j], tol, "row " + i + ", column " + j);
            }
        }
    }

    @Test
    void embeddingsEqualTheFeatureExtractorPathForEveryInputKind() throws IOException {
        Path file = tinyBackbone();
        List<BufferedImage> imgs = images(7, 1);
        for (FeatureExtractor.Kind kind : List.of(FeatureExtractor.Kind.CLS,
                FeatureExtractor.Kind.CLS_AND_PATCH_MEAN)) {
            INDArray expected = new FeatureExtractor(FrozenBackbone.load(file), 16, kind, 1)
                    .extract(source(imgs), MEAN, STD, 256);
            try (MugsEncoder enc = MugsEncoder.builder(file).kind(kind).batchSize(3).build()) {
                assertEquals(kind == FeatureExtractor.Kind.CLS ? 32 : 64, enc.dimension());
                assertEquals(new InputNormalisation(3, 16, MEAN, STD), enc.normalisation());
                assertRowsEqual(expected, enc.embed(imgs), 1e-5);                 // 3 + 3 + 1 per pass
                assertRowsEqual(expected, enc.embed(source(imgs)), 1e-5);
                assertArrayEquals(enc.embed(imgs)[4], enc.embed(imgs.get(4)), 1e-5f);
                List<Path> files = new ArrayList<>();
                for (int i = 0; i < imgs.size(); i++) {
                    Path p = dir.resolve("img" + i + ".png");
                    ImageIO.write(imgs.get(i), "png", p.toFile());
                    files.add(p);
                }
                assertRowsEqual(expected, enc.embedFiles(files), 1e-5);
            }
        }
        double norm = 0;
        for (float v : MugsEncoder.load(file).embed(imgs.get(0))) {
            norm += v * v;
        }
        assertTrue(norm > 1e-3, "a non-trivial embedding");
    }

    @Test
    void bufferedImagesAreResizedNormalisedAndPackedNchwAsPlainJavaComputesThem() throws IOException {
        try (MugsEncoder enc = MugsEncoder.load(tinyBackbone())) {
            BufferedImage exact = images(1, 5).get(0);                          // 16 x 16: no resize
            BufferedImage flat = new BufferedImage(30, 22, BufferedImage.TYPE_INT_RGB);   // resized + cropped
            int colour = (200 << 16) | (17 << 8) | 90;
            for (int y = 0; y < 22; y++) {
                for (int x = 0; x < 30; x++) {
                    flat.setRGB(x, y, colour);
                }
            }
            INDArray px = enc.pixels(List.of(exact, flat));
            assertArrayEquals(new long[] {2, 3, 16, 16}, px.shape());
            for (int c = 0; c < 3; c++) {
                int shift = 16 - 8 * c;
                double flatExpected = (((colour >> shift) & 255) / 255.0 - MEAN[c]) / STD[c];
                for (int y = 0; y < 16; y++) {
                    for (int x = 0; x < 16; x++) {
                        double v = (((exact.getRGB(x, y) >> shift) & 255) / 255.0 - MEAN[c]) / STD[c];
                        assertEquals(v, px.getDouble(0, c, y, x), 1e-6);
                        // bicubic resizing of a constant image keeps the constant
                        assertEquals(flatExpected, px.getDouble(1, c, y, x), 1e-5);
                    }
                }
            }
        }
    }

    @Test
    void concurrentReadersGetTheSequentialEmbeddings() throws Exception {
        Path file = tinyBackbone();
        List<BufferedImage> imgs = images(5, 9);
        try (MugsEncoder enc = MugsEncoder.builder(file).batchSize(2).build()) {
            float[][] sequential = enc.embed(imgs);
            ExecutorService pool = Executors.newFixedThreadPool(3);
            try {
                List<Future<float[][]>> results = new ArrayList<>();
                for (int t = 0; t < 6; t++) {
                    results.add(pool.submit(() -> enc.embed(imgs)));
                }
                for (Future<float[][]> f : results) {
                    float[][] got = f.get();
                    for (int i = 0; i < imgs.size(); i++) {
                        assertArrayEquals(sequential[i], got[i], 0f);
                    }
                }
            } finally {
                pool.shutdownNow();
            }
        }
    }

    @Test
    void officialPthLoadsAndBadInputSaysWhatToChange() throws IOException {
        Path pth = dir.resolve("vit.pth");
        try (InputStream in = MugsEncoderTest.class.getResourceAsStream("/io/mugs/vit/parity/vit.pth")) {
            Files.copy(in, pth);
        }
        // the fixture is a grey ViT: a .pth stores no normalisation, and only RGB ones default to ImageNet's
        var missing = assertThrows(IOException.class, () -> MugsEncoder.builder(pth).heads(2).build());
        assertTrue(missing.getMessage().contains("give Builder.normalisation(...) or meanStd(...) (1 channel(s))"),
                missing.getMessage());
        InputNormalisation grey = new InputNormalisation(1, 16, new double[] {0.3}, new double[] {0.4});
        try (MugsEncoder enc = MugsEncoder.builder(pth).heads(2).normalisation(grey).build()) {
            assertEquals(grey, enc.normalisation());
            BufferedImage colour = images(1, 3).get(0);
            float[] v = enc.embed(colour);                       // RGB converted to luma, as PIL's convert("L")
            assertEquals(enc.backbone().config().embedDim(), v.length);
            assertEquals(1, enc.pixels(List.of(colour)).size(1));
        }
        VisionTransformer vit = FrozenBackbone.load(tinyBackbone());
        var e = assertThrows(IllegalArgumentException.class, () -> new MugsEncoder(vit,
                new InputNormalisation(1, 16, new double[] {0.5}, new double[] {0.5}), FeatureExtractor.Kind.CLS, 8));
        assertTrue(e.getMessage().contains("the backbone takes 3"), e.getMessage());
        Path bare = dir.resolve("bare.safetensors");
        BackboneFiles.save(bare, vit);
        var io = assertThrows(IOException.class, () -> MugsEncoder.load(bare));
        assertTrue(io.getMessage().contains("normalisation(...)"), io.getMessage());
    }
}
