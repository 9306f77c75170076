package io.mugs.plots;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.mugs.data.Image;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

class PicturesTest {

    private static int distinctColours(BufferedImage img) {
        Set<Integer> c = new HashSet<>();
        for (int y = 0; y < img.getHeight(); y += 3) {
            for (int x = 0; x < img.getWidth(); x += 3) {
                c.add(img.getRGB(x, y));
            }
        }
        return c.size();
    }

    @Test
    void topMassKeepsTheSmallestSetHoldingTheFraction() {
        assertArrayEquals(new boolean[] {true, true, false, false},
                AttentionMaps.topMass(new double[] {0.5, 0.3, 0.1, 0.1}, 0.6));
        assertArrayEquals(new boolean[] {false, true, false, false},
                AttentionMaps.topMass(new double[] {0.2, 0.7, 0.05, 0.05}, 0.6));
    }

    @Test
    void attentionGridHasOneRowPerImageAndShowsThePeak(@TempDir Path dir) throws IOException {
        int grid = 4;
        int t = grid * grid + 1;
        INDArray attn = Nd4j.zeros(DataType.FLOAT, 2, 3, t, t).addi(0.01);
        for (int h = 0; h < 3; h++) {
            attn.putScalar(new long[] {0, h, 0, 1 + 5}, 1.0);      // image 0: patch (1, 1)
            attn.putScalar(new long[] {1, h, 0, 1 + 14}, 1.0);     // image 1: patch (3, 2)
        }
        Image[] images = {ramp(), ramp()};
        Path file = dir.resolve("attention.png");
        AttentionMaps.write(file, images, attn, grid, 0.6, 2);
        BufferedImage png = ImageIO.read(file.toFile());
        assertEquals((3 + 2) * 32, png.getWidth());
        assertEquals(2 * 32, png.getHeight());
        assertTrue(distinctColours(png) > 20, "not a flat picture");
        // Head 1 of image 0: the peak patch (row 1, col 1 -> pixels 8..15) is white-hot, another patch dark.
        assertEquals(0xffffff, png.getRGB(32 + 12, 12) & 0xffffff);
        assertTrue((png.getRGB(32 + 28, 28) & 0xff0000) >> 16 < 40);
        var e = assertThrows(IllegalArgumentException.class,
                () -> AttentionMaps.render(images, attn, 5, 0.6, 1));
        assertTrue(e.getMessage().contains("T = 26"), e.getMessage());
    }

    private static Image ramp() {
        Image img = new Image(1, 16, 16);
        for (int i = 0; i < 256; i++) {
            img.data()[i] = i;
        }
        return img;
    }

    /** Dark (label text) pixels left of the plot area: the y-axis tick labels and title. */
    private static int labelInk(BufferedImage img) {
        int ink = 0;
        for (int y = 40; y < img.getHeight() - 60; y++) {
            for (int x = 0; x < 160; x++) {
                int rgb = img.getRGB(x, y);
                if (((rgb >> 16) & 255) + ((rgb >> 8) & 255) + (rgb & 255) < 200) {
                    ink++;
                }
            }
        }
        return ink;
    }

