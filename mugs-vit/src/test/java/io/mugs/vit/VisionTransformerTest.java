package io.mugs.vit;

import io.mugs.engine.Gradients;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.mugs.vit.weights.BackboneFiles;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

class VisionTransformerTest {

    private static final VitConfig TINY = VitConfig.builder().imageSize(16).inChannels(3).patchSize(4).embedDim(16)
            .depth(2).numHeads(2).build();

    private static INDArray images(long seed, DataType type, int b, int c, int h, int w) {
        SplittableRandom r = new SplittableRandom(seed);
        return Initializers.normal(r, type, b, c, h, w);
    }

    private static double[][][] image(INDArray batch, int i) {
        int c = (int) batch.size(1);
        int h = (int) batch.size(2);
        int w = (int) batch.size(3);
        double[][][] out = new double[c][h][w];
        for (int ch = 0; ch < c; ch++) {
            for (int y = 0; y < h; y++) {
                for (int x = 0; x < w; x++) {
                    out[ch][y][x] = batch.getDouble(i, ch, y, x);
                }
            }
        }
        return out;
    }

    /** Random non-trivial LayerNorm parameters so that gain and bias are exercised too. */
    private static void perturbNorms(VisionTransformer vit, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        for (String n : vit.parameterNames()) {
            INDArray a = vit.sameDiff().getArrForVarName(n);
            if (n.contains("norm") || n.endsWith("bias")) {
                a.addi(Initializers.normal(r, a.dataType(), a.shape()).muli(0.3));
            }
        }
    }

    @Test
    void forwardMatchesPlainJavaReferenceAtSeveralCropSizes() {
        for (DataType type : new DataType[] {DataType.DOUBLE, DataType.FLOAT}) {
            double tol = type == DataType.DOUBLE ? 1e-10 : 2e-5;
            SameDiff sd = SameDiff.create();
            VisionTransformer vit = new VisionTransformer(sd, "m.", TINY, type, 7);
            perturbNorms(vit, 3);
            ReferenceVit ref = new ReferenceVit(TINY, vit.weights());
            for (int size : new int[] {16, 8, 24}) {
                SDVariable x = sd.placeHolder("x" + size, type, -1, 3, size, size);
                VitOutputs out = vit.apply(x, size, size, VisionTransformer.Mode.INFERENCE, "s" + size);
                INDArray in = images(size, type, 2, 3, size, size);
                Map<String, INDArray> r = sd.output(Map.of(x.name(), in), out.cls().name(), out.patchMean().name(),
                        out.tokenMean().name(), out.lastAttention().name(), out.patchTokens().name());
                int t = (size / 4) * (size / 4) + 1;
                assertArrayEquals(new long[] {2, 2, t, t}, r.get(out.lastAttention().name()).shape());
                for (int b = 0; b < 2; b++) {
                    ReferenceVit.Result e = ref.forward(image(in, b));
                    for (int k = 0; k < 16; k++) {
                        assertEquals(e.normed()[0][k], r.get(out.cls().name()).getDouble(b, k), tol, "cls");
                        double pm = 0;
                        double tm = 0;
                        for (int i = 0; i < t; i++) {
                            pm += i > 0 ? e.normed()[i][k] / (t - 1) : 0;
                            tm += e.preNorm()[i][k] / t;
                        }
                        assertEquals(pm, r.get(out.patchMean().name()).getDouble(b, k), tol, "patch mean");
                        assertEquals(tm, r.get(out.tokenMean().name()).getDouble(b, k), tol, "token mean");
                        assertEquals(e.normed()[t - 1][k],
                                r.get(out.patchTokens().name()).getDouble(b, t - 2, k), tol, "last patch token");
                    }
                    for (int h = 0; h < 2; h++) {
                        for (int i = 0; i < t; i += 3) {
                            for (int j = 0; j < t; j++) {
                                assertEquals(e.attention()[h][i][j],
                                        r.get(out.lastAttention().name()).getDouble(b, h, i, j), tol, "attention");
                            }
                        }
                    }
                }
            }
        }
    }

    @Test
    void outputShapesForSeveralCropSizes() {
        VitConfig rgb = VitConfig.builder().embedDim(32).depth(1).numHeads(2).build();          // 224 px, patch 16
        VitConfig gray = VitConfig.builder().imageSize(28).inChannels(1).patchSize(4).embedDim(32).depth(1)
                .numHeads(2).build();
        int[][] cases = {{224, 196}, {96, 36}};
        checkShapes(rgb, cases);
        checkShapes(gray, new int[][] {{28, 49}, {12, 9}, {16, 16}});
    }

