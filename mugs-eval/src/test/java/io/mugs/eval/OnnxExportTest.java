package io.mugs.eval;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtSession;
import io.mugs.io.InputNormalisation;
import io.mugs.vit.VisionTransformer;
import io.mugs.vit.VitConfig;
import io.mugs.vit.VitOutputs;
import java.nio.FloatBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import onnx.Onnx;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/** The ONNX export run by onnxruntime against the engine's outputs on tiny ViTs. */
class OnnxExportTest {

    @TempDir
    Path dir;

    /** A tiny ViT with random weights everywhere (LayerNorm gains and biases too, so they are exercised). */
    private static VisionTransformer tinyVit(VitConfig cfg, long seed) {
        VisionTransformer vit = new VisionTransformer(SameDiff.create(), "", cfg, DataType.FLOAT, seed);
        SplittableRandom r = new SplittableRandom(seed);
        Map<String, INDArray> w = new LinkedHashMap<>();
        vit.weights().forEach((k, v) -> {
            float[] x = new float[(int) v.length()];
            for (int i = 0; i < x.length; i++) {
                x[i] = (float) (k.contains("norm") && k.endsWith("weight") ? 1 + 0.3 * r.nextGaussian()
                        : 0.3 * r.nextGaussian());
            }
            w.put(k, Nd4j.create(x, v.shape(), 'c'));
        });
        vit.loadWeights(w);
        return vit;
    }

    private void checkAgainstEngine(VitConfig cfg, int... batches) throws Exception {
        VisionTransformer vit = tinyVit(cfg, 11);
        SameDiff sd = vit.sameDiff();
        int s = cfg.imageSize();
        SDVariable in = sd.placeHolder("x", DataType.FLOAT, -1, cfg.inChannels(), s, s);
        VitOutputs out = vit.apply(in, s, s, VisionTransformer.Mode.INFERENCE, "onnx");
        Path file = dir.resolve("vit.onnx");
        InputNormalisation norm = new InputNormalisation(cfg.inChannels(), s, cfg.inChannels() == 1
                ? new double[] {0.3} : new double[] {0.4, 0.5, 0.6}, cfg.inChannels() == 1 ? new double[] {0.2}
                : new double[] {0.2, 0.2, 0.2});
        OnnxExport.write(file, vit, norm);

        Onnx.ModelProto proto = Onnx.ModelProto.parseFrom(Files.readAllBytes(file));
        assertEquals(17, proto.getOpsetImport(0).getVersion());
        List<String> ops = proto.getGraph().getNodeList().stream().map(Onnx.NodeProto::getOpType).toList();
        assertEquals(2 * cfg.depth() + 1, ops.stream().filter("LayerNormalization"::equals).count());
        assertEquals(cfg.depth() + (cfg.stemChannels() > 0 ? 1 : 0), ops.stream().filter("Erf"::equals).count());
        assertTrue(proto.getMetadataPropsList().stream().anyMatch(p -> p.getKey().equals("mugs.input")
                && InputNormalisation.fromJson(p.getValue()).equals(norm)));

        OrtEnvironment env = OrtEnvironment.getEnvironment();
        try (OrtSession session = env.createSession(file.toString(), new OrtSession.SessionOptions())) {
            assertEquals(List.of("cls", "patch_tokens"), List.copyOf(session.getOutputNames()));
            SplittableRandom r = new SplittableRandom(5);
            for (int b : batches) {
                float[] pixels = new float[b * cfg.inChannels() * s * s];
                for (int i = 0; i < pixels.length; i++) {
                    pixels[i] = (float) r.nextGaussian();
                }
                INDArray x = Nd4j.create(pixels, new long[] {b, cfg.inChannels(), s, s}, 'c');
                Map<String, INDArray> engine = sd.output(Map.of("x", x), out.cls().name(), out.patchTokens().name());
                long[] shape = {b, cfg.inChannels(), s, s};
                try (OnnxTensor t = OnnxTensor.createTensor(env, FloatBuffer.wrap(pixels), shape);
                     OrtSession.Result res = session.run(Map.of("images", t))) {
                    OnnxTensor cls = (OnnxTensor) res.get("cls").orElseThrow();
                    OnnxTensor patches = (OnnxTensor) res.get("patch_tokens").orElseThrow();
                    assertArrayEquals(new long[] {b, cfg.embedDim()}, cls.getInfo().getShape());
                    assertArrayEquals(new long[] {b, cfg.numPatches(), cfg.embedDim()},
                            patches.getInfo().getShape());
                    assertClose(engine.get(out.cls().name()), cls.getFloatBuffer());
                    assertClose(engine.get(out.patchTokens().name()), patches.getFloatBuffer());
                }
            }
        }
    }

    private static void assertClose(INDArray expected, FloatBuffer actual) {
        float[] e = expected.castTo(DataType.FLOAT).dup('c').data().asFloat();
        assertEquals(e.length, actual.remaining());
        double worst = 0;
        for (int i = 0; i < e.length; i++) {
            worst = Math.max(worst, Math.abs(e[i] - actual.get(i)));
        }
        assertTrue(worst < 1e-4, "largest difference from the engine " + worst);
        assertTrue(Math.abs(e[0]) + Math.abs(e[e.length - 1]) > 1e-3, "non-trivial outputs");
    }

    @Test
    void onnxruntimeGivesTheEnginesClsAndPatchTokensForAnyBatch() throws Exception {
        checkAgainstEngine(VitConfig.builder().imageSize(16).inChannels(3).patchSize(4).embedDim(32).depth(2)
                .numHeads(2).dropPathRate(0).build(), 3, 1, 5);
    }

    @Test
    void theReadmesOnnxruntimeExampleGivesTheEnginesCls() throws Exception {
        VitConfig cfg = VitConfig.builder().imageSize(28).inChannels(1).patchSize(7).embedDim(16).depth(1)
                .numHeads(2).dropPathRate(0).build();
        VisionTransformer vit = tinyVit(cfg, 3);
        Path file = dir.resolve("teacher.onnx");
        OnnxExport.write(file, vit, null);
        float[] pixels = new float[4 * 28 * 28];
        SplittableRandom r = new SplittableRandom(8);
        for (int i = 0; i < pixels.length; i++) {
            pixels[i] = (float) r.nextGaussian();
        }
        INDArray expected = new FeatureExtractor(vit, 28, FeatureExtractor.Kind.CLS, 1)
                .apply(Nd4j.create(pixels, new long[] {4, 1, 28, 28}, 'c'));
        float[][] cls = com.example.onnx.TeacherOnnx.cls(file.toString(), pixels, new long[] {4, 1, 28, 28});
        assertEquals(4, cls.length);
        FloatBuffer flat = FloatBuffer.allocate(4 * 16);
        for (float[] row : cls) {
            flat.put(row);
        }
        assertClose(expected, flat.flip());
    }

    @Test
    void greyInputWithoutQkvBiasAndWithAConvolutionalStemExportsToo() throws Exception {
        checkAgainstEngine(VitConfig.builder().imageSize(12).inChannels(1).patchSize(3).embedDim(16).depth(1)
                .numHeads(4).qkvBias(false).stemChannels(4).dropPathRate(0).build(), 2);
    }
}