    @Test
    void aWarmupCosineLearningRateGetsShortYLabels(@TempDir Path dir) throws IOException {
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < 500; i++) {
            double lr = i < 50 ? 1e-3 * i / 50 : 1e-6 + 0.5 * (1e-3 - 1e-6) * (1 + Math.cos(Math.PI * (i - 50) / 450));
            sb.append(String.format(java.util.Locale.ROOT, "{\"iteration\":%d,\"epoch\":%d,\"loss\":%.4f,"
                    + "\"lr\":%s}%n", i, i / 125, 7 - i / 100.0, Double.toString(lr)));
        }
        Path log = dir.resolve("metrics.jsonl");
        Files.writeString(log, sb);
        TrainingCurves.write(log, dir.resolve("curves"));
        int lr = labelInk(ImageIO.read(dir.resolve("curves/lr.png").toFile()));
        int loss = labelInk(ImageIO.read(dir.resolve("curves/losses.png").toFile()));
        // short labels: about twice the loss chart's ink (a longer title); the 15-digit ones put 25 times as much
        assertTrue(lr < 4 * loss, "lr labels " + lr + " dark pixels against " + loss + " for the losses");
        assertEquals(1e-3, TrainingCurves.unit(1e-3), 1e-15);
        assertEquals(1e-4, TrainingCurves.unit(9.9e-4), 1e-16);
        assertEquals(1, TrainingCurves.unit(0.5));
        assertEquals(1, TrainingCurves.unit(0));
        assertEquals("1e-4", TrainingCurves.formatUnit(1e-4));
    }

    @Test
    void curvesFromAMetricsLog(@TempDir Path dir) throws IOException {
        Path log = dir.resolve("metrics.jsonl");
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < 30; i++) {
            sb.append(String.format("{\"iteration\":%d,\"epoch\":%d,\"loss\":%.3f,\"loss_group\":%.3f,\"lr\":%.5f}%n",
                    i, i / 10, 5 - i * 0.1, 4 - i * 0.05, i * 1e-4));
            if (i % 10 == 9) {
                sb.append(String.format("{\"iteration\":%d,\"epoch\":%d,\"knn_top1\":%.2f}%n", i, i / 10, 0.5 + i / 100.0));
            }
        }
        Files.writeString(log, sb);
        List<Path> pngs = TrainingCurves.write(log, dir.resolve("curves"));
        assertEquals(3, pngs.size());
        for (Path p : pngs) {
            BufferedImage img = ImageIO.read(p.toFile());
            assertEquals(800, img.getWidth());
            assertEquals(500, img.getHeight());
            assertTrue(distinctColours(img) > 5, p + " is not blank");
        }
        assertEquals(3, TrainingCurves.read(log).get("knn_top1").size());
        var missing = assertThrows(IOException.class, () -> TrainingCurves.read(dir.resolve("nope.jsonl")));
        assertTrue(missing.getMessage().contains("no metrics log"), missing.getMessage());
        Files.writeString(dir.resolve("bad.jsonl"), "{\"iteration\": 1}\nnot json\n");
        var bad = assertThrows(IOException.class, () -> TrainingCurves.read(dir.resolve("bad.jsonl")));
        assertTrue(bad.getMessage().contains("line 2"), bad.getMessage());
    }

    @Test
    void healthFieldsGetAHealthPictureWithOnePanelPerGroupOfReadOuts(@TempDir Path dir) throws IOException {
        Path log = dir.resolve("metrics.jsonl");
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < 30; i++) {
            sb.append(String.format(java.util.Locale.ROOT, "{\"iteration\":%d,\"loss\":%.3f", i, 5 - i * 0.1));
            if (i % 10 == 9) {   // the instance loss alone: std, rank and similarities, no prototype panel
                sb.append(String.format(java.util.Locale.ROOT, ",\"health_teacher_std\":%.3f,\"health_student_std\""
                        + ":%.3f,\"health_teacher_rank\":%.1f,\"health_positive\":%.2f,\"health_hardest_negative\""
                        + ":%.2f", 0.2 - i / 300.0, 0.19, 10 - i / 10.0, 0.5, 0.4));
            }
            sb.append("}\n");
        }
        Files.writeString(log, sb);
        List<Path> pngs = TrainingCurves.write(log, dir.resolve("curves"));
        assertEquals(List.of("losses.png", "health.png"), pngs.stream().map(p -> p.getFileName().toString()).toList());
        BufferedImage img = ImageIO.read(dir.resolve("curves/health.png").toFile());
        assertEquals(1280, img.getWidth());     // three panels: two columns, two rows
        assertEquals(800, img.getHeight());
        assertTrue(distinctColours(img) > 5);
        assertEquals(3, TrainingCurves.read(log).get("health_teacher_std").size());
    }

    @Test
    void compareDrawsOneSeriesOfSeveralRunsAgainstTrainingMinutes(@TempDir Path dir) throws IOException {
        Path a = dir.resolve("a.jsonl");
        Path b = dir.resolve("b.jsonl");
        Files.writeString(a, "{\"iteration\":-1,\"train_s\":0,\"knn_top1\":0.6}\n{\"iteration\":9,\"train_s\":120,"
                + "\"loss\":3}\n{\"iteration\":9,\"train_s\":130,\"knn_top1\":0.7}\n");
        Files.writeString(b, "{\"iteration\":4,\"knn_top1\":0.5}\n");
        Map<String, Path> runs = new LinkedHashMap<>();
        runs.put("a", a);
        runs.put("b", b);
        Path png = TrainingCurves.compare(runs, "knn_top1", TrainingCurves.Axis.EPOCHS, dir.resolve("out/knn.png"));
        BufferedImage img = ImageIO.read(png.toFile());
        assertEquals(900, img.getWidth());
        assertTrue(distinctColours(img) > 5);
        var e = assertThrows(IOException.class, () -> TrainingCurves.compare(Map.of("a", a), "loss_group",
                TrainingCurves.Axis.MINUTES, dir.resolve("x.png")));
        assertTrue(e.getMessage().contains("no 'loss_group' values"), e.getMessage());
        e = assertThrows(IOException.class, () -> TrainingCurves.compare(runs, "knn_top1",
                TrainingCurves.Axis.MINUTES, dir.resolve("y.png")));
        assertTrue(e.getMessage().contains("b.jsonl line 1 has no train_s"), e.getMessage());
        assertEquals(2.0, TrainingCurves.Axis.MINUTES.of(new com.fasterxml.jackson.databind.ObjectMapper()
                .readTree("{\"train_s\":120}")), 0);
    }
}
