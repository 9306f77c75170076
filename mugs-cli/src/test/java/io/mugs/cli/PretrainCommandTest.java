package io.mugs.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.mugs.eval.FrozenBackbone;
import io.mugs.io.InputNormalisation;
import java.awt.image.BufferedImage;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code mugs pretrain} on generated JPEG folders, then {@code mugs knn} on what it wrote. */
class PretrainCommandTest {

    /** A ViT of width 16 and depth 1 with narrow heads: 3 steps of 4 images take seconds. */
    private static final List<String> TINY = List.of("--preset", "fashion-mnist-tiny", "--epochs", "1", "--batch",
            "4", "--set", "vit.depth=1", "--set", "vit.embedDim=16", "--set", "vit.numHeads=2", "--set",
            "instanceHidden=32", "--set", "instanceOut=16", "--set", "predictorHidden=32", "--set", "groupHidden=32",
            "--set", "groupBottleneck=16", "--set", "prototypes=32", "--set", "queueSize=64", "--set",
            "memorySize=64", "--set", "workers=1");

    /** {@code perClass} grey 28 px JPEGs per class: class a bright on the left, class b on the right, noisy. */
    private static List<Path> writeImages(Path root, boolean classFolders, int perClass) throws Exception {
        Random rng = new Random(5);
        List<Path> files = new ArrayList<>();
        for (String cls : List.of("a", "b")) {
            Path dir = classFolders ? root.resolve(cls) : root;
            Files.createDirectories(dir);
            for (int i = 0; i < perClass; i++) {
                BufferedImage img = new BufferedImage(28, 28, BufferedImage.TYPE_BYTE_GRAY);
                for (int y = 0; y < 28; y++) {
                    for (int x = 0; x < 28; x++) {
                        boolean bright = cls.equals("a") ? x < 14 : x >= 14;
                        img.getRaster().setSample(x, y, 0, (bright ? 200 : 40) + rng.nextInt(40));
                    }
                }
                Path f = dir.resolve(cls + i + ".jpg");
                ImageIO.write(img, "jpg", f.toFile());
                files.add(f);
            }
        }
        return files;
    }

    /** Mean and std of the decoded pixels, in [0, 1]: what the folder's normalisation must be. */
    private static double[] meanAndStd(List<Path> files) throws Exception {
        double sum = 0;
        double sumSq = 0;
        long n = 0;
        for (Path f : files) {
            var raster = ImageIO.read(f.toFile()).getRaster();
            for (int y = 0; y < raster.getHeight(); y++) {
                for (int x = 0; x < raster.getWidth(); x++) {
                    double v = raster.getSample(x, y, 0) / 255.0;
                    sum += v;
                    sumSq += v * v;
                    n++;
                }
            }
        }
        double mean = sum / n;
        return new double[] {mean, Math.sqrt(sumSq / n - mean * mean)};
    }

    private static String[] args(List<String> head, List<String> tail) {
        List<String> all = new ArrayList<>(head);
        all.addAll(tail);
        return all.toArray(String[]::new);
    }

    @Test
    void pretrainOnAClassFolderWithSpacesThenKnn(@TempDir Path tmp) throws Exception {
        Path images = tmp.resolve("my images");
        List<Path> files = writeImages(images, true, 6);
        Path run = tmp.resolve("run dir");
        CliTest.Run r = CliTest.run(args(List.of("pretrain", "--data", images.toString(), "--output",
                run.toString()), TINY));
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().startsWith("Pretraining fashion-mnist-tiny on 12 images"), r.out());
        assertTrue(r.out().contains("\nFound 12 images in 2 classes (a 6, b 6), sides 28 to 28 px (12 images "
                + "measured), grey (1 channel), no file skipped\nk-NN monitor off: no accuracy is measured while "
                + "training: put labelled images in a val/ folder beside train/"), r.out());
        assertTrue(Files.isRegularFile(run.resolve("checkpoint-000000003.safetensors")), "3 steps of 4 images");
        Path teacher = run.resolve("teacher.safetensors");
        assertTrue(r.out().contains("teacher backbone: " + teacher), r.out());

        // The folder's own statistics were measured and travel with the backbone.
        double[] expected = meanAndStd(files);
        InputNormalisation input = FrozenBackbone.normalisation(teacher).orElseThrow();
        assertEquals(1, input.channels());
        assertEquals(28, input.imageSize());
        assertArrayEquals(new double[] {expected[0]}, input.mean(), 1e-6);
        assertArrayEquals(new double[] {expected[1]}, input.std(), 1e-6);

        // Each test image is in the memory: with k = 1 it finds itself.
        CliTest.Run knn = CliTest.run("knn", "--model", teacher.toString(), "--train", images.toString(), "--test",
                images.toString(), "--k", "1,5");
        assertEquals(0, knn.code(), knn.err());
        assertTrue(knn.out().startsWith("k=1 T=0.070: top-1 100.00 %, top-5 100.00 %\n"), knn.out());

