package io.mugs.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.mugs.eval.MugsEncoder;
import io.mugs.eval.NpyFiles;
import io.mugs.io.InputNormalisation;
import io.mugs.vit.VisionTransformer;
import io.mugs.vit.VitConfig;
import io.mugs.vit.weights.BackboneFiles;
import java.awt.image.BufferedImage;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

/** mugs embed on a folder of PNGs with a tiny backbone. */
class EmbedCommandTest {

    @Test
    void embedWritesOneRowPerImageAndTheFileListInRowOrder(@TempDir Path dir) throws Exception {
        VitConfig cfg = VitConfig.builder().imageSize(16).inChannels(3).patchSize(4).embedDim(16).depth(1)
                .numHeads(2).build();
        Path model = dir.resolve("teacher.safetensors");
        BackboneFiles.save(model, new VisionTransformer(SameDiff.create(), "", cfg, DataType.FLOAT, 3),
                new InputNormalisation(3, 16, new double[] {0.5, 0.5, 0.5}, new double[] {0.25, 0.25, 0.25}));
        Path images = dir.resolve("images");
        List<Path> files = new ArrayList<>();
        for (int i = 0; i < 5; i++) {
            Path f = images.resolve((i < 3 ? "cats" : "dogs") + "/img" + i + ".png");
            Files.createDirectories(f.getParent());
            BufferedImage b = new BufferedImage(16 + 3 * i, 20, BufferedImage.TYPE_INT_RGB);
            for (int y = 0; y < b.getHeight(); y++) {
                for (int x = 0; x < b.getWidth(); x++) {
                    b.setRGB(x, y, (x * 37 + y * 11 + i * 50) * 0x010203 & 0xffffff);
                }
            }
            ImageIO.write(b, "png", f.toFile());
            files.add(f);
        }
        Files.writeString(images.resolve("dogs/notes.png"), "not an image");
        Path out = dir.resolve("out/e.npy");
        CliTest.Run r = CliTest.run("embed", "--model", model.toString(), "--images", images.toString(), "--out",
                out.toString(), "--batch", "2");
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().contains("skipped ") && r.out().contains("notes.png"), r.out());
        assertTrue(r.out().contains("wrote 5 x 16 embeddings to " + out), r.out());
        INDArray e = NpyFiles.read(out);
        assertArrayEquals(new long[] {5, 16}, e.shape());
        List<String> listed = Files.readAllLines(dir.resolve("out/e-files.txt"));
        assertEquals(5, listed.size());
        try (MugsEncoder enc = MugsEncoder.load(model)) {
            for (int i = 0; i < 5; i++) {
                float[] expected = enc.embedFiles(List.of(images.resolve(listed.get(i))))[0];
                assertArrayEquals(expected, e.getRow(i).toFloatVector(), 1e-5f, listed.get(i));
            }
        }
        assertEquals(files.stream().map(f -> images.relativize(f).toString()).sorted().toList(),
                listed.stream().sorted().toList());

        r = CliTest.run("embed", "--model", model.toString(), "--images", images.toString(), "--out",
                dir.resolve("e.csv").toString());
        assertEquals(new CliTest.Run(2, "", "mugs: --out must end in .npy, got " + dir.resolve("e.csv")
                + " (see 'mugs embed --help')\n"), r);
    }
}
