package io.mugs.engine;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.mugs.engine.CpuKernelsTest.Precision;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * The fused attention: its kernels against the libnd4j op sequence SameDiff runs for {@code TransformerBlock}'s
 * attention (DOUBLE 1e-10, FLOAT 1e-5 relative to the output's largest magnitude, a size that splits over the
 * cores), its gradient against central differences, and the plan-level fusion against SameDiff's own session.
 */
class AttentionKernelTest {

    @AfterEach
    void defaultKernels() {
        Kernels.select(null);
    }

    private static INDArray random(DataType type, long seed, long... shape) {
        Nd4j.getRandom().setSeed(seed);
        return Nd4j.randn(DataType.DOUBLE, shape).muli(1.5).castTo(type);
    }

    /** The attention as {@code TransformerBlock.apply} writes it: ctx [B*T, D] and P [B, H, T, T] from qkv. */
    private static SDVariable[] attention(SameDiff sd, SDVariable qkv, int t, int heads, int dh) {
        SDVariable[] parts = sd.split(qkv, 3, 1);
        SDVariable q = toHeads(sd, parts[0].mul(1.0 / Math.sqrt(dh)), t, heads, dh);
        SDVariable k = toHeads(sd, parts[1], t, heads, dh);
        SDVariable v = toHeads(sd, parts[2], t, heads, dh);
        SDVariable p = sd.nn.softmax(sd.mmul(q, k, false, true, false), -1);
        SDVariable ctx = sd.reshape(sd.permute(sd.mmul(p, v), 0, 2, 1, 3), -1, heads * dh);
        return new SDVariable[] {ctx, p};
    }

    private static SDVariable toHeads(SameDiff sd, SDVariable x, int t, int heads, int dh) {
        return sd.permute(sd.reshape(x, -1, t, heads, dh), 0, 2, 1, 3);
    }

    private static void assertMatches(INDArray expected, INDArray actual, double tolerance, String what) {
        assertArrayEquals(expected.shape(), actual.shape(), what);
        double scale = Math.max(1e-3, expected.amaxNumber().doubleValue());
        double diff = expected.castTo(DataType.DOUBLE).sub(actual.castTo(DataType.DOUBLE)).amaxNumber().doubleValue();
        assertTrue(diff <= tolerance * scale, what + ": max difference " + diff + " against " + scale);
    }

    @ParameterizedTest
    @EnumSource(Precision.class)
    void kernelsMatchTheLibnd4jOpSequence(Precision p) {
        // {images, tokens, heads, head dim}: the fm preset's global and local towers (24 images split over the
        // cores), one head, T above 8 lanes, and a head dim that is not a multiple of 8 (the scalar loops only).
        for (int[] s : new int[][] {{24, 17, 3, 32}, {6, 5, 3, 32}, {3, 4, 1, 8}, {2, 9, 2, 16}, {2, 7, 2, 5}}) {
            int b = s[0];
            int t = s[1];
            int heads = s[2];
            int dh = s[3];
            int d = heads * dh;
            SameDiff sd = SameDiff.create();
            SDVariable qkv = sd.var("qkv", random(p.type, 1, (long) b * t, 3L * d));
            SDVariable[] out = attention(sd, qkv, t, heads, dh);
            INDArray dctx = random(p.type, 2, (long) b * t, d);
            SDVariable loss = out[0].mul(sd.constant("g", dctx)).sum();
            sd.setLossVariables(loss);
            Map<String, INDArray> expected = sd.output(Map.of(), out[0].name(), out[1].name());
            INDArray expectedGrad = sd.calculateGradients(Map.of(), "qkv").get("qkv");

            double scale = 1 / Math.sqrt(dh);
            INDArray x = qkv.getArr();
            for (boolean vector : new boolean[] {false, true}) {
                INDArray ctx = Nd4j.zeros(p.type, (long) b * t, d).addi(7);
                INDArray probs = Nd4j.zeros(p.type, b, heads, t, t).addi(7);
                INDArray dqkv = Nd4j.zeros(p.type, (long) b * t, 3L * d).addi(7);
                Attention.forward(new INDArray[] {x}, ctx, probs, t, heads, dh, scale, vector).run();
                Attention.backward(new INDArray[] {x, probs, dctx}, dqkv, t, heads, dh, scale, vector).run();
                String what = p + " " + java.util.Arrays.toString(s) + (vector ? " (Vector API)" : " (scalar)");
                assertMatches(expected.get(out[0].name()), ctx, p.tolerance, "ctx " + what);
                assertMatches(expected.get(out[1].name()), probs, p.tolerance, "P " + what);
                assertMatches(expectedGrad, dqkv, p.tolerance, "dqkv " + what);

                INDArray ctxOnly = Nd4j.zeros(p.type, (long) b * t, d).addi(7);
                Attention.forward(new INDArray[] {x}, ctxOnly, null, t, heads, dh, scale, vector).run();
                assertEquals(ctx, ctxOnly, "the forward without P " + what);
            }
        }
    }

