package io.mugs.data;

import static io.mugs.data.ImageDecoderPilTest.fixture;
import static io.mugs.data.ImageDecoderPilTest.maxDiff;
import static io.mugs.data.ImageDecoderPilTest.pil;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.awt.image.BufferedImage;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.zip.CRC32;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Scanning a folder: bad files found from headers before training, one channel count per folder. */
class ImageFolderScanTest {

    private static void png(Path file, int w, int h) throws IOException {
        BufferedImage img = new BufferedImage(w, h, BufferedImage.TYPE_INT_RGB);
        img.setRGB(0, 0, 0x336699);
        Files.createDirectories(file.getParent());
        ImageIO.write(img, "png", file.toFile());
    }

    private static void copy(String fixture, Path to) throws IOException {
        Files.createDirectories(to.getParent());
        Files.copy(fixture(fixture), to);
    }

    /** A PNG whose header declares {@code w x h} pixels but which holds no pixel data. */
    private static byte[] headerOnlyPng(int w, int h) {
        ByteBuffer ihdr = ByteBuffer.allocate(17).put("IHDR".getBytes()).putInt(w).putInt(h)
                .put(new byte[] {8, 2, 0, 0, 0});
        CRC32 crc = new CRC32();
        crc.update(ihdr.array());
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        out.writeBytes(new byte[] {(byte) 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0, 0, 0, 13});
        out.writeBytes(ihdr.array());
        out.writeBytes(ByteBuffer.allocate(4).putInt((int) crc.getValue()).array());
        return out.toByteArray();
    }

    @Test
    void imagesTooSmallAreFoundAtScanAndSkippedOrRefused(@TempDir Path dir) throws IOException {
        png(dir.resolve("a/one.png"), 1, 1);
        png(dir.resolve("a/wide.png"), 40, 15);
        png(dir.resolve("b/ok.png"), 40, 40);
        ImageFolderSource skip = ImageFolderSource.builder(dir).minSide(16).scan();
        assertEquals(1, skip.size());
        assertEquals(dir.resolve("b/ok.png").toString(), skip.describe(0));
        assertArrayEquals(new int[] {1}, skip.labels(), "class indices come from every file, skipped or not");
        assertEquals(2, skip.leftOut().size());
        assertTrue(skip.leftOut().get(0).endsWith("one.png: 1x1 px, smaller than the 16 px minimum side "
                + "(MultiCropConfig.minImageSide, the local crop size by default)"), skip.leftOut().get(0));
        assertTrue(skip.leftOut().get(1).contains("wide.png: 40x15 px"), skip.leftOut().get(1));

        var refuse = assertThrows(IOException.class,
                () -> ImageFolderSource.builder(dir).minSide(16).onBadImage(BadImagePolicy.REFUSE).scan());
        assertTrue(refuse.getMessage().startsWith(dir.resolve("a/one.png") + ": 1x1 px, smaller than the 16 px"),
                refuse.getMessage());
        assertTrue(refuse.getMessage().contains("(2 of 3 files under"), refuse.getMessage());

        ImageFolderSource all = ImageFolderSource.scan(dir);   // minimum 1 px: all three kept until a loader asks
        assertEquals(3, all.size());
        assertEquals(2, all.withMinSide(15).size(), "wide.png (40x15) is kept at 15");
        assertEquals(1, all.withMinSide(16).size(), "and left out at 16");
        assertEquals(1, all.withMinSide(15).withMinSide(16).size());
        assertEquals(3, all.withMinSide(15).leftOut().size() + all.withMinSide(15).size());
        assertTrue(all.withMinSide(1) == all, "a lower minimum than the scan's changes nothing");
    }

