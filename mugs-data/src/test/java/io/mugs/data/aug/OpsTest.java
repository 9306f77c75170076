package io.mugs.data.aug;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.mugs.data.Image;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

class OpsTest {

    private static Image rgb(int h, int w, int... values) {
        float[] d = new float[values.length];
        for (int i = 0; i < d.length; i++) {
            d[i] = values[i];
        }
        return new Image(3, h, w, d);
    }

    private static Image gray(int h, int w, int... values) {
        float[] d = new float[values.length];
        for (int i = 0; i < d.length; i++) {
            d[i] = values[i];
        }
        return new Image(1, h, w, d);
    }

    private static Image random(int c, int h, int w, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        Image img = new Image(c, h, w);
        for (int i = 0; i < img.data().length; i++) {
            img.data()[i] = r.nextInt(256);
        }
        return img;
    }

    @Test
    void flipMirrorsEachRow() {
        Image img = gray(2, 3, 1, 2, 3, 4, 5, 6);
        assertArrayEquals(new float[] {3, 2, 1, 6, 5, 4}, GeometryOps.flipHorizontal(img).data());
    }

    @Test
    void grayscaleUsesPilLumaWeights() {
        Image img = rgb(1, 2, 100, 10, 150, 20, 200, 30);
        Image g = ColorOps.toGray(img);
        // 0.299 R + 0.587 G + 0.114 B, rounded: 140.75 -> 141 and 18.15 -> 18.
        assertEquals(141, g.get(0, 0, 0));
        assertEquals(141, g.get(2, 0, 0));
        assertEquals(18, g.get(1, 0, 1));
        assertEquals(3, g.channels());
        Image single = gray(1, 1, 77);
        assertEquals(single, ColorOps.toGray(single), "grayscale of a 1-channel image is the identity");
    }

    @Test
    void solarizeInvertsAtAndAboveTheThreshold() {
        Image s = ColorOps.solarize(gray(1, 4, 0, 127, 128, 200), 128);
        assertArrayEquals(new float[] {0, 127, 127, 55}, s.data());
    }

    @Test
    void posterizeKeepsTheTopBits() {
        Image p = ColorOps.posterize(gray(1, 3, 191, 15, 255), 4);
        assertArrayEquals(new float[] {176, 0, 240}, p.data());
        assertArrayEquals(new float[] {128, 0, 128}, ColorOps.posterize(gray(1, 3, 191, 15, 255), 1).data());
    }

    @Test
    void solarizeAddAndInvert() {
        assertArrayEquals(new float[] {110, 227, 128, 255}, ColorOps.solarizeAdd(gray(1, 4, 10, 127, 128, 255), 100,
                128).data());
        assertArrayEquals(new float[] {255, 0, 155}, ColorOps.invert(gray(1, 3, 0, 255, 100)).data());
    }

    @Test
    void autoContrastStretchesEachChannel() {
        Image a = ColorOps.autoContrast(gray(1, 3, 50, 100, 150));
        // scale 255/100, offset -50 * 2.55: 0, int(127.5) = 127, 255
        assertArrayEquals(new float[] {0, 127, 255}, a.data());
    }

    @Test
    void equalizeFollowsPilsStepRule() {
        // histogram: 10 -> 2 px, 20 -> 1 px, 30 -> 1 px; step = (4 - 1) / 255 = 0: identity.
        Image small = gray(1, 4, 10, 10, 20, 30);
        assertEquals(small, ColorOps.equalize(small));
        // 512 px: 256 at 0, 256 at 100. step = (512 - 256) / 255 = 1, lut[0] = 0, lut[100] = (0 + 256) / 1 = 256 -> 255.
        int[] v = new int[512];
        for (int i = 256; i < 512; i++) {
            v[i] = 100;
        }
        Image e = ColorOps.equalize(gray(1, 512, v));
        assertEquals(0, e.data()[0]);
        assertEquals(255, e.data()[300]);
    }

    @Test
    void enhanceOpsBlendWithTheirDegenerateImage() {
        assertArrayEquals(new float[] {101, 0, 128}, ColorOps.brightness(gray(1, 3, 201, 0, 255), 0.5).data());
        // contrast: mean luma of (0, 100, 200) = 100; factor 2 -> 100 + 2 (v - 100)
        assertArrayEquals(new float[] {0, 100, 255}, ColorOps.contrast(gray(1, 3, 0, 100, 200), 2).data());
        Image img = rgb(1, 1, 200, 100, 0);
        Image desaturated = ColorOps.saturation(img, 0);
        assertEquals(desaturated.get(0, 0, 0), desaturated.get(1, 0, 0));
        assertEquals(img, ColorOps.saturation(img, 1));
    }

    @Test
    void hueShiftsInHsv() {
        Image red = rgb(1, 1, 255, 0, 0);
        Image shifted = ColorOps.hue(red, 1.0 / 3);
        assertArrayEquals(new float[] {0, 255, 0}, shifted.data());
        Image any = random(3, 4, 4, 3);
        Image same = ColorOps.hue(any, 0);
        for (int i = 0; i < any.data().length; i++) {
            assertEquals(any.data()[i], same.data()[i], 6.0, "8-bit HSV round trip (PIL quantises H, S, V)");
        }
    }