    @Test
    void vectorProductsGiveTheBitsOfPlainFloatArithmeticOnceCompiled() {
        // Each lane is a chain of exact fused multiply-adds in row order: the same bits before and after the JIT.
        AttentionVectors.warmUp();
        java.util.SplittableRandom r = new java.util.SplittableRandom(5);
        for (int cols : new int[] {8, 24, 32, 56}) {
            int n = 17;
            int stride = cols + 8;
            float[] a = new float[n + 3];
            float[] m = new float[n * stride + 5];
            for (int i = 0; i < a.length; i++) {
                a[i] = (float) r.nextGaussian();
            }
            for (int i = 0; i < m.length; i++) {
                m[i] = (float) r.nextGaussian();
            }
            float[] out = new float[cols + 2];
            for (int rep = 0; rep < 200; rep++) {
                AttentionVectors.rowTimes(a, 3, n, m, 5, stride, cols, out, 2);
            }
            for (int c = 0; c < cols; c++) {
                float twin = 0f;
                for (int k = 0; k < n; k++) {
                    twin = Math.fma(m[5 + k * stride + c], a[3 + k], twin);
                }
                assertEquals(Float.floatToRawIntBits(twin), Float.floatToRawIntBits(out[2 + c]), "column " + c);
            }
        }
    }

    @Test
    void backwardMatchesCentralDifferences() {
        int b = 2;
        int t = 5;
        int heads = 2;
        int dh = 3;
        int d = heads * dh;
        double scale = 1 / Math.sqrt(dh);
        INDArray qkv = random(DataType.DOUBLE, 3, (long) b * t, 3L * d);
        INDArray g = random(DataType.DOUBLE, 4, (long) b * t, d);
        INDArray probs = Nd4j.zeros(DataType.DOUBLE, b, heads, t, t);
        INDArray ctx = Nd4j.zeros(DataType.DOUBLE, (long) b * t, d);
        Attention.forward(new INDArray[] {qkv}, ctx, probs, t, heads, dh, scale).run();
        INDArray dqkv = Nd4j.zeros(DataType.DOUBLE, (long) b * t, 3L * d);
        Attention.backward(new INDArray[] {qkv, probs, g}, dqkv, t, heads, dh, scale).run();
        double h = 1e-6;
        for (long i = 0; i < qkv.length(); i++) {
            double x0 = qkv.getDouble(i);
            qkv.putScalar(i, x0 + h);
            double up = loss(qkv, g, t, heads, dh, scale);
            qkv.putScalar(i, x0 - h);
            double down = loss(qkv, g, t, heads, dh, scale);
            qkv.putScalar(i, x0);
            double numeric = (up - down) / (2 * h);
            assertEquals(numeric, dqkv.getDouble(i), 1e-8 * Math.max(1, Math.abs(numeric)), "dqkv[" + i + "]");
        }
        // Every part (q, k and v of every head) has a gradient: none of the three sections is all zero.
        for (int part = 0; part < 3; part++) {
            double n = dqkv.get(org.nd4j.linalg.indexing.NDArrayIndex.all(),
                    org.nd4j.linalg.indexing.NDArrayIndex.interval((long) part * d, (long) (part + 1) * d))
                    .norm2Number().doubleValue();
            assertTrue(n > 1e-3, "part " + part + " norm " + n);
        }
    }

    /** {@code sum(ctx ∘ g)}, the attention computed in plain Java double precision. */
    private static double loss(INDArray qkv, INDArray g, int t, int heads, int dh, double scale) {
        int d = heads * dh;
        long images = qkv.size(0) / t;
        double sum = 0;
        for (int b = 0; b < images; b++) {
            for (int h = 0; h < heads; h++) {
                for (int i = 0; i < t; i++) {
                    double[] s = new double[t];
                    double max = Double.NEGATIVE_INFINITY;
                    for (int j = 0; j < t; j++) {
                        for (int e = 0; e < dh; e++) {
                            s[j] += qkv.getDouble(b * t + i, h * dh + e) * scale * qkv.getDouble(b * t + j, d + h * dh + e);
                        }
                        max = Math.max(max, s[j]);
                    }
                    double z = 0;
                    for (int j = 0; j < t; j++) {
                        s[j] = Math.exp(s[j] - max);
                        z += s[j];
                    }
                    for (int e = 0; e < dh; e++) {
                        double o = 0;
                        for (int j = 0; j < t; j++) {
                            o += s[j] / z * qkv.getDouble(b * t + j, 2 * d + h * dh + e);
                        }
                        sum += o * g.getDouble(b * t + i, h * dh + e);
                    }
                }
            }
        }
        return sum;
    }

