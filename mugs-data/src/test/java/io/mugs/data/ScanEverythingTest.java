package io.mugs.data;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.awt.image.BufferedImage;
import java.awt.image.IndexColorModel;
import java.awt.image.WritableRaster;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.lang.management.ManagementFactory;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.zip.CRC32;
import java.util.zip.CheckedOutputStream;
import java.util.zip.Deflater;
import java.util.zip.DeflaterOutputStream;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A scan sees everything torchvision's ImageFolder would: symbolic links (with loops detected), WebP, BMP, TIFF and
 * GIF; it says in one line what it read and skipped; 16-bit grey is scaled (or clipped as PIL does) with a warning;
 * huge images are decoded subsampled within a pixel budget. Every file is written by the test; expected pixels are
 * computed in plain Java.
 */
class ScanEverythingTest {

    /** An RGB image whose every sample is a known function of its position. */
    private static BufferedImage pattern(int w, int h, int type) {
        BufferedImage img = new BufferedImage(w, h, type);
        for (int y = 0; y < h; y++) {
            for (int x = 0; x < w; x++) {
                img.setRGB(x, y, (x * 37 % 256) << 16 | (y * 53 % 256) << 8 | ((x + y) * 11 % 256));
            }
        }
        return img;
    }

    private static void assertPixels(BufferedImage expected, Image got, String what) {
        assertEquals(3, got.channels(), what);
        assertEquals(expected.getHeight(), got.height(), what);
        assertEquals(expected.getWidth(), got.width(), what);
        for (int y = 0; y < got.height(); y++) {
            for (int x = 0; x < got.width(); x++) {
                int rgb = expected.getRGB(x, y);
                assertEquals((rgb >> 16) & 0xff, got.get(0, y, x), 0, what + " red at " + x + "," + y);
                assertEquals((rgb >> 8) & 0xff, got.get(1, y, x), 0, what + " green at " + x + "," + y);
                assertEquals(rgb & 0xff, got.get(2, y, x), 0, what + " blue at " + x + "," + y);
            }
        }
    }

    @Test
    void symbolicLinksAreFollowedLoopsReportedAndOtherFilesCounted(@TempDir Path tmp) throws IOException {
        Path elsewhere = tmp.resolve("elsewhere/dog");
        Path train = tmp.resolve("train");
        Files.createDirectories(elsewhere);
        Files.createDirectories(train.resolve("cat"));
        ImageIO.write(pattern(8, 8, BufferedImage.TYPE_INT_RGB), "png", train.resolve("cat/c.png").toFile());
        ImageIO.write(pattern(8, 8, BufferedImage.TYPE_INT_RGB), "png", elsewhere.resolve("d1.png").toFile());
        ImageIO.write(pattern(9, 8, BufferedImage.TYPE_INT_RGB), "png", elsewhere.resolve("d2.png").toFile());
        Files.createSymbolicLink(train.resolve("dog"), elsewhere);              // a class folder that is a link
        Files.createSymbolicLink(elsewhere.resolve("again"), elsewhere);        // a loop
        Files.createSymbolicLink(train.resolve("cat/gone.png"), tmp.resolve("missing.png"));   // a broken link
        Files.writeString(train.resolve("cat/notes.txt"), "x");
        Files.write(train.resolve("cat/photo.heic"), new byte[] {0, 0, 0, 24, 'f', 't', 'y', 'p'});

        ImageFolderSource s = ImageFolderSource.scan(train);
        assertEquals(3, s.size());
        assertEquals(List.of("cat", "dog"), s.classNames());
        assertArrayEquals(new int[] {0, 1, 1}, s.labels());
        assertEquals(train.resolve("dog/d2.png").toString(), s.describe(2));
        assertEquals("'" + train + "': read 3 images (png 3) in 2 classes; skipped 2 file(s) of other types, not read "
                + "(.heic 1, .txt 1); 1 symbolic-link loop(s), followed once ('" + train + "/dog/again'); 1 unreadable "
                + "entry ('" + train + "/cat/gone.png': a broken symbolic link (its target is missing))", s.scanSummary());
    }

