package io.mugs.eval;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.awt.image.BufferedImage;
import java.nio.file.Path;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.SplittableRandom;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class TsneTest {

    @Test
    void separatedClustersStaySeparatedIn2d(@TempDir Path dir) throws Exception {
        SplittableRandom r = new SplittableRandom(1);
        int per = 40;
        double[][] x = new double[3 * per][10];
        int[] labels = new int[3 * per];
        for (int i = 0; i < x.length; i++) {
            labels[i] = i / per;
            for (int k = 0; k < 10; k++) {
                x[i][k] = r.nextGaussian() + (k == labels[i] ? 8 : 0);
            }
        }
        double[][] y = new Tsne(15, 500, 2).embed(x);
        // 1-nearest neighbour in the embedding recovers every label.
        int correct = 0;
        for (int i = 0; i < y.length; i++) {
            int best = -1;
            double bestD = Double.MAX_VALUE;
            for (int j = 0; j < y.length; j++) {
                double d = Math.hypot(y[i][0] - y[j][0], y[i][1] - y[j][1]);
                if (j != i && d < bestD) {
                    bestD = d;
                    best = j;
                }
            }
            correct += labels[best] == labels[i] ? 1 : 0;
        }
        assertEquals(y.length, correct);
        Path png = dir.resolve("tsne.png");
        TsnePlot.write(png, y, labels, List.of("a", "b", "c"));
        BufferedImage img = ImageIO.read(png.toFile());
        assertEquals(900, img.getWidth());
        Set<Integer> colours = new HashSet<>();
        for (int yy = 0; yy < img.getHeight(); yy += 2) {
            for (int xx = 0; xx < img.getWidth(); xx += 2) {
                colours.add(img.getRGB(xx, yy));
            }
        }
        assertTrue(colours.size() > 10);
        assertThrows(IllegalArgumentException.class, () -> new Tsne(30, 10, 1).embed(new double[5][3]));
    }
}