    /**
     * x → qkv (a linear layer) → attention → a linear layer → loss; {@code scoresAlsoRead}: the loss also reads S,
     * {@code attentionInLoss}: the loss also reads P.
     */
    private static SameDiff block(DataType type, boolean scoresAlsoRead, boolean attentionInLoss) {
        int t = 5;
        int heads = 2;
        int dh = 4;
        int d = heads * dh;
        SameDiff sd = SameDiff.create();
        SDVariable x = sd.placeHolder("x", type, -1, d);
        SDVariable w1 = sd.var("w1", random(type, 11, d, 3L * d));
        SDVariable w2 = sd.var("w2", random(type, 12, d, d).divi(3));
        SDVariable[] att = attention(sd, x.mmul(w1), t, heads, dh);
        SDVariable y = att[0].mmul(w2);
        SDVariable loss = y.mul(sd.constant("c", random(type, 13, 1, d))).sum();
        if (scoresAlsoRead) {
            loss = loss.add(sd.getVariableOutputOp(att[1].name()).arg().mean());
        }
        if (attentionInLoss) {
            loss = loss.add(att[1].mul(att[1]).sum());
        }
        sd.identity("loss", loss);
        sd.identity("attention", att[1]);
        sd.setLossVariables("loss");
        return sd;
    }

    private static void assertClose(INDArray expected, INDArray actual, double tol, String what) {
        assertArrayEquals(expected.shape(), actual.shape(), what);
        double scale = Math.max(expected.norm2Number().doubleValue(), 1e-30);
        double diff = expected.castTo(DataType.DOUBLE).sub(actual.castTo(DataType.DOUBLE)).norm2Number().doubleValue();
        assertTrue(diff <= tol * scale, what + ": relative difference " + diff / scale + " > " + tol);
    }

    /** Ops per run of the gradient plan with {@code kernels}, after checking its values against SameDiff. */
    private static int checkGradients(SameDiff sd, DataType type, double tol, String kernels, List<String> outputs) {
        Kernels.select(kernels);
        try (GraphExecutor exec = GraphExecutor.gradients(sd, outputs, List.of("w1", "w2"))) {
            for (int run = 0; run < 3; run++) {
                // 4 images, then 3 (a second plan), then 4 again (the first plan, new data).
                Map<String, INDArray> feed = Map.of("x", random(type, 20 + run, (run == 1 ? 3 : 4) * 5L, 8));
                var theirs = sd.calculateGradientsAndOutputs(feed, outputs, List.of("w1", "w2"));
                GraphExecutor.Result ours = exec.run(feed);
                for (String o : outputs) {
                    assertClose(theirs.getOutputs().get(o), ours.outputs().get(o), tol, kernels + " " + o);
                }
                assertClose(theirs.getGradients().get("w1"), ours.gradients().get("w1"), tol, kernels + " dw1");
                assertClose(theirs.getGradients().get("w2"), ours.gradients().get("w2"), tol, kernels + " dw2");
            }
            return exec.opsPerRun();
        }
    }

    @ParameterizedTest
    @EnumSource(Precision.class)
    void fusedPlanEqualsSameDiffAndRunsTwoOpsInsteadOfTwentySix(Precision p) {
        SameDiff sd = block(p.type, false, false);
        int none = checkGradients(sd, p.type, p.tolerance, "none", List.of("loss"));
        int fused = checkGradients(sd, p.type, p.tolerance, "attention", List.of("loss"));
        // 13 forward ops and 13 backward ops (17, of which 4 shape_of ops are computed once) become 1 + 1.
        assertEquals(none - 24, fused);
    }

    @Test
    void requestedAttentionIsAnOutputOfTheFusedForward() {
        SameDiff sd = block(DataType.DOUBLE, false, false);
        int none = checkGradients(sd, DataType.DOUBLE, 1e-10, "none", List.of("loss", "attention"));
        int fused = checkGradients(sd, DataType.DOUBLE, 1e-10, "attention", List.of("loss", "attention"));
        assertEquals(none - 24, fused);

        Map<String, INDArray> feed = Map.of("x", random(DataType.FLOAT, 30, 15, 8));
        SameDiff single = block(DataType.FLOAT, false, false);
        Map<String, INDArray> expected = single.output(feed, List.of("loss", "attention"));
        int[] ops = new int[2];
        for (int i = 0; i < 2; i++) {
            Kernels.select(i == 0 ? "none" : "attention");
            try (GraphExecutor exec = GraphExecutor.outputs(single, List.of("loss", "attention"))) {
                GraphExecutor.Result ours = exec.run(feed);
                assertClose(expected.get("loss"), ours.outputs().get("loss"), 1e-5, "inference loss");
                assertClose(expected.get("attention"), ours.outputs().get("attention"), 1e-5, "inference P");
                ops[i] = exec.opsPerRun();
            }
        }
        assertEquals(ops[0] - 12, ops[1], "13 forward ops become 1");
    }

    @Test
    void attentionWhoseScoresOrGradientComeFromElsewhereIsLeftAlone() {
        for (boolean scores : new boolean[] {true, false}) {
            SameDiff sd = block(DataType.DOUBLE, scores, !scores);
            int none = checkGradients(sd, DataType.DOUBLE, 1e-10, "none", List.of("loss"));
            int fused = checkGradients(sd, DataType.DOUBLE, 1e-10, "attention", List.of("loss"));
            assertEquals(none, fused, scores ? "S read by the loss" : "P's gradient from the loss");
        }
    }

    @Test
    void selectionNamesAttention() {
        assertEquals(java.util.Set.of("attention"), Kernels.parse("attention"));
        assertTrue(Kernels.parse("default,attention").contains("attention"));
    }
}