    @Test
    void webpBmpTiffAndGifAreReadAsTheirPixels(@TempDir Path dir) throws IOException {
        BufferedImage rgb = pattern(13, 7, BufferedImage.TYPE_3BYTE_BGR);
        ImageIO.write(rgb, "bmp", dir.resolve("a.bmp").toFile());
        ImageIO.write(rgb, "tiff", dir.resolve("b.tif").toFile());
        byte[] r = {0, (byte) 200, 10, (byte) 255};
        byte[] g = {0, 100, (byte) 250, (byte) 255};
        byte[] b = {0, 50, (byte) 130, (byte) 255};
        BufferedImage indexed = new BufferedImage(6, 5, BufferedImage.TYPE_BYTE_INDEXED,
                new IndexColorModel(2, 4, r, g, b));
        WritableRaster raster = indexed.getRaster();
        for (int y = 0; y < 5; y++) {
            for (int x = 0; x < 6; x++) {
                raster.setSample(x, y, 0, (x + 2 * y) % 4);
            }
        }
        ImageIO.write(indexed, "gif", dir.resolve("c.gif").toFile());
        BufferedImage two = new BufferedImage(5, 3, BufferedImage.TYPE_INT_RGB);
        for (int y = 0; y < 3; y++) {
            for (int x = 0; x < 5; x++) {
                two.setRGB(x, y, (x + y) % 2 == 0 ? 0x1e5a96 : 0xc8321e);
            }
        }
        Files.write(dir.resolve("d.webp"), LosslessWebp.twoColours(two, 0x1e5a96, 0xc8321e));

        ImageFolderSource s = ImageFolderSource.scan(dir);
        assertEquals(4, s.size());
        assertTrue(s.scanSummary().startsWith("'" + dir + "': read 4 images (bmp 1, gif 1, tiff 1, webp 1), "
                + "unlabelled; nothing skipped"), s.scanSummary());
        assertPixels(rgb, s.load(0), "bmp");
        assertPixels(rgb, s.load(1), "tiff");
        assertPixels(indexed, s.load(2), "gif");
        assertPixels(two, s.load(3), "webp");
    }

    @Test
    void sixteenBitGreyIsScaledByDefaultOrClippedAsPilWithAWarning(@TempDir Path dir) throws IOException {
        int[] values = {0, 1000, 32768, 65535, 257, 128};
        BufferedImage img = new BufferedImage(values.length, 1, BufferedImage.TYPE_USHORT_GRAY);
        for (int x = 0; x < values.length; x++) {
            img.getRaster().setSample(x, 0, 0, values[x]);
        }
        ImageIO.write(img, "png", dir.resolve("g16.png").toFile());
        ImageFolderSource scaled = ImageFolderSource.scan(dir);
        ImageFolderSource clipped = ImageFolderSource.builder(dir).sixteenBit(ImageDecoder.SixteenBit.PIL_CLIP)
                .scan();
        Image a = scaled.load(0);
        Image b = clipped.load(0);
        assertEquals(1, a.channels());
        for (int x = 0; x < values.length; x++) {
            assertEquals(Math.round(values[x] * 255.0 / 65535), a.get(0, 0, x), 0, "scaled " + values[x]);
            assertEquals(Math.min(values[x], 255), b.get(0, 0, x), 0, "clipped " + values[x]);
        }
        assertTrue(ImageDecoder.header(dir.resolve("g16.png")).sixteenBitGrey());
    }

