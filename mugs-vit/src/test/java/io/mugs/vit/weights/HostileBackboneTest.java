package io.mugs.vit.weights;

import io.mugs.io.SafeTensors;

import static io.mugs.io.HostileFiles.refused;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.mugs.vit.VisionTransformer;
import io.mugs.vit.VitConfig;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/** Backbone files: the model is built only after the stored config's tensors are known to be there and finite. */
class HostileBackboneTest {

    private static final VitConfig TINY = VitConfig.builder().imageSize(8).inChannels(1).patchSize(4).embedDim(16)
            .depth(2).numHeads(2).build();

    @TempDir
    Path dir;

    @Test
    void parameterShapesAreTheBuiltModelsShapesAndSumToTheParameterCount() {
        for (VitConfig c : List.of(TINY, TINY.toBuilder().qkvBias(false).inChannels(3).mlpRatio(2).build())) {
            Map<String, INDArray> built = new VisionTransformer(SameDiff.create(), "", c, DataType.FLOAT, 0).weights();
            Map<String, long[]> shapes = BackboneFiles.parameterShapes(c);
            assertEquals(new ArrayList<>(built.keySet()), new ArrayList<>(shapes.keySet()));
            built.forEach((k, v) -> assertArrayEquals(v.shape(), shapes.get(k), k));
            long sum = shapes.values().stream().mapToLong(s -> java.util.Arrays.stream(s).reduce(1, (a, b) -> a * b))
                    .sum();
            assertEquals(c.parameterCount(), sum);
        }
    }

    @Test
    void metadataDeclaringAHugeVitWithoutTensorsBuildsNothing() throws Exception {
        VitConfig huge = VitConfig.builder().embedDim(4096).depth(12).numHeads(16).build();
        Path file = dir.resolve("huge.safetensors");
        SafeTensors.write(file, Map.of(), Map.of(BackboneFiles.CONFIG_KEY, huge.toJson()));
        SameDiff sd = SameDiff.create();
        String m = refused("backbone: metadata declares a 4096-wide ViT, no tensors", file,
                "implies " + huge.parameterCount() + " parameters but the file holds 0 in 0 tensors",
                () -> BackboneFiles.load(file, sd, "", DataType.FLOAT));
        assertTrue(m.contains("150 tensors are needed"), m);
        assertTrue(sd.variables().isEmpty(), "no variable was created");

        VitConfig deep = TINY.toBuilder().depth(1_000_000_000).build();
        Path absurd = dir.resolve("deep.safetensors");
        SafeTensors.write(absurd, Map.of(), Map.of(BackboneFiles.CONFIG_KEY, deep.toJson()));
        refused("backbone: metadata declares depth 10^9", absurd, "12000000006 tensors are needed",
                () -> BackboneFiles.load(absurd, SameDiff.create(), "", DataType.FLOAT));
    }

    @Test
    void aTensorOfTheWrongShapeIsRefusedBeforeBuilding() throws Exception {
        Path file = dir.resolve("ok.safetensors");
        BackboneFiles.save(file, new VisionTransformer(SameDiff.create(), "", TINY, DataType.FLOAT, 1));
        SafeTensors.Content c = SafeTensors.read(file);
        Map<String, INDArray> tensors = new LinkedHashMap<>(c.tensors());
        tensors.put("blocks.1.attn.proj.weight", Nd4j.zeros(DataType.FLOAT, 16, 8));
        Path bad = dir.resolve("shape.safetensors");
        SafeTensors.write(bad, tensors, c.metadata());
        SameDiff sd = SameDiff.create();
        refused("backbone: one tensor of the wrong shape", bad, "blocks.1.attn.proj.weight is [16, 8], not [16, 16]",
                () -> BackboneFiles.load(bad, sd, "", DataType.FLOAT));
        assertTrue(sd.variables().isEmpty(), "no variable was created");
    }

    @Test
    void nanAndInfiniteWeightsAreRefused() throws Exception {
        VisionTransformer vit = new VisionTransformer(SameDiff.create(), "", TINY, DataType.FLOAT, 2);
        vit.weights().get("blocks.0.mlp.fc1.weight").putScalar(new long[] {3, 5}, Float.NaN);
        Path file = dir.resolve("nan.safetensors");
        BackboneFiles.save(file, vit);
        refused("backbone: one NaN weight", file, "tensor 'blocks.0.mlp.fc1.weight' holds NaN or infinite values",
                () -> BackboneFiles.load(file, SameDiff.create(), "", DataType.FLOAT));

        vit.weights().get("blocks.0.mlp.fc1.weight").putScalar(new long[] {3, 5}, 0f);
        vit.weights().get("norm.bias").putScalar(0, Float.POSITIVE_INFINITY);
        BackboneFiles.save(file, vit);
        refused("backbone: one infinite weight", file, "tensor 'norm.bias' holds NaN or infinite values",
                () -> BackboneFiles.load(file, SameDiff.create(), "", DataType.FLOAT));

        vit.weights().get("norm.bias").putScalar(0, 0f);
        BackboneFiles.save(file, vit);
        VisionTransformer back = BackboneFiles.load(file, SameDiff.create(), "", DataType.FLOAT);
        assertEquals(vit.weights().get("blocks.0.mlp.fc1.weight"), back.weights().get("blocks.0.mlp.fc1.weight"));
    }

    @Test
    void officialStateDictsAreCheckedBeforeBuilding() {
        SameDiff sd = SameDiff.create();
        Map<String, INDArray> onlyCls = Map.of("cls_token", Nd4j.zeros(DataType.FLOAT, 1, 1, 4096));
        var missing = assertThrows(IllegalArgumentException.class, () -> OfficialWeights.load(onlyCls, sd, 0));
        assertTrue(missing.getMessage().contains("patch_embed.proj.weight is missing"), missing.getMessage());

        Map<String, INDArray> weights = new LinkedHashMap<>(
                new VisionTransformer(SameDiff.create(), "", TINY, DataType.FLOAT, 3).weights());
        weights.remove("blocks.1.mlp.fc2.bias");
        var gone = assertThrows(IllegalArgumentException.class, () -> OfficialWeights.load(weights, sd, 2));
        assertTrue(gone.getMessage().contains("missing blocks.1.mlp.fc2.bias"), gone.getMessage());

        weights.put("blocks.1.mlp.fc2.bias", Nd4j.zeros(DataType.FLOAT, 16));
        weights.get("pos_embed").putScalar(new long[] {0, 1, 2}, Float.NaN);
        var nan = assertThrows(IllegalArgumentException.class, () -> OfficialWeights.load(weights, sd, 2));
        assertTrue(nan.getMessage().contains("'pos_embed' holds NaN"), nan.getMessage());
        assertTrue(sd.variables().isEmpty(), "no variable was created");
    }
}
