package io.mugs.eval;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.mugs.vit.VisionTransformer;
import io.mugs.vit.VitConfig;
import io.mugs.vit.io.BackboneFiles;
import java.awt.image.BufferedImage;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.buffer.DataType;

class CliTest {

    private static String[] captured(String... args) {
        PrintStream out = System.out;
        PrintStream err = System.err;
        ByteArrayOutputStream o = new ByteArrayOutputStream();
        ByteArrayOutputStream e = new ByteArrayOutputStream();
        System.setOut(new PrintStream(o, true));
        System.setErr(new PrintStream(e, true));
        try {
            int code = MugsCli.run(args);
            return new String[] {Integer.toString(code), o.toString(), e.toString()};
        } finally {
            System.setOut(out);
            System.setErr(err);
        }
    }

    @Test
    void usageAndClearErrors(@TempDir Path dir) {
        String[] r = captured("--help");
        assertEquals("0", r[0]);
        assertTrue(r[1].contains("usage: mugs <command>"));
        assertEquals("2", captured("tsne-ish")[0]);
        r = captured("knn", "--train", "fmnist-bundled:train");
        assertEquals("2", r[0]);
        assertTrue(r[2].contains("missing --model"), r[2]);
        r = captured("knn", "--model", dir.resolve("none.safetensors").toString(), "--train", "fmnist-bundled:train",
                "--test", "fmnist-bundled:test");
        assertEquals("1", r[0]);
        assertTrue(r[2].contains("no such checkpoint"), r[2]);
    }

    @Test
    void knnExportAndAttentionFromABackboneFile(@TempDir Path dir) throws Exception {
        VitConfig cfg = VitConfig.builder().imageSize(28).inChannels(1).patchSize(7).embedDim(16).depth(1)
                .numHeads(2).build();
        Path model = dir.resolve("vit.safetensors");
        BackboneFiles.save(model, new VisionTransformer(SameDiff.create(), "", cfg, DataType.FLOAT, 3));
        String[] r = captured("knn", "--model", model.toString(), "--train", "fmnist-bundled:test", "--test",
                "fmnist-bundled:test", "--k", "1,20");
        assertEquals("0", r[0], r[2]);
        assertTrue(r[1].contains("k=1 T=0.070: top-1 100.00 %"), "each test image finds itself: " + r[1]);
        r = captured("export", "--model", model.toString(), "--data", "fmnist-bundled:test", "--out",
                dir.resolve("f.npy").toString());
        assertEquals("0", r[0], r[2]);
        assertEquals(1000, NpyFiles.read(dir.resolve("f.npy")).size(0));
        assertEquals(1000, NpyFiles.read(dir.resolve("f-labels.npy")).length());
        r = captured("linear", "--model", model.toString(), "--train", "fmnist-bundled:test", "--test",
                "fmnist-bundled:test", "--epochs", "2", "--lrs", "0.01,0.1", "--val-fraction", "0.2");
        assertEquals("0", r[0], r[2]);
        assertTrue(r[1].contains("validation top-1") && r[1].contains("best lr"), r[1]);
        r = captured("attention", "--model", model.toString(), "--data", "fmnist-bundled:test", "--out",
                dir.resolve("a.png").toString(), "--images", "3");
        assertEquals("0", r[0], r[2]);
        BufferedImage png = ImageIO.read(dir.resolve("a.png").toFile());
        assertEquals(3 * 112, png.getHeight());
        assertEquals((2 + 2) * 112, png.getWidth());
        assertTrue(Files.size(dir.resolve("a.png")) > 1000);
    }
}
