package io.mugs.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.mugs.eval.NpyFiles;
import io.mugs.vit.VisionTransformer;
import io.mugs.vit.VitConfig;
import io.mugs.vit.weights.BackboneFiles;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

/** knn, linear, export and attention read an official {@code .pth} checkpoint directly (its teacher). */
class OfficialCheckpointCommandsTest {

    /** Width 192 (ViT-Tiny's, whose head count the reader infers: 3), one block, 28 px grey images. */
    private static final VitConfig TINY = VitConfig.builder().imageSize(28).inChannels(1).patchSize(7)
            .embedDim(192).depth(1).numHeads(3).build();

    @Test
    void everyEvaluationCommandAcceptsAPthAndSeesTheSameBackbone(@TempDir Path dir) throws Exception {
        VisionTransformer vit = new VisionTransformer(SameDiff.create(), "", TINY, DataType.FLOAT, 5);
        Path pth = PthWriter.write(dir.resolve("checkpoint.pth"), vit.weights());
        Path st = dir.resolve("same.safetensors");
        BackboneFiles.save(st, vit);
        String[] norm = {"--mean", "0.2860", "--std", "0.3530"};

        CliTest.Run r = CliTest.run("export", "--model", pth.toString(), "--data", "fmnist-bundled:test", "--out",
                dir.resolve("pth.npy").toString(), norm[0], norm[1], norm[2], norm[3]);
        assertEquals(0, r.code(), r.err());
        r = CliTest.run("export", "--model", st.toString(), "--data", "fmnist-bundled:test", "--out",
                dir.resolve("st.npy").toString(), norm[0], norm[1], norm[2], norm[3]);
        assertEquals(0, r.code(), r.err());
        INDArray a = NpyFiles.read(dir.resolve("pth.npy"));
        INDArray b = NpyFiles.read(dir.resolve("st.npy"));
        assertEquals(1000, a.size(0));
        assertEquals(192, a.size(1));
        assertEquals(b, a, "the same features through the .pth as through the safetensors file");

        r = CliTest.run("knn", "--model", pth.toString(), "--train", "fmnist-bundled:test", "--test",
                "fmnist-bundled:test", "--k", "1", norm[0], norm[1], norm[2], norm[3]);
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().startsWith("k=1 T=0.070: top-1 100.00 %"), "each test image finds itself: " + r.out());
        r = CliTest.run("linear", "--model", pth.toString(), "--train", "fmnist-bundled:test", "--test",
                "fmnist-bundled:test", "--epochs", "1", "--lrs", "0.1", "--val-fraction", "0.2", norm[0], norm[1],
                norm[2], norm[3]);
        assertEquals(0, r.code(), r.err());
        r = CliTest.run("attention", "--model", pth.toString(), "--data", "fmnist-bundled:test", "--out",
                dir.resolve("a.png").toString(), "--images", "2", norm[0], norm[1], norm[2], norm[3]);
        assertEquals(0, r.code(), r.err());
        assertTrue(Files.size(dir.resolve("a.png")) > 0);

        r = CliTest.run("knn", "--model", pth.toString(), "--train", "fmnist-bundled:test", "--test",
                "fmnist-bundled:test");
        assertEquals(new CliTest.Run(2, "", "mugs: " + pth + " does not say how its input images were normalised: "
                + "give --mean and --std (1 value(s) each) (see 'mugs knn --help')\n"), r);
    }
}
