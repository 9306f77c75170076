package io.mugs.data;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.zip.GZIPOutputStream;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class LoaderTest {

    private static final MultiCropConfig FM = MultiCropConfig.fashionMnist();

    @Test
    void bundledFashionMnistSubset() throws IOException {
        ImageSource train = IdxImageSource.bundledFashionMnist(true);
        ImageSource test = IdxImageSource.bundledFashionMnist(false);
        assertEquals(4000, train.size());
        assertEquals(1000, test.size());
        assertEquals(9, train.label(0), "the first Fashion-MNIST training image is an ankle boot");
        assertEquals("Ankle boot", train.classNames().get(9));
        Image img = train.load(0);
        assertEquals(1, img.channels());
        assertEquals(28, img.height());
        int[] counts = new int[10];
        for (int i = 0; i < train.size(); i++) {
            counts[train.label(i)]++;
        }
        for (int c : counts) {
            assertTrue(c > 300 && c < 500, "classes are roughly balanced: " + java.util.Arrays.toString(counts));
        }
    }

    @Test
    void batchesHaveTheReferenceLayout() {
        try (MultiCropLoader loader = new MultiCropLoader(IdxImageSource.bundledFashionMnist(false),
                new MultiCropAugmentation(FM), 8, 2, 2, 7)) {
            assertEquals(125, loader.stepsPerEpoch());
            MultiCropBatch b = loader.epoch(0).iterator().next();
            assertArrayEquals(new long[] {16, 1, 28, 28}, b.teacherGlobals().shape());
            assertArrayEquals(new long[] {16, 1, 28, 28}, b.studentGlobals().shape());
            assertArrayEquals(new long[] {32, 1, 14, 14}, b.locals().shape());
            assertEquals(8, b.weakFlags().length);
            for (int i = 0; i < 8; i++) {
                assertEquals(loader.source().label(b.indices()[i]), b.labels()[i]);
            }
            // Normalised with the dataset statistics: values span (0 - 0.286)/0.353 .. (1 - 0.286)/0.353.
            double min = b.teacherGlobals().minNumber().doubleValue();
            double max = b.teacherGlobals().maxNumber().doubleValue();
            assertTrue(min >= -0.2860 / 0.3530 - 1e-5 && max <= (1 - 0.2860) / 0.3530 + 1e-5, min + " " + max);
        }
    }

    @Test
    void blurRangeSetsHowMuchTheAlwaysBlurredTeacherViewIsSmoothed() throws IOException {
        Image img = IdxImageSource.bundledFashionMnist(false).load(0);
        MultiCropConfig sharp = FM.toBuilder().blurSigma(1e-3, 1e-3).build();
        MultiCropConfig soft = FM.toBuilder().blurSigma(2, 2).build();
        double total = 0;
        for (int seed = 0; seed < 20; seed++) {
            // Same seed: same crop, flip and jitter draws; only the blur of teacher view 0 (p = 1) differs.
            float[] a = new MultiCropAugmentation(sharp).apply(img, new java.util.SplittableRandom(seed)).teacher()[0];
            float[] b = new MultiCropAugmentation(soft).apply(img, new java.util.SplittableRandom(seed)).teacher()[0];
            total += roughness(a) - roughness(b);
        }
        assertTrue(total > 0, "sigma 2 must smooth more than sigma 0.001: " + total);
        var e = assertThrows(IllegalArgumentException.class, () -> FM.toBuilder().blurSigma(2, 1).build());
        assertTrue(e.getMessage().contains("blurSigma must be {min, max}"), e.getMessage());
    }

    /** Mean absolute difference of horizontally adjacent pixels of a 28 x 28 view. */
    private static double roughness(float[] v) {
        double s = 0;
        for (int y = 0; y < 28; y++) {
            for (int x = 1; x < 28; x++) {
                s += Math.abs(v[y * 28 + x] - v[y * 28 + x - 1]);
            }
        }
        return s;
    }

    @Test
    void sameSeedSameCropsWhateverTheWorkerCount() {
        ImageSource src = IdxImageSource.bundledFashionMnist(false);
        List<MultiCropBatch> one = take(new MultiCropLoader(src, new MultiCropAugmentation(FM), 4, 1, 1, 11), 3);
        List<MultiCropBatch> two = take(new MultiCropLoader(src, new MultiCropAugmentation(FM), 4, 2, 3, 11), 3);
        List<MultiCropBatch> other = take(new MultiCropLoader(src, new MultiCropAugmentation(FM), 4, 2, 3, 12), 3);
        for (int i = 0; i < 3; i++) {
            assertEquals(one.get(i).teacherGlobals(), two.get(i).teacherGlobals());
            assertEquals(one.get(i).locals(), two.get(i).locals());
            assertArrayEquals(one.get(i).weakFlags(), two.get(i).weakFlags());
            assertArrayEquals(one.get(i).indices(), two.get(i).indices());
        }
        assertFalse(one.get(0).studentGlobals().equals(other.get(0).studentGlobals()));
    }

    @Test
    void weakFlagsAndLocalCoinsAreFair() {
        try (MultiCropLoader loader = new MultiCropLoader(IdxImageSource.bundledFashionMnist(false),
                new MultiCropAugmentation(FM), 50, 2, 2, 3)) {
            int weak = 0;
            int total = 0;
            for (MultiCropBatch b : loader.epoch(0)) {
                for (boolean w : b.weakFlags()) {
                    weak += w ? 1 : 0;
                    total++;
                }
            }
            assertEquals(1000, total);
            assertEquals(0.5, weak / (double) total, 0.05);
        }
    }

    private static List<MultiCropBatch> take(MultiCropLoader loader, int n) {
        List<MultiCropBatch> out = new ArrayList<>();
        try (loader) {
            for (MultiCropBatch b : loader.epoch(1)) {
                out.add(b);
                if (out.size() == n) {
                    break;
                }
            }
        }
        return out;
    }

    private static void png(Path file, int w, int h, boolean rgb) throws IOException {
        BufferedImage img = new BufferedImage(w, h, rgb ? BufferedImage.TYPE_INT_RGB : BufferedImage.TYPE_BYTE_GRAY);
        for (int y = 0; y < h; y++) {
            for (int x = 0; x < w; x++) {
                img.setRGB(x, y, (x * 40 << 16) | (y * 40 << 8) | 90);
            }
        }
        Files.createDirectories(file.getParent());
        ImageIO.write(img, "png", file.toFile());
    }

    @Test
    void imageFolderWithClassesSkipsCorruptFilesAtScanAndFilesDeletedLater(@TempDir Path dir) throws IOException {
        png(dir.resolve("cat/a.png"), 32, 32, true);
        png(dir.resolve("cat/b.png"), 32, 40, true);
        png(dir.resolve("dog/c.png"), 36, 32, true);
        png(dir.resolve("dog/d.png"), 32, 36, true);
        Files.write(dir.resolve("dog/broken.jpg"), new byte[] {1, 2, 3, 4});
        Files.writeString(dir.resolve("notes.txt"), "ignored");
        ImageFolderSource src = ImageFolderSource.scan(dir);
        assertEquals(4, src.size(), "the corrupt file is left out when the folder is scanned");
        assertEquals(1, src.leftOut().size());
        assertTrue(src.leftOut().get(0).contains("broken.jpg"), src.leftOut().get(0));
        assertEquals(List.of("cat", "dog"), src.classNames());
        assertArrayEquals(new int[] {0, 0, 1, 1}, src.labels());
        Files.delete(dir.resolve("dog/c.png"));   // unreadable after the scan: the loader replaces it
        var e = assertThrows(IOException.class, () -> src.load(2));
        assertTrue(e.getMessage().contains("c.png"), e.getMessage());
        MultiCropConfig cfg = MultiCropConfig.builder().globalSize(16).localSize(8).localCrops(2).build();
        try (MultiCropLoader loader = new MultiCropLoader(src, new MultiCropAugmentation(cfg), 4, 1, 1, 5)) {
            MultiCropBatch b = loader.epoch(0).iterator().next();
            assertEquals(4, b.batchSize(), "the missing image was replaced, the batch is complete");
            assertEquals(1, loader.skippedImages());
            for (int index : b.indices()) {
                assertTrue(index != 2);
            }
            assertArrayEquals(new long[] {8, 3, 16, 16}, b.teacherGlobals().shape());
        }
    }

    @Test
    void clearErrorsForBadInput(@TempDir Path dir) throws IOException {
        var missing = assertThrows(NoSuchFileException.class, () -> ImageFolderSource.scan(dir.resolve("nope")));
        assertTrue(missing.getMessage().contains("nope"));
        Files.createDirectories(dir.resolve("empty"));
        var empty = assertThrows(IOException.class, () -> ImageFolderSource.scan(dir.resolve("empty")));
        assertEquals("no image files (.jpg, .jpeg, .png, .webp, .bmp, .tif, .tiff, .gif) under '" + dir.resolve("empty")
                + "': check the path", empty.getMessage());

        png(dir.resolve("small/tiny.png"), 8, 8, false);
        png(dir.resolve("small/ok.png"), 40, 40, false);
        ImageFolderSource small = ImageFolderSource.scan(dir.resolve("small"));
        assertEquals(1, small.load(0).channels(), "8-bit grayscale PNGs decode to one channel");
        MultiCropConfig cfg = MultiCropConfig.builder().channels(1).mean(0.5).std(0.5).globalSize(32).localSize(16)
                .build();
        try (MultiCropLoader loader = new MultiCropLoader(small, new MultiCropAugmentation(cfg), 1, 1, 1, 1)) {
            assertEquals(1, loader.source().size(), "tiny.png was left out before the first epoch");
            assertTrue(((ImageFolderSource) loader.source()).leftOut().get(0).contains("tiny.png: 8x8 px, smaller "
                    + "than the 16 px minimum side"));
        }
        ImageFolderSource refusing = ImageFolderSource.builder(dir.resolve("small"))
                .onBadImage(BadImagePolicy.REFUSE).scan();
        var tooSmall = assertThrows(IllegalArgumentException.class,
                () -> new MultiCropLoader(refusing, new MultiCropAugmentation(cfg), 1, 1, 1, 1));
        assertTrue(tooSmall.getMessage().contains("tiny.png: 8x8 px, smaller than the 16 px minimum side"),
                tooSmall.getMessage());
        var tooFew = assertThrows(IllegalArgumentException.class,
                () -> new MultiCropLoader(small, new MultiCropAugmentation(cfg), 2, 1, 1, 1));
        assertTrue(tooFew.getMessage().contains("1 images, fewer than one batch of 2"), tooFew.getMessage());
        var channels = assertThrows(IllegalArgumentException.class,
                () -> new MultiCropAugmentation(MultiCropConfig.imageNet()).apply(small.load(1),
                        new java.util.SplittableRandom(1)));
        assertTrue(channels.getMessage().contains("1 channel(s)"), channels.getMessage());

        Path truncated = dir.resolve("bad-images-idx3-ubyte.gz");
        try (GZIPOutputStream out = new GZIPOutputStream(Files.newOutputStream(truncated))) {
            out.write(new byte[] {0, 0, 8, 3, 0, 0, 0, 5, 0, 0, 0, 28, 0, 0, 0, 28, 1, 2, 3});
        }
        var idx = assertThrows(IOException.class, () -> IdxImageSource.read(truncated, null, List.of()));
        assertTrue(idx.getMessage().contains("truncated"), idx.getMessage());
        var fm = assertThrows(NoSuchFileException.class, () -> IdxImageSource.fashionMnist(dir, true));
        assertTrue(fm.getMessage().contains("dataset-fashion-mnist"), fm.getMessage());
    }
}