        // The same command again resumes the finished run: no new checkpoint, the same teacher.
        CliTest.Run again = CliTest.run(args(List.of("pretrain", "--data", images.toString(), "--output",
                run.toString()), TINY));
        assertEquals(0, again.code(), again.err());
        try (var listing = Files.list(run)) {
            assertEquals(1, listing.filter(p -> p.getFileName().toString().startsWith("checkpoint-")).count());
        }

        // White images added before a rerun would move the measured mean; the rerun keeps the one measured at the
        // first start (stored in config.json), so the recipe still matches and the run resumes.
        String config = Files.readString(run.resolve("config.json"));
        for (int i = 0; i < 4; i++) {
            BufferedImage white = new BufferedImage(28, 28, BufferedImage.TYPE_BYTE_GRAY);
            white.getRaster().setSamples(0, 0, 28, 28, 0, new int[28 * 28]);
            java.util.Arrays.fill(((java.awt.image.DataBufferByte) white.getRaster().getDataBuffer()).getData(),
                    (byte) 255);
            ImageIO.write(white, "png", images.resolve("a").resolve("white" + i + ".png").toFile());
        }
        double[] moved = meanAndStd(List.of(images.resolve("a").resolve("white0.png")));
        assertTrue(moved[0] > expected[0] + 0.1, "the new images are brighter: " + moved[0]);
        CliTest.Run added = CliTest.run(args(List.of("pretrain", "--data", images.toString(), "--output",
                run.toString()), TINY));
        assertEquals(0, added.code(), added.err());
        assertEquals(config, Files.readString(run.resolve("config.json")), "the stored normalisation is reused");
    }

    @Test
    void pretrainOnAFlatFolderWithTheMonitorOnALabelledSet(@TempDir Path tmp) throws Exception {
        Path flat = tmp.resolve("flat");
        writeImages(flat, false, 6);
        Path labelled = tmp.resolve("labelled");
        writeImages(labelled, true, 12);   // the monitor's k is 20
        Path run = tmp.resolve("run");
        CliTest.Run r = CliTest.run(args(List.of("pretrain", "--data", flat.toString(), "--output", run.toString(),
                "--eval-train", labelled.toString(), "--eval-test", labelled.toString(), "--mean", "0.5", "--std",
                "0.25"), TINY));
        assertEquals(0, r.code(), r.err());
        String last = r.out().lines().reduce((a, b) -> b).orElseThrow();
        assertTrue(last.matches("k-NN top-1 \\(k 20, T 0\\.07\\) on 24 test images: untrained teacher \\d+\\.\\d\\d %, "
                + "Mugs teacher \\d+\\.\\d\\d % \\([+-]\\d+\\.\\d\\d points from pretraining\\), "
                + "raw pixels 100\\.00 % \\(\\d+\\.\\d\\d points below raw pixels\\)"
                + "|.*\\(0\\.00 points above raw pixels\\)"), last);
        InputNormalisation input = FrozenBackbone.normalisation(run.resolve("teacher.safetensors")).orElseThrow();
        assertArrayEquals(new double[] {0.5}, input.mean(), 0);
        assertArrayEquals(new double[] {0.25}, input.std(), 0);
        String metrics = Files.readString(run.resolve("metrics.jsonl"));
        assertEquals(2, metrics.lines().filter(l -> l.contains("\"knn_top1\"")).count(), "initialisation + epoch 0");
    }

    @Test
    void aTrainAndValLayoutTurnsTheMonitorOnAndTheSummarySaysWhatWasFound(@TempDir Path tmp) throws Exception {
        writeImages(tmp.resolve("data/train"), true, 12);
        writeImages(tmp.resolve("data/val"), true, 3);
        Files.writeString(tmp.resolve("data/train/a/broken.jpg"), "not a JPEG");
        Path run = tmp.resolve("run");
        CliTest.Run r = CliTest.run(args(List.of("pretrain", "--data", tmp.resolve("data/train").toString(),
                "--output", run.toString()), TINY));
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().contains("\nFound 24 images in 2 classes (a 12, b 12), sides 28 to 28 px (24 images "
                + "measured), grey (1 channel), 1 file(s) skipped:\n  skipped "), r.out());
        assertTrue(r.out().contains("broken.jpg"), r.out());
        assertTrue(r.out().contains("\nk-NN monitor on (train/ + val/ layout): memory "
                + tmp.resolve("data/train") + " (24 images), queries "), r.out());
        String last = r.out().lines().reduce((a, b) -> b).orElseThrow();
        assertTrue(last.startsWith("k-NN top-1 (k 20, T 0.07) on 6 test images: untrained teacher "), last);
        String metrics = Files.readString(run.resolve("metrics.jsonl"));
        assertEquals(2, metrics.lines().filter(l -> l.contains("\"knn_top1\"")).count(), "initialisation + epoch 1");
    }

    @Test
    void aFallingTeacherGetsOneHintLine() {
        String hint = PretrainCommand.fallingHint(0.63, 0.601);
        assertTrue(hint.startsWith("hint: the teacher's k-NN fell below the untrained teacher's (60.10 % < 63.00 %): "),
                hint);
        assertEquals(1, hint.lines().count());
        assertTrue(hint.contains("--epochs") && hint.contains("crops.globalScale"), hint);
    }
}