    @Test
    void hugeImagesAreDecodedSubsampledWithinTheBudgetAndNamed(@TempDir Path dir) throws IOException {
        // 13000 x 13000 grey, 0.2 MB on disk: 169 M pixels, 676 MB as floats if decoded whole
        Path huge = dir.resolve("huge.png");
        writeZeroPng(huge, 13000, 13000);
        BufferedImage small = pattern(64, 48, BufferedImage.TYPE_INT_RGB);
        ImageIO.write(small, "png", dir.resolve("small.png").toFile());

        ImageFolderSource s = ImageFolderSource.scan(dir);
        assertTrue(s.scanSummary().endsWith("; 1 over the decode budget of 16777216 pixels are read subsampled (e.g. '"
                + huge + "', 13000x13000 px, at 1/4)"), s.scanSummary());
        var threads = (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
        long before = threads.getCurrentThreadAllocatedBytes();
        Image img = s.load(0);
        long allocated = threads.getCurrentThreadAllocatedBytes() - before;
        System.out.printf("HUGE 13000x13000 PNG (%d bytes) decoded at %dx%d, %d bytes allocated%n", Files.size(huge),
                img.width(), img.height(), allocated);
        assertEquals(3250, img.width());
        assertEquals(3250, img.height());
        assertTrue(allocated < 256L << 20, allocated + " bytes (decoded whole: over 2 GB)");

        // subsampling keeps every s-th pixel of every s-th row: compared with the image itself
        Image half = ImageFolderSource.builder(dir).maxDecodePixels(64 * 48 / 4).channels(3).scan().load(1);
        assertEquals(32, half.width());
        BufferedImage every2 = new BufferedImage(32, 24, BufferedImage.TYPE_INT_RGB);
        for (int y = 0; y < 24; y++) {
            for (int x = 0; x < 32; x++) {
                every2.setRGB(x, y, small.getRGB(2 * x, 2 * y));
            }
        }
        assertPixels(every2, half, "subsampled");
    }

    @Test
    void aFileNameWithANewlineStaysOnOneLine(@TempDir Path dir) throws IOException {
        ImageIO.write(pattern(8, 8, BufferedImage.TYPE_INT_RGB), "png", dir.resolve("ok.png").toFile());
        Files.writeString(dir.resolve("bad\nname.png"), "not an image");
        ImageFolderSource s = ImageFolderSource.scan(dir);
        assertFalse(s.scanSummary().contains("\n"), s.scanSummary());
        assertTrue(s.scanSummary().contains("1 unusable (e.g. '" + dir + "/bad\\nname.png': "), s.scanSummary());
    }

    /** A grey 8-bit PNG of zeros, streamed (no full image in memory). */
    private static void writeZeroPng(Path file, int w, int h) throws IOException {
        ByteArrayOutputStream idat = new ByteArrayOutputStream();
        Deflater deflater = new Deflater(9);
        try (DeflaterOutputStream z = new DeflaterOutputStream(idat, deflater, 1 << 16)) {
            byte[] row = new byte[w + 1];   // filter 0, then zeros
            for (int y = 0; y < h; y++) {
                z.write(row);
            }
        }
        try (OutputStream out = Files.newOutputStream(file)) {
            out.write(new byte[] {(byte) 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'});
            chunk(out, "IHDR", ByteBuffer.allocate(13).putInt(w).putInt(h).put(new byte[] {8, 0, 0, 0, 0}).array());
            chunk(out, "IDAT", idat.toByteArray());
            chunk(out, "IEND", new byte[0]);
        }
    }

    private static void chunk(OutputStream out, String type, byte[] data) throws IOException {
        out.write(ByteBuffer.allocate(4).putInt(data.length).array());
        CRC32 crc = new CRC32();
        CheckedOutputStream c = new CheckedOutputStream(out, crc);
        c.write(type.getBytes(java.nio.charset.StandardCharsets.US_ASCII));
        c.write(data);
        out.write(ByteBuffer.allocate(4).putInt((int) crc.getValue()).array());
    }

    /** A lossless WebP (VP8L) writer for images of at most two colours, enough to check the reader is wired. */
    static final class LosslessWebp {

        private final ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        private long acc;
        private int used;

        private void bits(long value, int n) {
            acc |= (value & ((1L << n) - 1)) << used;
            used += n;
            while (used >= 8) {
                bytes.write((int) (acc & 0xff));
                acc >>>= 8;
                used -= 8;
            }
        }

        /** A "simple" prefix code of one or two 8-bit symbols (1 bit per symbol when two). */
        private void simpleCode(int s0, int s1) {
            bits(1, 1);
            bits(s0 == s1 ? 0 : 1, 1);
            bits(1, 1);   // first symbol in 8 bits
            bits(s0, 8);
            if (s0 != s1) {
                bits(s1, 8);
            }
        }

        static byte[] twoColours(BufferedImage img, int c0, int c1) {
            LosslessWebp w = new LosslessWebp();
            w.bits(0x2f, 8);
            w.bits(img.getWidth() - 1, 14);
            w.bits(img.getHeight() - 1, 14);
            w.bits(0, 1);   // alpha unused
            w.bits(0, 3);   // version 0
            w.bits(0, 1);   // no transform
            w.bits(0, 1);   // no colour cache
            w.bits(0, 1);   // no meta prefix codes
            int[][] channels = {{(c0 >> 8) & 0xff, (c1 >> 8) & 0xff}, {(c0 >> 16) & 0xff, (c1 >> 16) & 0xff},
                {c0 & 0xff, c1 & 0xff}, {255, 255}, {0, 0}};   // green, red, blue, alpha, distance
            for (int[] c : channels) {
                w.simpleCode(Math.min(c[0], c[1]), Math.max(c[0], c[1]));
            }
            for (int y = 0; y < img.getHeight(); y++) {
                for (int x = 0; x < img.getWidth(); x++) {
                    int p = img.getRGB(x, y) & 0xffffff;
                    int[] v = {(p >> 8) & 0xff, (p >> 16) & 0xff, p & 0xff};
                    for (int k = 0; k < 3; k++) {
                        if (channels[k][0] != channels[k][1]) {
                            w.bits(v[k] == Math.min(channels[k][0], channels[k][1]) ? 0 : 1, 1);
                        }
                    }
                }
            }
            if (w.used > 0) {
                w.bits(0, 8 - w.used);
            }
            byte[] vp8l = w.bytes.toByteArray();
            int padded = vp8l.length + (vp8l.length & 1);
            ByteBuffer riff = ByteBuffer.allocate(20 + padded).order(ByteOrder.LITTLE_ENDIAN);
            riff.put("RIFF".getBytes()).putInt(12 + padded).put("WEBP".getBytes()).put("VP8L".getBytes())
                    .putInt(vp8l.length).put(vp8l);
            return riff.array();
        }
    }
}
