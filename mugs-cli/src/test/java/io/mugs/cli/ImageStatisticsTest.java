package io.mugs.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import io.mugs.data.Image;
import io.mugs.data.ImageSource;
import java.util.List;
import org.junit.jupiter.api.Test;

class ImageStatisticsTest {

    /** Two 1x2 RGB images: pixel values chosen so the statistics are easy to write down. */
    private static final ImageSource TWO = new ImageSource() {
        @Override
        public int size() {
            return 2;
        }

        @Override
        public Image load(int index) {
            Image img = new Image(3, 1, 2);
            float[] d = img.data();
            float base = index == 0 ? 0 : 255;
            d[0] = base;       // R: 0, 0 then 255, 255
            d[1] = base;
            d[2] = 51;         // G: 51, 102 in both images
            d[3] = 102;
            d[4] = 255;        // B: constant 255
            d[5] = 255;
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

    @Test
    void perChannelMeanAndStdOfScaledPixels() throws Exception {
        ImageStatistics s = ImageStatistics.measure(TWO, 256);
        assertEquals(3, s.channels());
        assertEquals(2, s.images());
        assertArrayEquals(new double[] {0.5, 0.3, 1.0}, s.mean(), 1e-12);
        assertArrayEquals(new double[] {0.5, 0.1, 1e-3}, s.std(), 1e-9);   // a constant channel keeps std 1e-3
    }
}
