package io.mugs.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.mugs.eval.NpyFiles;
import io.mugs.vit.VisionTransformer;
import io.mugs.vit.VitConfig;
import io.mugs.vit.weights.BackboneFiles;
import io.mugs.io.InputNormalisation;
import java.awt.image.BufferedImage;
import java.nio.file.Path;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.buffer.DataType;

/** knn, linear, export and attention on a tiny random backbone file and the bundled test images. */
class EvaluationCommandsTest {

    private static final VitConfig TINY = VitConfig.builder().imageSize(28).inChannels(1).patchSize(7).embedDim(16)
            .depth(1).numHeads(2).build();

    @Test
    void aBackboneWithoutNormalisationNeedsMeanAndStd(@TempDir Path dir) throws Exception {
        Path model = dir.resolve("vit.safetensors");
        BackboneFiles.save(model, new VisionTransformer(SameDiff.create(), "", TINY, DataType.FLOAT, 3));
        CliTest.Run r = CliTest.run("knn", "--model", model.toString(), "--train", "fmnist-bundled:test", "--test",
                "fmnist-bundled:test");
        assertEquals(new CliTest.Run(2, "", "mugs: " + model + " does not say how its input images were normalised: "
                + "give --mean and --std (1 value(s) each) (see 'mugs knn --help')\n"), r);

        r = CliTest.run("knn", "--model", model.toString(), "--train", "fmnist-bundled:test", "--test",
                "fmnist-bundled:test", "--k", "1,20", "--mean", "0.2860", "--std", "0.3530");
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().startsWith("k=1 T=0.070: top-1 100.00 %"), "each test image finds itself: " + r.out());

        r = CliTest.run("knn", "--model", model.toString(), "--train", "fmnist-bundled:test", "--test",
                "fmnist-bundled:test", "--mean", "0.5,0.5,0.5", "--std", "0.2,0.2,0.2");
        assertEquals(2, r.code());
        assertTrue(r.err().startsWith("mugs: --mean/--std: mean and std need 1 values each"), r.err());
    }

    @Test
    void exportLinearAndAttentionUseTheStoredNormalisation(@TempDir Path dir) throws Exception {
        Path model = dir.resolve("with input.safetensors");
        BackboneFiles.save(model, new VisionTransformer(SameDiff.create(), "", TINY, DataType.FLOAT, 3),
                new InputNormalisation(1, 28, new double[] {0.2860}, new double[] {0.3530}));
        CliTest.Run r = CliTest.run("export", "--model", model.toString(), "--data", "fmnist-bundled:test", "--out",
                dir.resolve("f.npy").toString());
        assertEquals(0, r.code(), r.err());
        assertEquals("wrote 1000 x 16 features to " + dir.resolve("f.npy") + "\n", r.out());
        assertEquals(1000, NpyFiles.read(dir.resolve("f.npy")).size(0));
        assertEquals(1000, NpyFiles.read(dir.resolve("f-labels.npy")).length());

        r = CliTest.run("linear", "--model", model.toString(), "--train", "fmnist-bundled:test", "--test",
                "fmnist-bundled:test", "--epochs", "2", "--lrs", "0.01,0.1", "--val-fraction", "0.2");
        assertEquals(0, r.code(), r.err());
        assertEquals(3, r.out().lines().count(), r.out());
        assertTrue(r.out().contains("lr 0.01000: validation top-1") && r.out().contains("best lr"), r.out());

        r = CliTest.run("attention", "--model", model.toString(), "--data", "fmnist-bundled:test", "--out",
                dir.resolve("maps/a.png").toString(), "--images", "3");
        assertEquals(0, r.code(), r.err());
        BufferedImage png = ImageIO.read(dir.resolve("maps/a.png").toFile());
        assertEquals(3 * 112, png.getHeight());
        assertEquals((2 + 2) * 112, png.getWidth());
    }
}
