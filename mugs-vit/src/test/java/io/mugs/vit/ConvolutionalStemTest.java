package io.mugs.vit;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.mugs.engine.GraphExecutor;
import io.mugs.vit.weights.BackboneFiles;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

/** The optional convolutional stem ({@link VitConfig#stemChannels()}): values, gradients, sizes and JSON. */
class ConvolutionalStemTest {

    private static final VitConfig STEM = VitConfig.builder().imageSize(16).inChannels(2).patchSize(4).embedDim(16)
            .depth(1).numHeads(2).stemChannels(5).build();

    @Test
    void forwardMatchesThePlainJavaConvolutionAndViT() {
        for (DataType type : new DataType[] {DataType.DOUBLE, DataType.FLOAT}) {
            double tol = type == DataType.DOUBLE ? 1e-10 : 2e-5;
            SameDiff sd = SameDiff.create();
            VisionTransformer vit = new VisionTransformer(sd, "s.", STEM, type, 3);
            ReferenceVit ref = new ReferenceVit(STEM, vit.weights());
            for (int size : new int[] {16, 8}) {
                SDVariable x = sd.placeHolder("x" + size, type, -1, 2, size, size);
                VitOutputs out = vit.apply(x, size, size, VisionTransformer.Mode.INFERENCE, "t" + size);
                INDArray in = Initializers.normal(new SplittableRandom(size), type, 2, 2, size, size);
                INDArray tokens = sd.output(Map.of(x.name(), in), out.patchTokens().name())
                        .get(out.patchTokens().name());
                INDArray cls = sd.output(Map.of(x.name(), in), out.cls().name()).get(out.cls().name());
                for (int b = 0; b < 2; b++) {
                    double[][][] image = new double[2][size][size];
                    for (int c = 0; c < 2; c++) {
                        for (int y = 0; y < size; y++) {
                            for (int z = 0; z < size; z++) {
                                image[c][y][z] = in.getDouble(b, c, y, z);
                            }
                        }
                    }
                    ReferenceVit.Result e = ref.forward(image);
                    int t = (size / 4) * (size / 4) + 1;
                    for (int k = 0; k < 16; k++) {
                        assertEquals(e.normed()[0][k], cls.getDouble(b, k), tol, type + " cls");
                        for (int i = 1; i < t; i++) {
                            assertEquals(e.normed()[i][k], tokens.getDouble(b, i - 1, k), tol, type + " token " + i);
                        }
                    }
                }
            }
        }
    }

    @Test
    void stemGradientsThroughTheEngineMatchFiniteDifferences() {
        SameDiff sd = SameDiff.create();
        VisionTransformer vit = new VisionTransformer(sd, "", STEM, DataType.DOUBLE, 8);
        SDVariable x = sd.placeHolder("x", DataType.DOUBLE, -1, 2, 8, 8);
        VitOutputs out = vit.apply(x, 8, 8, VisionTransformer.Mode.INFERENCE, "g");
        SDVariable w = sd.constant("w", Initializers.normal(new SplittableRandom(4), DataType.DOUBLE, 1, 16));
        SDVariable loss = sd.identity("loss", out.cls().mul(w).sum().add(out.patchMean().mul(out.patchMean()).sum()));
        sd.setLossVariables(loss);
        Map<String, INDArray> feed = new HashMap<>();
        feed.put("x", Initializers.normal(new SplittableRandom(6), DataType.DOUBLE, 3, 2, 8, 8));
        List<String> params = List.of("stem.weight", "stem.bias", "patch_embed.proj.weight");
        GraphExecutor exec = GraphExecutor.gradients(sd, List.of("loss"), params);
        GraphExecutor.Result r = exec.run(feed);
        for (String p : params) {
            INDArray weight = sd.getArrForVarName(p);
            INDArray grad = r.gradients().get(p);
            assertArrayEquals(weight.shape(), grad.shape(), p);
            for (int k = 0; k < 4; k++) {
                long idx = new SplittableRandom(p.hashCode() + k).nextLong(weight.length());
                double orig = weight.getDouble(idx);
                double h = 1e-6;
                weight.putScalar(idx, orig + h);
                double up = sd.output(feed, "loss").get("loss").getDouble(0);
                weight.putScalar(idx, orig - h);
                double down = sd.output(feed, "loss").get("loss").getDouble(0);
                weight.putScalar(idx, orig);
                double numeric = (up - down) / (2 * h);
                double analytic = grad.getDouble(idx);
                double err = Math.abs(numeric - analytic) / Math.max(1e-3, Math.abs(numeric) + Math.abs(analytic));
                assertTrue(err < 1e-6, p + "[" + idx + "]: analytic " + analytic + " vs numeric " + numeric);
            }
        }
        exec.close();
    }

    @Test
    void parameterCountAndFileShapesIncludeTheStem() {
        VisionTransformer vit = new VisionTransformer(SameDiff.create(), "", STEM, DataType.FLOAT, 1);
        long sum = vit.weights().values().stream().mapToLong(INDArray::length).sum();
        assertEquals(sum, STEM.parameterCount());
        assertEquals(5L * 2 * 9 + 5, sum - STEM.toBuilder().stemChannels(0).inChannels(5).build().parameterCount());
        Map<String, long[]> shapes = BackboneFiles.parameterShapes(STEM);
        assertEquals(vit.weights().keySet(), shapes.keySet());
        vit.weights().forEach((k, v) -> assertArrayEquals(v.shape(), shapes.get(k), k));
        assertArrayEquals(new long[] {16, 5, 4, 4}, shapes.get("patch_embed.proj.weight"));
    }

    @Test
    void jsonWithoutAStemIsUnchangedAndAStemRoundTrips() {
        VitConfig plain = STEM.toBuilder().stemChannels(0).build();
        assertFalse(plain.toJson().contains("stemChannels"), plain.toJson());
        assertEquals(plain, VitConfig.fromJson(plain.toJson()));
        assertTrue(STEM.toJson().contains("\"stemChannels\":5"), STEM.toJson());
        assertEquals(STEM, VitConfig.fromJson(STEM.toJson()));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> STEM.toBuilder().stemChannels(-1).build());
        assertEquals("Invalid VitConfig: stemChannels must be 0 (no convolutional stem) or 1..4096, got -1",
                e.getMessage());
    }
}