    @Test
    void resizeKeepsConstantsAndMatchesPilWeights() {
        Image flat = gray(5, 7, new int[35]);
        java.util.Arrays.fill(flat.data(), 90);
        Image r = Resize.resize(flat, 3, 4);
        for (float v : r.data()) {
            assertEquals(90, v);
        }
        // 2 -> 4 upsampling of [0, 255]: output 0 has centre 0.25 and taps 0, 1 with Keys (a = -0.5) weights.
        Image ramp = gray(1, 2, 0, 255);
        Image up = Resize.resize(ramp, 1, 4);
        double w0 = Resize.cubic(0.25);
        double w1 = Resize.cubic(1.25);
        assertEquals(Image.clamp8(255 * w1 / (w0 + w1)), up.data()[0]);
        assertEquals(255 - Image.clamp8(255 * w1 / (w0 + w1)), up.data()[3], "mirror-symmetric");
        assertTrue(up.data()[1] < up.data()[2], "monotone ramp");
    }

    @Test
    void randomResizedCropBoxesRespectScaleAndRatio() {
        RandomResizedCrop crop = new RandomResizedCrop(12, 0.05, 0.25);
        SplittableRandom rng = new SplittableRandom(4);
        for (int i = 0; i < 5000; i++) {
            int[] box = crop.sampleBox(224, 224, rng);
            double area = (double) box[2] * box[3] / (224 * 224);
            double ratio = (double) box[3] / box[2];
            assertTrue(box[0] >= 0 && box[1] >= 0 && box[0] + box[2] <= 224 && box[1] + box[3] <= 224);
            assertTrue(area >= 0.05 * 0.97 && area <= 0.25 * 1.03, "area " + area);
            assertTrue(ratio >= 0.75 * 0.97 && ratio <= 4.0 / 3 * 1.03, "ratio " + ratio);
        }
        // An extreme aspect ratio falls back to the centred box with the ratio clamped.
        int[] fallback = new RandomResizedCrop(8, 0.9, 1.0).sampleBox(10, 200, new SplittableRandom(1));
        assertArrayEquals(new int[] {0, (200 - 13) / 2, 10, 13}, fallback);
    }

    @Test
    void randomErasingAreaAndAspectBounds() {
        RandomErasing erasing = new RandomErasing(1.0);
        SplittableRandom rng = new SplittableRandom(5);
        int erased = 0;
        for (int i = 0; i < 3000; i++) {
            float[] t = new float[3 * 64 * 64];
            int[] box = erasing.apply(t, 3, 64, 64, rng);
            if (box == null) {
                continue;
            }
            erased++;
            double area = (double) box[2] * box[3] / (64 * 64);
            assertTrue(area >= 0.02 * 0.8 && area <= 1.0 / 3 * 1.1, "area " + area);
            double ratio = (double) box[2] / box[3];
            assertTrue(ratio >= 0.3 * 0.75 && ratio <= 1 / 0.3 * 1.3, "ratio " + ratio);
            int nonZero = 0;
            for (float v : t) {
                nonZero += v != 0 ? 1 : 0;
            }
            assertEquals(3 * box[2] * box[3], nonZero, "noise exactly inside the box, every channel");
        }
        assertTrue(erased > 2900);
        assertEquals(null, new RandomErasing(0.0).apply(new float[16], 1, 4, 4, rng));
    }

    @Test
    void everyRandAugmentOpWorksOnGrayscaleAndRgb() {
        for (int c : new int[] {1, 3}) {
            Image img = random(c, 12, 12, 9);
            for (RandAugment.Op op : RandAugment.Op.values()) {
                Image out = RandAugment.apply(op, img, 9, new SplittableRandom(1));
                assertNotNull(out);
                assertEquals(c, out.channels(), op + " keeps the channel count");
                assertEquals(12, out.height());
                for (float v : out.data()) {
                    assertTrue(v >= 0 && v <= 255 && v == Math.rint(v), op + " stays 8-bit");
                }
            }
        }
    }

    @Test
    void rotateByNinetyDegreesMovesPixels() {
        Image img = gray(2, 2, 1, 2, 3, 4);
        // PIL rotate(90) is counter-clockwise: top-right goes to top-left.
        Image r = GeometryOps.rotate(img, 90, GeometryOps.Filter.BILINEAR, new float[] {0});
        assertArrayEquals(new float[] {2, 4, 1, 3}, r.data());
        Image shifted = GeometryOps.affine(gray(1, 4, 10, 20, 30, 40), new double[] {1, 0, 2, 0, 1, 0},
                GeometryOps.Filter.BILINEAR, new float[] {7});
        assertArrayEquals(new float[] {30, 40, 7, 7}, shifted.data());
    }

    @Test
    void gaussianBlurPreservesConstantsAndSmoothsAnEdge() {
        Image edge = gray(1, 10, 0, 0, 0, 0, 0, 255, 255, 255, 255, 255);
        Image b = GaussianBlur.apply(edge, 1.0);
        assertEquals(0, b.data()[0]);
        assertEquals(255, b.data()[9]);
        assertTrue(b.data()[4] > 0 && b.data()[5] < 255);
        // Gaussian CDF at the edge: pixel 4 gets 255 * P(X >= 0.5) ~ 255 * 0.3085 (3-sigma truncation).
        assertEquals(255 * 0.3085, b.data()[4], 3);
    }
}
