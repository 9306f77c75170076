package io.mugs.core;

import io.mugs.engine.optim.AdamW;
import io.mugs.engine.optim.Schedules;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

class OptimisationTest {

    @Test
    void cosineScheduleMatchesTheFormula() {
        double[] s = Schedules.cosine(1.0, 0.1, 5, 4, 2, 0.0);
        assertEquals(20, s.length);
        for (int i = 0; i < 8; i++) {
            assertEquals(i / 7.0, s[i], 1e-15, "linear warm-up with both ends, it " + i);
        }
        for (int i = 0; i < 12; i++) {
            assertEquals(0.1 + 0.45 * (1 + Math.cos(Math.PI * i / 12)), s[8 + i], 1e-15);
        }
        double[] m = Schedules.cosine(0.996, 1.0, 3, 10, 0, 0);
        assertEquals(0.996, m[0], 1e-15);
        assertTrue(m[29] > 0.9999 && m[29] < 1.0);
        assertThrows(IllegalArgumentException.class, () -> Schedules.cosine(1, 0, 2, 10, 3, 0));
        double[] f = Schedules.cosine(1.0, 0.0, 2, 10, 0.3, 0.0);   // a fractional warm-up: 3 iterations
        assertArrayEquals(new double[] {0, 0.5, 1, 1}, java.util.Arrays.copyOf(f, 4), 1e-15);
        assertEquals(0.5 * (1 + Math.cos(Math.PI / 17)), f[4], 1e-15);
    }

    @Test
    void adamWMatchesPyTorchWithGroupsClippingAndFreezing() {
        Map<String, INDArray> params = new LinkedHashMap<>();
        params.put("blocks.0.mlp.fc1.weight", Nd4j.createFromArray(new double[][] {{0.5, -1.0}, {2.0, 0.25}}));
        params.put("blocks.0.mlp.fc1.bias", Nd4j.createFromArray(0.1, -0.2));
        params.put("patch_embed.proj.weight", Nd4j.createFromArray(new double[][] {{1.0, 1.0}}));
        params.put("last_layer.weight_v", Nd4j.createFromArray(new double[][] {{3.0}}));
        Map<String, double[]> start = new LinkedHashMap<>();
        params.forEach((k, v) -> start.put(k, v.dup().data().asDouble()));
        AdamW opt = new AdamW(params, n -> n.contains("patch_embed"), 0.2);
        double lr = 0.01;
        double wd = 0.04;
        double clip = 1.0;
        double[][] gradsByStep = {{3.0, 4.0, 0.0, 0.0}, {0.1, -0.2, 0.3, 0.05}};
        double[][] m = new double[4][];
        double[][] v = new double[4][];
        String[] names = params.keySet().toArray(new String[0]);
        double[][] expected = new double[4][];
        for (int i = 0; i < 4; i++) {
            expected[i] = start.get(names[i]).clone();
            m[i] = new double[expected[i].length];
            v[i] = new double[expected[i].length];
        }
        for (int step = 1; step <= 2; step++) {
            Map<String, INDArray> grads = new LinkedHashMap<>();
            grads.put(names[0], Nd4j.createFromArray(new double[][] {{gradsByStep[step - 1][0],
                gradsByStep[step - 1][1]}, {gradsByStep[step - 1][2], gradsByStep[step - 1][3]}}));
            grads.put(names[1], Nd4j.createFromArray(0.5, 0.5));
            grads.put(names[2], Nd4j.createFromArray(new double[][] {{0.2, -0.1}}));
            grads.put(names[3], Nd4j.createFromArray(new double[][] {{7.0}}));
            List<String> clipped = opt.step(grads, lr, wd, clip, n -> n.contains("last_layer"));
            if (step == 1) {
                assertEquals(List.of(names[0]), clipped, "only the tensor with norm 5 > 1 is clipped");
            }
            for (int i = 0; i < 3; i++) {
                double[] g = rawGrad(i, gradsByStep[step - 1]);
                double norm = 0;
                for (double x : g) {
                    norm += x * x;
                }
                norm = Math.sqrt(norm);
                double ratio = clip / (norm + 1e-6);
                boolean decay = i != 1;
                double lrP = i == 2 ? lr * 0.2 : lr;
                for (int j = 0; j < g.length; j++) {
                    double gj = ratio < 1 ? g[j] * ratio : g[j];
                    if (decay) {
                        expected[i][j] *= 1 - lrP * wd;
                    }
                    m[i][j] = 0.9 * m[i][j] + 0.1 * gj;
                    v[i][j] = 0.999 * v[i][j] + 0.001 * gj * gj;
                    double denom = Math.sqrt(v[i][j]) / Math.sqrt(1 - Math.pow(0.999, step)) + 1e-8;
                    expected[i][j] -= lrP / (1 - Math.pow(0.9, step)) * m[i][j] / denom;
                }
            }
        }
        for (int i = 0; i < 4; i++) {
            double[] actual = params.get(names[i]).data().asDouble();
            for (int j = 0; j < actual.length; j++) {
                assertEquals(expected[i][j], actual[j], 1e-12, names[i] + "[" + j + "]");
            }
        }
        assertEquals(3.0, params.get(names[3]).getDouble(0, 0), 0.0, "frozen: no step and no decay");
    }

