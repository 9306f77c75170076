package io.mugs.vit.weights;

import io.mugs.io.SafeTensors;
import io.mugs.io.PthReader;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.mugs.vit.VisionTransformer;
import io.mugs.vit.VitConfig;
import io.mugs.vit.VitOutputs;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

/** Parity with PyTorch on the fixture written by scripts/make-torch-fixture.py (torch 1.13, CPU). */
class TorchParityTest {

    private static Path fixture(String name) throws Exception {
        return Path.of(TorchParityTest.class.getResource("/io/mugs/vit/parity/" + name).toURI());
    }

    private static void assertClose(INDArray expected, INDArray actual, double tol, String what) {
        assertTrue(Arrays.equals(expected.shape(), actual.shape()), what + ": shape " + Arrays.toString(actual.shape())
                + " vs " + Arrays.toString(expected.shape()));
        double diff = expected.castTo(DataType.DOUBLE).sub(actual.castTo(DataType.DOUBLE)).amaxNumber().doubleValue();
        assertTrue(diff <= tol, what + ": max |diff| " + diff);
    }

    private static void checkOutputs(VisionTransformer vit) throws Exception {
        Map<String, INDArray> io = SafeTensors.read(fixture("io.safetensors")).tensors();
        SameDiff sd = vit.sameDiff();
        for (int size : new int[] {16, 8}) {
            SDVariable x = sd.placeHolder("x" + size, DataType.FLOAT, -1, 1, size, size);
            VitOutputs out = vit.apply(x, size, size, VisionTransformer.Mode.INFERENCE, "parity" + size);
            Map<String, INDArray> r = sd.output(Map.of(x.name(), io.get("input" + size)), out.cls().name(),
                    out.patchTokens().name(), out.lastAttention().name());
            assertClose(io.get("cls" + size), r.get(out.cls().name()), 1e-4, "CLS at " + size + " px");
            assertClose(io.get("patch" + size), r.get(out.patchTokens().name()), 1e-4, "patch tokens at " + size);
            assertClose(io.get("attn" + size), r.get(out.lastAttention().name()), 1e-4, "attention at " + size);
        }
    }

    @Test
    void pthCheckpointMatchesPyTorchAtTwoResolutions() throws Exception {
        Object ckpt = PthReader.read(fixture("vit.pth"));
        Map<String, INDArray> sd = OfficialWeights.backboneStateDict(ckpt);
        VitConfig cfg = OfficialWeights.inferConfig(sd, 2);
        assertEquals(VitConfig.builder().imageSize(16).inChannels(1).patchSize(4).embedDim(32).depth(2).numHeads(2)
                .build(), cfg);
        VisionTransformer vit = OfficialWeights.load(sd, SameDiff.create(), 2);
        assertEquals(java.util.List.of("extra/transposed", "extra/sliced", "extra/half"),
                OfficialWeights.unusedKeys(sd, vit));
        checkOutputs(vit);

        // Views with strides and offsets, fp16 storage, plain Python values and argparse.Namespace.
        INDArray w = sd.get("blocks.0.mlp.fc1.weight");
        assertClose(w.transpose(), sd.get("extra/transposed"), 0, "transposed view");
        assertClose(w.get(org.nd4j.linalg.indexing.NDArrayIndex.interval(3, 7),
                org.nd4j.linalg.indexing.NDArrayIndex.interval(5, 9)), sd.get("extra/sliced"), 0, "sliced view");
        assertClose(w, sd.get("extra/half"), 1e-3, "fp16 copy");
        Map<?, ?> root = (Map<?, ?>) ckpt;
        assertEquals(3L, root.get("epoch"));
        PthReader.PyObject args = (PthReader.PyObject) root.get("args");
        assertEquals("vit_test", args.state().get("arch"));
        assertEquals(0.5, args.state().get("lr"));
    }

    @Test
    void safetensorsWeightsMatchPyTorch() throws Exception {
        Map<String, INDArray> sd = SafeTensors.read(fixture("vit.safetensors")).tensors();
        checkOutputs(OfficialWeights.load(sd, SameDiff.create(), 2));
    }

    @Test
    void maliciousTruncatedAndMismatchedFilesAreRejected(@TempDir Path dir) throws Exception {
        var evil = assertThrows(IOException.class, () -> PthReader.read(fixture("evil.pth")));
        assertTrue(evil.getMessage().contains("system") && evil.getMessage().contains("never needs"),
                evil.getMessage());
        byte[] bytes = Files.readAllBytes(fixture("vit.pth"));
        Path cut = dir.resolve("cut.pth");
        Files.write(cut, Arrays.copyOf(bytes, bytes.length / 2));
        assertThrows(IOException.class, () -> PthReader.read(cut));
        Files.writeString(dir.resolve("text.pth"), "not a checkpoint");
        assertThrows(IOException.class, () -> PthReader.read(dir.resolve("text.pth")));

        Map<String, INDArray> sd = OfficialWeights.backboneStateDict(PthReader.read(fixture("vit.pth")));
        VisionTransformer wide = new VisionTransformer(SameDiff.create(), "", VitConfig.builder().imageSize(16)
                .inChannels(1).patchSize(4).embedDim(48).depth(2).numHeads(2).build(), DataType.FLOAT, 0);
        var e = assertThrows(IllegalArgumentException.class, () -> wide.loadWeights(sd));
        assertTrue(e.getMessage().contains("cls_token: expected shape [1, 1, 48] but got [1, 1, 32]"), e.getMessage());
    }

    @Test
    void exportedBackboneUsesTheOfficialKeys(@TempDir Path dir) throws Exception {
        Map<String, INDArray> sd = SafeTensors.read(fixture("vit.safetensors")).tensors();
        VisionTransformer vit = OfficialWeights.load(sd, SameDiff.create(), 2);
        Path out = dir.resolve("export.safetensors");
        BackboneFiles.save(out, vit);
        Map<String, INDArray> back = SafeTensors.read(out).tensors();
        assertEquals(new java.util.TreeSet<>(sd.keySet()), new java.util.TreeSet<>(back.keySet()));
        for (String k : sd.keySet()) {
            assertClose(sd.get(k), back.get(k), 0, k);
        }
    }
}
