package io.mugs.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.mugs.engine.CpuKernelsTest.Precision;
import java.util.List;
import java.util.Map;
import java.util.Set;
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
 * The fused LayerNorm with an epsilon: its kernels against the libnd4j op sequence SameDiff runs (DOUBLE 1e-10,
 * FLOAT 1e-5 relative to the output's largest magnitude, sizes that split over the cores), its backward against
 * finite differences of a plain-Java forward, and the plan-level fusion against SameDiff's own session.
 */
class LayerNormKernelTest {

    private static final double EPS = 1e-6;

    @AfterEach
    void defaultKernels() {
        Kernels.select(null);
    }

    private static INDArray random(DataType type, long seed, double scale, long... shape) {
        Nd4j.getRandom().setSeed(seed);
        return Nd4j.randn(DataType.DOUBLE, shape).muli(scale).castTo(type);
    }

    /** {@code Layers.layerNorm}'s graph (eps != 0), written the same way. */
    private static SDVariable layerNorm(SameDiff sd, SDVariable x, SDVariable gain, SDVariable bias) {
        SDVariable centred = x.sub(x.mean(true, 1));
        SDVariable variance = centred.mul(centred).mean(true, 1);
        SDVariable inverseStd = sd.math.rsqrt(variance.add(EPS));
        return centred.mul(inverseStd).mul(gain).add(bias);
    }

    private static void assertMatches(INDArray expected, INDArray actual, Precision p, String what) {
        double scale = Math.max(1e-3, expected.amaxNumber().doubleValue());
        double diff = expected.castTo(DataType.DOUBLE).sub(actual.castTo(DataType.DOUBLE)).amaxNumber().doubleValue();
        assertTrue(diff <= p.tolerance * scale, what + " " + p + ": max difference " + diff + " against " + scale);
    }

    @ParameterizedTest
    @EnumSource(Precision.class)
    void forwardAndBackwardKernelsMatchLibnd4j(Precision p) {
        // [1088, 384] is the fm step's size: above mugs.engine.parallelWork, it splits over the cores.
        // {7, 5} and {3, 1001}: widths that are not a multiple of the vector lanes.
        for (long[] shape : new long[][] {{7, 5}, {3, 1001}, {1088, 384}, {9, 96}}) {
            long n = shape[0];
            long d = shape[1];
            INDArray x = random(p.type, 1, 2, shape).addi(0.7);
            INDArray gain = random(p.type, 2, 1, d);
            INDArray bias = random(p.type, 3, 1, d);
            INDArray dy = random(p.type, 4, 1, shape);
            INDArray other = random(p.type, 5, 1, shape);
            // SameDiff's op sequence on libnd4j: loss = sum(y dy) + sum(x other), so dx carries "other" as a
            // residual connection's gradient would.
            SameDiff sd = SameDiff.create();
            SDVariable xv = sd.var("x", x);
            SDVariable gv = sd.var("gain", gain);
            SDVariable bv = sd.var("bias", bias);
            SDVariable y = layerNorm(sd, xv, gv, bv);
            sd.identity("loss", y.mul(sd.constant(dy)).sum().add(xv.mul(sd.constant(other)).sum()));
            sd.setLossVariables("loss");
            var theirs = sd.calculateGradientsAndOutputs(Map.of(), List.of(y.name()), List.of("x", "gain", "bias"));

            for (boolean vector : new boolean[] {false, true}) {
                INDArray[] fwd = {Nd4j.zeros(p.type, shape).addi(7), Nd4j.zeros(p.type, n, 1),
                        Nd4j.zeros(p.type, n, 1)};
                RowLayerNorm.forward(new INDArray[] {x, gain, bias}, fwd, EPS, vector).run();
                String what = java.util.Arrays.toString(shape) + (vector ? " (Vector API)" : " (scalar)");
                assertMatches(theirs.getOutputs().get(y.name()), fwd[0], p, "layernorm " + what);
                assertMatches(x.mean(true, 1), fwd[1], p, "row means " + what);
                INDArray[] bwd = {Nd4j.zeros(p.type, shape).addi(7), Nd4j.zeros(p.type, d).addi(7),
                        Nd4j.zeros(p.type, d).addi(7)};
                RowLayerNorm.backward(new INDArray[] {x, gain, bias, fwd[1], fwd[2], dy, other}, bwd, vector).run();
                assertMatches(theirs.getGradients().get("x"), bwd[0], p, "dx " + what);
                assertMatches(theirs.getGradients().get("gain"), bwd[1], p, "dgain " + what);
                assertMatches(theirs.getGradients().get("bias"), bwd[2], p, "dbias " + what);
                // Without the gradient from elsewhere: dx is the LayerNorm's own.
                RowLayerNorm.backward(new INDArray[] {x, gain, bias, fwd[1], fwd[2], dy}, bwd, vector).run();
                assertMatches(theirs.getGradients().get("x").sub(other), bwd[0], p, "dx alone " + what);
            }
        }
    }

    /** Plain-Java double LayerNorm, {@code sum(y w)} of it. */
    private static double loss(double[][] x, double[] gain, double[] bias, double[][] w) {
        double total = 0;
        for (int r = 0; r < x.length; r++) {
            int d = x[r].length;
            double mean = 0;
            for (double v : x[r]) {
                mean += v;
            }
            mean /= d;
            double var = 0;
            for (double v : x[r]) {
                var += (v - mean) * (v - mean);
            }
            double inv = 1 / Math.sqrt(var / d + EPS);
            for (int i = 0; i < d; i++) {
                total += ((x[r][i] - mean) * inv * gain[i] + bias[i]) * w[r][i];
            }
        }
        return total;
    }

    @Test
    void backwardKernelMatchesFiniteDifferencesInDouble() {
        int n = 5;
        int d = 7;
        INDArray x = random(DataType.DOUBLE, 11, 1.5, n, d);
        INDArray gain = random(DataType.DOUBLE, 12, 1, d);
        INDArray bias = random(DataType.DOUBLE, 13, 1, d);
        INDArray w = random(DataType.DOUBLE, 14, 1, n, d);
        INDArray[] fwd = {Nd4j.zeros(DataType.DOUBLE, n, d), Nd4j.zeros(DataType.DOUBLE, n, 1),
                Nd4j.zeros(DataType.DOUBLE, n, 1)};
        RowLayerNorm.forward(new INDArray[] {x, gain, bias}, fwd, EPS).run();
        INDArray[] bwd = {Nd4j.zeros(DataType.DOUBLE, n, d), Nd4j.zeros(DataType.DOUBLE, d),
                Nd4j.zeros(DataType.DOUBLE, d)};
        RowLayerNorm.backward(new INDArray[] {x, gain, bias, fwd[1], fwd[2], w}, bwd).run();
        double[][] xs = x.toDoubleMatrix();
        double[] g = gain.toDoubleVector();
        double[] b = bias.toDoubleVector();
        double[][] ws = w.toDoubleMatrix();
        assertEquals(loss(xs, g, b, ws), fwd[0].mul(w).sumNumber().doubleValue(), 1e-12, "forward");
        double h = 1e-6;
        for (int r = 0; r < n; r++) {
            for (int i = 0; i < d; i++) {
                double keep = xs[r][i];
                xs[r][i] = keep + h;
                double up = loss(xs, g, b, ws);
                xs[r][i] = keep - h;
                double down = loss(xs, g, b, ws);
                xs[r][i] = keep;
                assertEquals((up - down) / (2 * h), bwd[0].getDouble(r, i), 1e-7, "dx[" + r + ", " + i + "]");
            }
        }
        for (int i = 0; i < d; i++) {
            for (double[] v : new double[][] {g, b}) {
                double keep = v[i];
                v[i] = keep + h;
                double up = loss(xs, g, b, ws);
                v[i] = keep - h;
                double down = loss(xs, g, b, ws);
                v[i] = keep;
                INDArray grad = v == g ? bwd[1] : bwd[2];
                assertEquals((up - down) / (2 * h), grad.getDouble(i), 1e-7, (v == g ? "dgain[" : "dbias[") + i + "]");
            }
        }
    }

    /**
     * Two LayerNorms: the first on h = x w1 whose value also feeds a residual connection (SameDiff adds that
     * gradient between the LayerNorm's two terms of dh), the second on the residual sum. {@code shareCentred}: the
     * loss also reads the first LayerNorm's centred value.
     */
    private static SameDiff twoLayerNorms(DataType type, boolean shareCentred) {
        Nd4j.getRandom().setSeed(5);
        SameDiff sd = SameDiff.create();
        SDVariable x = sd.placeHolder("x", type, -1, 12);
        SDVariable w1 = sd.var("w1", Nd4j.randn(DataType.DOUBLE, 12, 16).castTo(type));
        SDVariable w2 = sd.var("w2", Nd4j.randn(DataType.DOUBLE, 16, 16).divi(4).castTo(type));
        SDVariable g1 = sd.var("g1", Nd4j.randn(DataType.DOUBLE, 16).castTo(type));
        SDVariable b1 = sd.var("b1", Nd4j.randn(DataType.DOUBLE, 16).castTo(type));
        SDVariable g2 = sd.var("g2", Nd4j.randn(DataType.DOUBLE, 16).castTo(type));
        SDVariable b2 = sd.var("b2", Nd4j.randn(DataType.DOUBLE, 16).castTo(type));
        SDVariable h = x.mmul(w1);
        SDVariable a = layerNorm(sd, h, g1, b1);
        SDVariable res = h.add(a.mmul(w2));
        SDVariable out = layerNorm(sd, res, g2, b2);
        SDVariable c = sd.constant("c", Nd4j.randn(DataType.DOUBLE, 1, 16).castTo(type));
        SDVariable loss = out.mul(c).sum();
        if (shareCentred) {
            // The first LayerNorm's centred value (the subtract reading h), read outside it.
            for (var op : sd.getOps().values()) {
                if (op.getOp().opName().equals("subtract") && op.getInputsToOp().get(0).equals(h.name())) {
                    loss = loss.add(sd.getVariable(op.getOutputsOfOp().get(0)).mean());
                    break;
                }
            }
        }
        sd.identity("loss", loss);
        sd.setLossVariables("loss");
        return sd;
    }

    private static final List<String> PARAMS = List.of("w1", "w2", "g1", "b1", "g2", "b2");

    private static void assertClose(INDArray expected, INDArray actual, double tol, String what) {
        double scale = Math.max(expected.norm2Number().doubleValue(), 1e-30);
        double diff = expected.castTo(DataType.DOUBLE).sub(actual.castTo(DataType.DOUBLE)).norm2Number().doubleValue();
        assertTrue(diff <= tol * scale, what + ": relative difference " + diff / scale + " > " + tol);
    }

    private static int opsPerRun(String kernels, SameDiff sd, Map<String, INDArray> feed) {
        Kernels.select(kernels);
        try (GraphExecutor exec = GraphExecutor.gradients(sd, List.of("loss"), PARAMS)) {
            exec.run(feed);
            return exec.opsPerRun();
        }
    }

    @ParameterizedTest
    @EnumSource(Precision.class)
    void fusedPlanEqualsSameDiffAndRunsTwoOpsPerLayerNorm(Precision p) {
        SameDiff sd = twoLayerNorms(p.type, false);
        Map<String, INDArray> feed = Map.of("x", random(p.type, 3, 1, 300, 12));
        var theirs = sd.calculateGradientsAndOutputs(feed, List.of("loss"), PARAMS);
        Kernels.select("layernorm");
        try (GraphExecutor exec = GraphExecutor.gradients(sd, List.of("loss"), PARAMS)) {
            for (int run = 0; run < 3; run++) {
                GraphExecutor.Result ours = exec.run(run == 1 ? Map.of("x", random(p.type, 4, 1, 300, 12)) : feed);
                if (run == 1) {
                    continue;
                }
                assertClose(theirs.getOutputs().get("loss"), ours.outputs().get("loss"), p.tolerance, "loss");
                for (String name : PARAMS) {
                    assertClose(theirs.getGradients().get(name), ours.gradients().get(name), p.tolerance, "d" + name);
                }
            }
        }
        // The first: 9 forward + 14 backward ops (the residual's gradient added in between) become 1 + 1; the
        // second: 9 + 13 become 1 + 1.
        assertEquals(opsPerRun("none", sd, feed) - 21 - 20, opsPerRun("layernorm", sd, feed));
    }

    @Test
    void aLayerNormWhoseIntermediateIsReadElsewhereIsLeftAlone() {
        SameDiff sd = twoLayerNorms(DataType.DOUBLE, true);
        Map<String, INDArray> feed = Map.of("x", random(DataType.DOUBLE, 6, 1, 20, 12));
        var theirs = sd.calculateGradientsAndOutputs(feed, List.of("loss"), PARAMS);
        Kernels.select("layernorm");
        try (GraphExecutor exec = GraphExecutor.gradients(sd, List.of("loss"), PARAMS)) {
            GraphExecutor.Result ours = exec.run(feed);
            for (String name : PARAMS) {
                assertClose(theirs.getGradients().get(name), ours.gradients().get(name), 1e-10, "d" + name);
            }
        }
        // Only the second LayerNorm is fused: the first one's centred value is read by the loss.
        assertEquals(opsPerRun("none", sd, feed) - 20, opsPerRun("layernorm", sd, feed));
    }

    @Test
    void inferenceFusesTheForward() {
        SameDiff sd = twoLayerNorms(DataType.FLOAT, false);
        String out = sd.getVariable("loss").name();
        Map<String, INDArray> feed = Map.of("x", random(DataType.FLOAT, 7, 1, 64, 12));
        double expected = sd.output(feed, List.of(out)).get(out).getDouble(0);
        int[] ops = new int[2];
        for (int i = 0; i < 2; i++) {
            Kernels.select(i == 0 ? "none" : "layernorm");
            try (GraphExecutor exec = GraphExecutor.outputs(sd, List.of(out))) {
                assertEquals(expected, exec.run(feed).outputs().get(out).getDouble(0), 1e-5 * Math.abs(expected));
                ops[i] = exec.opsPerRun();
            }
        }
        assertEquals(ops[0] - 2 * 8, ops[1]);
    }

    @Test
    void selectionNamesLayernormApartFromLibnd4jsLayerNorm() {
        assertEquals(Set.of("layernorm"), Kernels.parse("layernorm"));
        assertEquals(Set.of("layer_norm", "layernorm"), Kernels.parse("layer_norm,layernorm"));
        assertTrue(Kernels.parse("all").contains("layernorm"));
        // Part of the default where the Vector API is there (the same step time, less memory), like the GELU.
        assertEquals(ExactGelu.VECTOR, Kernels.parse("default").contains("layernorm"));
        assertEquals(Kernels.parse("default").contains("gelu"), Kernels.parse("default").contains("layernorm"));
    }
}