    private static void checkShapes(VitConfig cfg, int[][] cases) {
        SameDiff sd = SameDiff.create();
        VisionTransformer vit = new VisionTransformer(sd, "", cfg, DataType.FLOAT, 1);
        for (int[] c : cases) {
            int size = c[0];
            int n = c[1];
            SDVariable x = sd.placeHolder("x" + size, DataType.FLOAT, -1, cfg.inChannels(), size, size);
            VitOutputs out = vit.apply(x, size, size, VisionTransformer.Mode.INFERENCE, "t" + size);
            Map<String, INDArray> r = sd.output(Map.of(x.name(), images(1, DataType.FLOAT, 3, cfg.inChannels(), size,
                    size)), out.cls().name(), out.patchTokens().name(), out.lastAttention().name());
            assertArrayEquals(new long[] {3, 32}, r.get(out.cls().name()).shape());
            assertArrayEquals(new long[] {3, n, 32}, r.get(out.patchTokens().name()).shape());
            assertArrayEquals(new long[] {3, 2, n + 1, n + 1}, r.get(out.lastAttention().name()).shape());
        }
    }

    @Test
    void cropNotDivisibleByPatchIsRejected() {
        SameDiff sd = SameDiff.create();
        VisionTransformer vit = new VisionTransformer(sd, "", TINY, DataType.FLOAT, 1);
        SDVariable x = sd.placeHolder("x", DataType.FLOAT, -1, 3, 10, 10);
        var e = assertThrows(IllegalArgumentException.class,
                () -> vit.apply(x, 10, 10, VisionTransformer.Mode.INFERENCE, "bad"));
        assertTrue(e.getMessage().contains("divisible by 4"), e.getMessage());
    }

    @Test
    void gradientsMatchFiniteDifferencesThroughTwoWeightSharingTowers() {
        VitConfig cfg = TINY.toBuilder().embedDim(8).dropPathRate(0.5).build();
        SameDiff sd = SameDiff.create();
        VisionTransformer vit = new VisionTransformer(sd, "", cfg, DataType.DOUBLE, 11);
        perturbNorms(vit, 5);
        SDVariable xg = sd.placeHolder("xg", DataType.DOUBLE, -1, 3, 16, 16);
        SDVariable xl = sd.placeHolder("xl", DataType.DOUBLE, -1, 3, 8, 8);
        VitOutputs g = vit.apply(xg, 16, 16, VisionTransformer.Mode.TRAINING, "g");
        VitOutputs l = vit.apply(xl, 8, 8, VisionTransformer.Mode.INFERENCE, "l");
        SplittableRandom r = new SplittableRandom(9);
        SDVariable loss = sd.sum(g.cls().mul(sd.constant(Initializers.normal(r, DataType.DOUBLE, 2, 8))))
                .add(sd.sum(g.tokenMean().mul(sd.constant(Initializers.normal(r, DataType.DOUBLE, 2, 8)))))
                .add(sd.sum(l.patchMean().mul(sd.constant(Initializers.normal(r, DataType.DOUBLE, 2, 8)))))
                .add(sd.sum(l.lastAttention().mul(sd.constant(Initializers.normal(r, DataType.DOUBLE, 2, 2, 5, 5)))));
        sd.setLossVariables(loss);
        Map<String, INDArray> feed = new HashMap<>();
        feed.put("xg", images(1, DataType.DOUBLE, 2, 3, 16, 16));
        feed.put("xl", images(2, DataType.DOUBLE, 2, 3, 8, 8));
        // Fixed masks: sample 0 keeps every branch (scaled by 2), sample 1 drops the attention branch of block 1.
        assertEquals(2, g.dropPath().size());
        for (DropPath.Slot s : g.dropPath()) {
            double[] rows = new double[2 * g.tokensPerImage()];
            for (int i = 0; i < rows.length; i++) {
                rows[i] = i < g.tokensPerImage() ? 2.0 : (s.placeholder().endsWith("attn") ? 0.0 : 2.0);
            }
            feed.put(s.placeholder(), Nd4j.create(rows, new long[] {rows.length, 1}, DataType.DOUBLE));
        }
        List<String> params = vit.parameterNames();
        Map<String, INDArray> grads = Gradients.bySameDiff(sd, feed, params);
        String lossName = loss.name();
        int checked = 0;
        for (String p : params) {
            INDArray w = sd.getArrForVarName(p);
            INDArray grad = grads.get(p);
            assertArrayEquals(w.shape(), grad.shape(), p);
            for (int k = 0; k < 3; k++) {
                long idx = new SplittableRandom(p.hashCode() + k).nextLong(w.length());
                double orig = w.getDouble(idx);
                double h = 1e-6;
                w.putScalar(idx, orig + h);
                double up = sd.output(feed, lossName).get(lossName).getDouble(0);
                w.putScalar(idx, orig - h);
                double down = sd.output(feed, lossName).get(lossName).getDouble(0);
                w.putScalar(idx, orig);
                double numeric = (up - down) / (2 * h);
                double analytic = grad.getDouble(idx);
                double err = Math.abs(numeric - analytic) / Math.max(1e-3, Math.abs(numeric) + Math.abs(analytic));
                assertTrue(err < 1e-5, p + "[" + idx + "]: analytic " + analytic + " vs numeric " + numeric);
                checked++;
            }
        }
        assertEquals(3 * params.size(), checked);
    }