    @Test
    void damagedFilesAreNamedAtScanNeverAnIndexError(@TempDir Path dir) throws IOException {
        png(dir.resolve("ok.png"), 20, 20);
        Files.writeString(dir.resolve("notes.png"), "not an image");
        byte[] jpeg = Files.readAllBytes(fixture("noise.jpg"));
        Files.write(dir.resolve("cut.jpg"), Arrays.copyOf(jpeg, jpeg.length * 8 / 10));
        Files.write(dir.resolve("bomb.png"), headerOnlyPng(20_000, 20_000));

        var notImage = assertThrows(IOException.class, () -> ImageDecoder.header(dir.resolve("notes.png")));
        assertEquals(dir.resolve("notes.png") + ": not an image this decoder reads (JPEG, PNG, WebP, BMP, TIFF, GIF: "
                + "none recognises its first bytes); remove it or convert it", notImage.getMessage());
        var bomb = assertThrows(IOException.class, () -> ImageDecoder.header(dir.resolve("bomb.png")));
        assertTrue(bomb.getMessage().startsWith(dir.resolve("bomb.png") + ": 20000x20000 px is over 178956970 "
                + "pixels"), bomb.getMessage());
        var cut = assertThrows(IOException.class,
                () -> ImageDecoder.pil().decode(dir.resolve("cut.jpg"), ImageDecoder.Mode.RGB));
        assertTrue(cut.getMessage().startsWith(dir.resolve("cut.jpg") + ": the image data is truncated"),
                cut.getMessage());

        ImageFolderSource src = ImageFolderSource.scan(dir);   // the header of cut.jpg is intact: kept at scan
        assertEquals(2, src.size());
        assertEquals(2, src.leftOut().size());
        assertTrue(src.leftOut().get(0).startsWith(dir.resolve("bomb.png") + ": 20000x20000 px"));
        assertTrue(src.leftOut().get(1).startsWith(dir.resolve("notes.png") + ": not an image this decoder reads"));
        var refuse = assertThrows(IOException.class,
                () -> ImageFolderSource.builder(dir).onBadImage(BadImagePolicy.REFUSE).scan());
        assertTrue(refuse.getMessage().contains("bomb.png"), refuse.getMessage());

        Files.delete(dir.resolve("ok.png"));
        Files.delete(dir.resolve("cut.jpg"));
        var none = assertThrows(IOException.class, () -> ImageFolderSource.scan(dir));
        assertTrue(none.getMessage().startsWith("none of the 2 image files under " + dir + " is usable, e.g. "
                + dir.resolve("bomb.png")), none.getMessage());
    }

    @Test
    void sixteenBitGreyAndCmykFilesTrainInOneRgbFolder(@TempDir Path dir) throws IOException {
        copy("grey16.png", dir.resolve("grey16.png"));
        copy("cmyk.jpg", dir.resolve("cmyk.jpg"));
        copy("palette-transparent.png", dir.resolve("palette.png"));
        ImageFolderSource src = ImageFolderSource.builder(dir).sixteenBit(ImageDecoder.SixteenBit.PIL_CLIP).scan();
        assertEquals(ImageDecoder.Mode.RGB, src.mode(), "one colour file makes the whole folder RGB");
        assertEquals(0, maxDiff(src.load(1), pil("grey16.png.RGB.txt")), "PIL clips 16-bit grey to 255");
        assertEquals(0, maxDiff(src.load(0), pil("cmyk.jpg.RGB.txt")));
        MultiCropConfig cfg = MultiCropConfig.builder().globalSize(6).localSize(4).localCrops(1).build();
        try (MultiCropLoader loader = new MultiCropLoader(src, new MultiCropAugmentation(cfg), 3, 1, 1, 3)) {
            MultiCropBatch b = loader.batch(0, 0);
            assertArrayEquals(new long[] {6, 3, 6, 6}, b.teacherGlobals().shape());
            assertEquals(0, loader.skippedImages());
        }
        ImageFolderSource grey = ImageFolderSource.builder(dir).channels(1).scan();
        assertEquals(0, maxDiff(grey.load(0), pil("cmyk.jpg.L.txt")));
        Files.delete(dir.resolve("cmyk.jpg"));
        Files.delete(dir.resolve("palette.png"));
        ImageFolderSource greyOnly = ImageFolderSource.builder(dir).sixteenBit(ImageDecoder.SixteenBit.PIL_CLIP).scan();
        assertEquals(ImageDecoder.Mode.L, greyOnly.mode(), "a folder of grey files decodes to one channel");
        assertEquals(0, maxDiff(greyOnly.load(0), pil("grey16.png.L.txt")));
    }

    @Test
    void exifOrientationIsAnOptInOfTheScan(@TempDir Path dir) throws IOException {
        copy("exif6.jpg", dir.resolve("photo.jpg"));
        assertEquals("Image[3x6x8]", ImageFolderSource.scan(dir).load(0).toString());
        ImageFolderSource upright = ImageFolderSource.builder(dir).exifOrientation(true).scan();
        assertEquals(0, maxDiff(upright.load(0), pil("exif6.jpg.exif_transpose.RGB.txt")));
    }

    @Test
    void settingsAreValidatedWithAClearMessage(@TempDir Path dir) {
        var side = assertThrows(IllegalArgumentException.class, () -> ImageFolderSource.builder(dir).minSide(0));
        assertEquals("ImageFolderSource minSide must be >= 1 px, got 0", side.getMessage());
        var channels = assertThrows(IllegalArgumentException.class, () -> ImageFolderSource.builder(dir).channels(2));
        assertEquals("channels must be 1 (L) or 3 (RGB), got 2", channels.getMessage());
    }
}
