package io.mugs.plots;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.awt.image.BufferedImage;
import java.nio.file.Path;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class TsnePlotTest {

    @Test
    void threeClassesGiveAColouredScatterOfTheDocumentedSize(@TempDir Path dir) throws Exception {
        int per = 20;
        double[][] xy = new double[3 * per][];
        int[] labels = new int[3 * per];
        for (int i = 0; i < xy.length; i++) {
            labels[i] = i / per;
            double angle = 2 * Math.PI * (i % per) / per;
            xy[i] = new double[] {10 * labels[i] + Math.cos(angle), 5 * (labels[i] % 2) + Math.sin(angle)};
        }
        Path png = dir.resolve("tsne.png");
        TsnePlot.write(png, xy, labels, List.of("a", "b", "c"));
        BufferedImage img = ImageIO.read(png.toFile());
        assertEquals(900, img.getWidth());
        assertEquals(700, img.getHeight());
        Set<Integer> colours = new HashSet<>();
        for (int y = 0; y < img.getHeight(); y += 2) {
            for (int x = 0; x < img.getWidth(); x += 2) {
                colours.add(img.getRGB(x, y));
            }
        }
        assertTrue(colours.size() > 10, "three series, a legend and anti-aliased text: " + colours.size());
    }

    @Test
    void pointsAndLabelsMustMatch(@TempDir Path dir) {
        var e = assertThrows(IllegalArgumentException.class,
                () -> TsnePlot.write(dir.resolve("x.png"), new double[3][2], new int[2], List.of("a")));
        assertEquals("3 points but 2 labels", e.getMessage());
    }
}