    @Test
    void dropPathOnlyInTrainingGraphs() {
        VitConfig cfg = TINY.toBuilder().dropPathRate(0.5).build();
        SameDiff sd = SameDiff.create();
        VisionTransformer vit = new VisionTransformer(sd, "", cfg, DataType.DOUBLE, 4);
        SDVariable x = sd.placeHolder("x", DataType.DOUBLE, -1, 3, 16, 16);
        VitOutputs train = vit.apply(x, 16, 16, VisionTransformer.Mode.TRAINING, "train");
        VitOutputs infer = vit.apply(x, 16, 16, VisionTransformer.Mode.INFERENCE, "infer");
        assertTrue(infer.dropPath().isEmpty(), "an inference graph has no drop-path");
        // Block 0 has rate linspace(0, 0.5, 2)[0] = 0: only block 1's two branches get masks.
        assertEquals(List.of("train/droppath.1.attn", "train/droppath.1.mlp"),
                train.dropPath().stream().map(DropPath.Slot::placeholder).toList());
        INDArray in = images(3, DataType.DOUBLE, 4, 3, 16, 16);
        int t = train.tokensPerImage();

        INDArray inferCls = sd.output(Map.of("x", in), infer.cls().name()).get(infer.cls().name());
        Map<String, INDArray> feed = new HashMap<>(DropPath.keepAll(train.dropPath(), 4, t, DataType.DOUBLE));
        feed.put("x", in);
        INDArray keepAllCls = sd.output(feed, train.cls().name()).get(train.cls().name());
        assertEquals(0.0, keepAllCls.sub(inferCls).amaxNumber().doubleValue(), 1e-12);

        // Dropping both branches of block 1 for every sample leaves block 0's output.
        for (DropPath.Slot s : train.dropPath()) {
            feed.put(s.placeholder(), Nd4j.zeros(DataType.DOUBLE, 4L * t, 1));
        }
        INDArray droppedCls = sd.output(feed, train.cls().name()).get(train.cls().name());
        SDVariable block0 = vit.intermediateCls(infer, 2).get(0);
        INDArray block0Cls = sd.output(Map.of("x", in), block0.name()).get(block0.name());
        assertEquals(0.0, droppedCls.sub(block0Cls).amaxNumber().doubleValue(), 1e-12);
        assertFalse(droppedCls.equalsWithEps(inferCls, 1e-3));
    }

    @Test
    void dropPathMasksHaveTheRightDistribution() {
        List<DropPath.Slot> slots = List.of(new DropPath.Slot("m", 0.3));
        INDArray m = DropPath.sample(slots, 20_000, 2, new SplittableRandom(1), DataType.DOUBLE).get("m");
        int zeros = 0;
        for (int b = 0; b < 20_000; b++) {
            double v = m.getDouble(2L * b, 0);
            assertEquals(v, m.getDouble(2L * b + 1, 0), "both tokens of a sample share the mask");
            if (v == 0) {
                zeros++;
            } else {
                assertEquals(1 / 0.7, v, 1e-12);
            }
        }
        assertEquals(0.3, zeros / 20_000.0, 0.015);
    }

    @Test
    void saveAndLoadGiveIdenticalOutputs(@TempDir Path dir) throws Exception {
        SameDiff sd = SameDiff.create();
        VisionTransformer vit = new VisionTransformer(sd, "student.", TINY, DataType.FLOAT, 21);
        perturbNorms(vit, 8);
        Path file = dir.resolve("vit.safetensors");
        BackboneFiles.save(file, vit);

        SameDiff sd2 = SameDiff.create();
        VisionTransformer loaded = BackboneFiles.load(file, sd2, "", DataType.FLOAT);
        assertEquals(TINY, loaded.config());
        INDArray in = images(4, DataType.FLOAT, 2, 3, 8, 8);
        INDArray a = clsAt(vit, in);
        INDArray b = clsAt(loaded, in);
        assertEquals(a, b);
    }

    private static INDArray clsAt(VisionTransformer vit, INDArray in) {
        SameDiff sd = vit.sameDiff();
        SDVariable x = sd.placeHolder("in", DataType.FLOAT, -1, 3, 8, 8);
        VitOutputs out = vit.apply(x, 8, 8, VisionTransformer.Mode.INFERENCE, "eval");
        return sd.output(Map.of("in", in), out.cls().name()).get(out.cls().name());
    }

    @Test
    void loadingWrongShapesNamesEveryProblem() {
        SameDiff sd = SameDiff.create();
        VisionTransformer vit = new VisionTransformer(sd, "", TINY, DataType.FLOAT, 1);
        Map<String, INDArray> w = new HashMap<>(vit.weights());
        w.remove("norm.bias");
        w.put("cls_token", Nd4j.zeros(DataType.FLOAT, 1, 1, 8));
        var e = assertThrows(IllegalArgumentException.class, () -> vit.loadWeights(w));
        assertTrue(e.getMessage().contains("missing norm.bias"), e.getMessage());
        assertTrue(e.getMessage().contains("cls_token: expected shape [1, 1, 16] but got [1, 1, 8]"), e.getMessage());
    }
}
