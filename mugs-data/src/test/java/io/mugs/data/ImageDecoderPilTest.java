package io.mugs.data;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.net.URISyntaxException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Decodes the files written by {@code scripts/make-pil-image-fixtures.py} and compares every sample with what PIL
 * 9.4 gave for {@code Image.open(f).convert("L" / "RGB")}: equal for PNG, within {@link #JPEG_TOLERANCE} levels
 * for JPEG (libjpeg-turbo's and the JDK's IDCTs round differently).
 */
class ImageDecoderPilTest {

    /** Largest per-sample difference accepted for JPEGs; the measured maximum is in docs/reliability.md. */
    static final int JPEG_TOLERANCE = 2;

    static Path fixture(String name) {
        try {
            return Path.of(ImageDecoderPilTest.class.getResource("/pil/" + name).toURI());
        } catch (URISyntaxException e) {
            throw new IllegalStateException(e);
        }
    }

    /** PIL's pixels: "h w c" then rows of channel-last samples, as [c, h, w]. */
    static Image pil(String name) throws IOException {
        List<String> lines = Files.readAllLines(fixture(name));
        String[] dims = lines.get(0).trim().split(" ");
        int h = Integer.parseInt(dims[0]);
        int w = Integer.parseInt(dims[1]);
        int c = Integer.parseInt(dims[2]);
        Image img = new Image(c, h, w);
        for (int y = 0; y < h; y++) {
            String[] v = lines.get(1 + y).trim().split(" ");
            for (int x = 0; x < w; x++) {
                for (int k = 0; k < c; k++) {
                    img.set(k, y, x, Integer.parseInt(v[x * c + k]));
                }
            }
        }
        return img;
    }

    static int maxDiff(Image a, Image b) {
        assertEquals(b.toString(), a.toString(), "shape");
        int m = 0;
        for (int i = 0; i < a.data().length; i++) {
            m = Math.max(m, (int) Math.abs(a.data()[i] - b.data()[i]));
        }
        return m;
    }

    @ParameterizedTest
    @ValueSource(strings = {"grey.png", "grey1.png", "grey4.png", "grey16.png", "la.png", "la16.png", "rgb.png",
            "rgb16.png", "rgba.png", "rgba16.png", "palette.png", "palette-transparent.png"})
    void pngMatchesPilExactly(String name) throws IOException {
        
        for (ImageDecoder.Mode mode : new ImageDecoder.Mode[] {ImageDecoder.Mode.L, ImageDecoder.Mode.RGB}) {
            Image ours = ImageDecoder.pil().decode(fixture(name), mode);
            assertEquals(0, maxDiff(ours, pil(name + "." + mode + ".txt")), name + " as " + mode);
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"rgb.jpg", "grey.jpg", "cmyk.jpg", "ycck.jpg", "exif6.jpg", "noise.jpg",
            "noise-progressive.jpg", "noise-cmyk.jpg"})
    void jpegMatchesPilWithinTolerance(String name) throws IOException {
        
        for (ImageDecoder.Mode mode : new ImageDecoder.Mode[] {ImageDecoder.Mode.L, ImageDecoder.Mode.RGB}) {
            Image ours = ImageDecoder.pil().decode(fixture(name), mode);
            int d = maxDiff(ours, pil(name + "." + mode + ".txt"));
            System.out.printf("PIL max abs diff %s %s: %d%n", name, mode, d);
            assertTrue(d <= JPEG_TOLERANCE, name + " as " + mode + " differs from PIL by " + d + " levels");
        }
    }

    @ParameterizedTest
    @ValueSource(ints = {2, 3, 4, 5, 6, 7, 8})
    void exifOrientationIsIgnoredByDefaultAndAppliedOnRequest(int orientation) throws IOException {
        String name = "exif" + orientation + ".jpg";
        Image asStored = ImageDecoder.pil().decode(fixture(name), ImageDecoder.Mode.RGB);
        assertEquals(0, maxDiff(asStored, ImageDecoder.pil().decode(fixture("rgb.jpg"), ImageDecoder.Mode.RGB)),
                "torchvision's loader ignores the orientation: the pixels of the same JPEG without EXIF");
        Image upright = ImageDecoder.withExifOrientation().decode(fixture(name), ImageDecoder.Mode.RGB);
        Image expected = pil(name + ".exif_transpose.RGB.txt");
        assertEquals(orientation >= 5 ? "Image[3x8x6]" : "Image[3x6x8]", expected.toString());
        int d = maxDiff(upright, expected);
        System.out.printf("PIL max abs diff %s exif_transpose RGB: %d%n", name, d);
        assertTrue(d <= JPEG_TOLERANCE, name + " exif_transpose differs by " + d);
    }

    @Test
    void headerReportsSizeAndGreyLayoutWithoutDecoding() throws IOException {
        ImageHeader grey16 = ImageDecoder.header(fixture("grey16.png"));
        assertEquals(new ImageHeader("png", 8, 6, true, true), grey16);
        assertEquals(6, grey16.minSide());
        assertEquals(new ImageHeader("jpeg", 8, 6, false), ImageDecoder.header(fixture("cmyk.jpg")));
        assertTrue(ImageDecoder.header(fixture("grey1.png")).grey());
        assertTrue(!ImageDecoder.header(fixture("palette.png")).grey());
        assertArrayEquals(new int[] {1, 3, 3}, new int[] {
            ImageDecoder.pil().decode(fixture("la16.png"), ImageDecoder.Mode.NATURAL).channels(),
            ImageDecoder.pil().decode(fixture("palette.png"), ImageDecoder.Mode.NATURAL).channels(),
            ImageDecoder.pil().decode(fixture("ycck.jpg"), ImageDecoder.Mode.NATURAL).channels()});
    }
}