    private static double[] rawGrad(int i, double[] first) {
        return switch (i) {
            case 0 -> first.clone();
            case 1 -> new double[] {0.5, 0.5};
            default -> new double[] {0.2, -0.1};
        };
    }

    @Test
    void emaFollowsItsFormula() {
        Map<String, INDArray> teacher = Map.of("w", Nd4j.createFromArray(1.0, 2.0));
        Map<String, INDArray> student = Map.of("w", Nd4j.createFromArray(3.0, -2.0));
        TeacherEma.update(teacher, student, 0.9);
        assertEquals(0.9 * 1 + 0.1 * 3, teacher.get("w").getDouble(0), 1e-15);
        assertEquals(0.9 * 2 - 0.1 * 2, teacher.get("w").getDouble(1), 1e-15);
        assertThrows(IllegalStateException.class,
                () -> TeacherEma.update(Map.of("x", Nd4j.zeros(DataType.DOUBLE, 1)), student, 0.5));
    }

    @Test
    void configJsonRoundTripAndValidation() {
        MugsConfig c = MugsConfig.fashionMnistTiny().toBuilder().epochs(7).officialPointerQuirk(true).build();
        assertEquals(c.toJson(), MugsConfig.fromJson(c.toJson()).toJson());
        assertEquals(7, MugsConfig.fromJson(c.toJson()).epochs());
        assertEquals(1.6e-3, MugsConfig.vitSmall().scaledLr(), 1e-15);
        var e = assertThrows(IllegalArgumentException.class,
                () -> MugsConfig.fashionMnistTiny().toBuilder().warmupEpochs(20).build());
        assertTrue(e.getMessage().contains("warmupEpochs must be in [0, epochs]"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> MugsConfig.vitSmall().toBuilder().crops(io.mugs.data.MultiCropConfig.fashionMnist()).build());
        assertTrue(e.getMessage().contains("input channel"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> MugsConfig.fromJson("{\"epochs\": \"x\"}"));
        assertTrue(e.getMessage().contains("Not a MugsConfig JSON"), e.getMessage());
    }

    @Test
    void overridesChangeNestedFieldsAndNameWhatIsWrong() {
        MugsConfig base = MugsConfig.fashionMnistTiny();
        MugsConfig c = base.with("lr=2e-3", "vit.depth=2", "lossWeights.group=0", "crops.globalScale=[0.4, 1.0]",
                "pairing=UNIFORM");
        assertEquals(2e-3, c.lr(), 0);
        assertEquals(2, c.vit().depth());
        assertEquals(0, c.lossWeights().group(), 0);
        assertEquals(0.4, c.crops().globalScale()[0], 0);
        assertEquals(io.mugs.losses.MultiCropPairing.Weighting.UNIFORM, c.pairing());
        assertEquals(base.vit().embedDim(), c.vit().embedDim());
        assertEquals(base.toJson(), base.with().toJson());
        // a field the JSON leaves out at its default (vit.stemChannels) can be set, and back
        MugsConfig stem = base.with("vit.stemChannels=16");
        assertEquals(16, stem.vit().stemChannels());
        assertEquals(0, stem.with("vit.stemChannels=0").vit().stemChannels());
        var e = assertThrows(IllegalArgumentException.class, () -> base.with("vit.dpeth=2"));
        assertTrue(e.getMessage().contains("no field 'dpeth'") && e.getMessage().contains("depth"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> base.with("lr"));
        assertTrue(e.getMessage().contains("path=value"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> base.with("warmupEpochs=99"));
        assertTrue(e.getMessage().contains("warmupEpochs must be in [0, epochs]"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> base.with("epochs=many"));
        assertTrue(e.getMessage().contains("'epochs=many': epochs must be an integer"), e.getMessage());
    }
}
