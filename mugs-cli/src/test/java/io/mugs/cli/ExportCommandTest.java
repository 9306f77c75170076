package io.mugs.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.mugs.data.IdxImageSource;
import io.mugs.io.InputNormalisation;
import io.mugs.vit.VisionTransformer;
import io.mugs.vit.VitConfig;
import io.mugs.vit.weights.BackboneFiles;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import onnx.Onnx;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.buffer.DataType;

/** mugs export: the CSV layout its help describes, and the ONNX model. */
class ExportCommandTest {

    private static final VitConfig TINY = VitConfig.builder().imageSize(28).inChannels(1).patchSize(7).embedDim(16)
            .depth(1).numHeads(2).build();

    @Test
    void csvHasTheLabelFirstAndOnnxHoldsTheBackboneWithItsNormalisation(@TempDir Path dir) throws Exception {
        Path model = dir.resolve("teacher.safetensors");
        InputNormalisation norm = new InputNormalisation(1, 28, new double[] {0.2860}, new double[] {0.3530});
        BackboneFiles.save(model, new VisionTransformer(SameDiff.create(), "", TINY, DataType.FLOAT, 3), norm);

        CliTest.Run help = CliTest.run("export", "--help");
        assertTrue(help.out().contains("label in the first column"), help.out());

        Path csv = dir.resolve("f.csv");
        CliTest.Run r = CliTest.run("export", "--model", model.toString(), "--data", "fmnist-bundled:test", "--out",
                csv.toString());
        assertEquals(0, r.code(), r.err());
        List<String> lines = Files.readAllLines(csv);
        assertTrue(lines.get(0).startsWith("label,f0,f1,"), lines.get(0));
        int firstLabel = IdxImageSource.bundledFashionMnist(false).label(0);
        assertEquals(String.valueOf(firstLabel), lines.get(1).split(",")[0]);
        assertEquals(1 + 16, lines.get(1).split(",").length);

        Path onnx = dir.resolve("out/teacher.onnx");
        r = CliTest.run("export", "--model", model.toString(), "--format", "onnx", "--out", onnx.toString());
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().startsWith("wrote the ONNX model (opset 17, input images [batch, 1, 28, 28]"), r.out());
        Onnx.ModelProto proto = Onnx.ModelProto.parseFrom(Files.readAllBytes(onnx));
        assertEquals("batch", proto.getGraph().getInput(0).getType().getTensorType().getShape().getDim(0)
                .getDimParam());
        assertEquals(norm, InputNormalisation.fromJson(proto.getMetadataPropsList().stream()
                .filter(p -> p.getKey().equals(InputNormalisation.METADATA_KEY)).findFirst().orElseThrow()
                .getValue()));

        r = CliTest.run("export", "--model", model.toString(), "--format", "onnx", "--data", "fmnist-bundled:test",
                "--out", onnx.toString());
        assertEquals(new CliTest.Run(2, "", "mugs: --format onnx writes the backbone, not features: leave out --data "
                + "(see 'mugs export --help')\n"), r);
        r = CliTest.run("export", "--model", model.toString(), "--out", dir.resolve("f.npy").toString());
        assertEquals(2, r.code());
        assertTrue(r.err().startsWith("mugs: --format npy writes features of images: give --data"), r.err());
    }
}
