package io.mugs.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
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
import org.nd4j.linalg.api.ops.impl.transforms.strict.Erfc;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.ops.transforms.Transforms;

/**
 * The fused exact GELU: its erfc against reference values, its kernels against the libnd4j op sequence SameDiff runs
 * (DOUBLE 1e-10, FLOAT 1e-5 relative to the output's largest magnitude, sizes that split over the cores), and the
 * plan-level fusion against SameDiff's own session.
 */
class GeluKernelTest {

    private static final double INV_SQRT2 = 1 / Math.sqrt(2);

    @AfterEach
    void defaultKernels() {
        Kernels.select(null);
    }

    @Test
    void erfcMatchesReferenceValuesToDoublePrecision() {
        // Python's math.erfc (an independent implementation).
        double[][] reference = {{0, 1.0}, {0.1, 0.8875370839817152}, {0.3, 0.6713732405408726},
                {0.46875, 0.507386526782062}, {0.5, 0.4795001221869535}, {1, 0.15729920705028513},
                {2, 0.004677734981047265}, {3, 2.2090496998585438e-05}, {4, 1.541725790028002e-08},
                {4.5, 1.9661604415428873e-10}, {5, 1.5374597944280351e-12}, {10, 2.088487583762545e-45},
                {20, 5.3958656116079005e-176}, {-0.2, 1.2227025892104786}, {-1, 1.842700792949715},
                {-3, 1.9999779095030015}, {-6, 2.0}};
        for (double[] r : reference) {
            assertEquals(r[1], ExactGelu.erfc(r[0]), 1e-14 * r[1], "erfc(" + r[0] + ")");
        }
    }

    @Test
    void singlePrecisionErfcIsWithinItsStatedError() {
        double worst = 0;
        for (double z = -9; z <= 9; z += 1e-3) {
            double exact = ExactGelu.erfc(z);
            worst = Math.max(worst, Math.abs(ExactGelu.erfcSingle(z) - exact) / exact);
        }
        assertTrue(worst < 1.3e-7, "largest relative error " + worst);
        assertTrue(worst > 1e-9, "a float-precision approximation, not the double one: " + worst);
    }

    @Test
    void derivativeMatchesCentralDifferences() {
        for (double x = -6; x <= 6; x += 0.37) {
            double h = 1e-5;
            double numeric = (ExactGelu.gelu(x + h, false) - ExactGelu.gelu(x - h, false)) / (2 * h);
            assertEquals(numeric, ExactGelu.geluDerivative(x, false), 1e-9, "gelu'(" + x + ")");
            assertEquals(ExactGelu.geluDerivative(x, false), ExactGelu.geluDerivative(x, true), 2e-7,
                    "float-precision gelu'(" + x + ")");
        }
    }

    private static INDArray input(DataType type, long seed, long... shape) {
        Nd4j.getRandom().setSeed(seed);
        INDArray x = Nd4j.randn(DataType.DOUBLE, shape).muli(2.5);
        // The far tails (erfc's third range and underflow) and zero.
        double[] extremes = {0, -30, 30, -7.5, 7.5, -5.7, 5.7};
        for (int i = 0; i < extremes.length && i < x.length(); i++) {
            x.putScalar(i * (x.length() / extremes.length), extremes[i]);
        }
        return x.castTo(type);
    }

    /** libnd4j's sequence for {@code x/2 · erfc(-x/√2)}, as SameDiff runs it. */
    private static INDArray nativeForward(INDArray x) {
        INDArray e = x.ulike();
        Nd4j.exec(new Erfc(x.mul(-INV_SQRT2), e));
        return x.mul(e).muli(0.5);
    }

    /** libnd4j's sequence for SameDiff's backward of the same. */
    private static INDArray nativeBackward(INDArray x, INDArray dy) {
        INDArray u = x.mul(-INV_SQRT2);
        INDArray e = x.ulike();
        Nd4j.exec(new Erfc(u, e));
        INDArray g = dy.mul(0.5);
        INDArray dx1 = g.mul(e);
        INDArray de = g.mul(x);
        INDArray du = Transforms.exp(u.mul(u).muli(-1)).muli(-2 / Math.sqrt(Math.PI)).muli(de);
        return dx1.addi(du.muli(-INV_SQRT2));
    }

    private static void assertMatches(INDArray expected, INDArray actual, Precision p, String what) {
        double scale = Math.max(1e-3, expected.amaxNumber().doubleValue());
        double diff = expected.sub(actual).amaxNumber().doubleValue();
        assertTrue(diff <= p.tolerance * scale, what + " " + p + ": max difference " + diff + " against " + scale);
    }

    @ParameterizedTest
    @EnumSource(Precision.class)
    void forwardAndBackwardKernelsMatchLibnd4j(Precision p) {
        // [1088, 384] is the fm step's MLP size: above mugs.engine.parallelWork, it splits over the cores.
        for (long[] shape : new long[][] {{7, 5}, {3, 1001}, {1088, 384}, {2, 4, 17, 24}}) {
            INDArray x = input(p.type, 1, shape);
            INDArray dy = input(p.type, 2, shape);
            for (boolean vector : new boolean[] {false, true}) {
                INDArray y = Nd4j.zeros(p.type, shape).addi(7);
                INDArray dx = Nd4j.zeros(p.type, shape).addi(7);
                ExactGelu.forward(new INDArray[] {x}, y, vector).run();
                ExactGelu.backward(new INDArray[] {x, dy}, dx, vector).run();
                String what = java.util.Arrays.toString(shape) + (vector ? " (Vector API)" : " (scalar)");
                assertMatches(nativeForward(x), y, p, "gelu " + what);
                assertMatches(nativeBackward(x, dy), dx, p, "gelu backward " + what);
            }
        }
    }

    /** The vector forward's operations, one lane in plain Java float arithmetic (IEEE, the same order). */
    private static float[] scalarTwin(float x, float dy) {
        float w = x * (float) -ExactGelu.INV_SQRT2;
        float a = Math.abs(w);
        float a2 = a * a;
        float t = 1f / Math.fma(a, 0.5f, 1f);
        float p = Math.fma(t, 0.17087277f, -0.82215223f);
        for (float c : new float[] {1.48851587f, -1.13520398f, 0.27886807f, -0.18628806f, 0.09678418f, 0.37409196f,
                1.00002368f, -1.26551223f}) {
            p = p * t + c;
        }
        float r = t * twinExp(p - a2);
        if (w < 0f) {
            r = -r + 2f;
        }
        float y = r * 0.5f * x;
        float density = twinExp(-a2) * (float) (1 / Math.sqrt(2 * Math.PI));
        float dx = dy * (r * 0.5f + x * density);
        return new float[] {y, dx};
    }

    private static float twinExp(float q) {
        q = Math.max(q, -87f);
        float z = Math.fma(q, 1.442695f, 12582912f);
        float k = z - 12582912f;
        float r = Math.fma(k, -0.693359375f, q) + k * 2.12194440e-4f;
        float e = Math.fma(r, 1f / 5040, 1f / 720);
        for (float c : new float[] {1f / 120, 1f / 24, 1f / 6, 0.5f, 1f, 1f}) {
            e = Math.fma(e, r, c);
        }
        return e * Float.intBitsToFloat((Float.floatToRawIntBits(z) - (Float.floatToRawIntBits(12582912f) - 127)) << 23);
    }

    @Test
    void vectorKernelsGiveTheBitsOfPlainFloatArithmeticOnceCompiled() {
        // So a run's bits do not depend on how far the JIT has got (the API's own EXP differs before and after).
        GeluVectors.warmUp();
        int n = 64 * GeluVectors.lanes();
        float[] x = new float[n];
        float[] dy = new float[n];
        java.util.SplittableRandom r = new java.util.SplittableRandom(11);
        for (int i = 0; i < n; i++) {
            x[i] = (float) (r.nextGaussian() * (i % 3 == 0 ? 0.1 : i % 3 == 1 ? 1.5 : 6));
            dy[i] = (float) r.nextGaussian();
        }
        x[0] = 0;
        x[1] = -30;
        x[2] = 30;
        float[] y = new float[n];
        float[] dx = new float[n];
        for (int rep = 0; rep < 200; rep++) {
            GeluVectors.forward(x, y, n);
            GeluVectors.backward(x, dy, dx, n);
        }
        for (int i = 0; i < n; i++) {
            float[] twin = scalarTwin(x[i], dy[i]);
            assertEquals(Float.floatToRawIntBits(twin[0]), Float.floatToRawIntBits(y[i]), "gelu(" + x[i] + ")");
            assertEquals(Float.floatToRawIntBits(twin[1]), Float.floatToRawIntBits(dx[i]), "gelu'(" + x[i] + ")");
            assertEquals(ExactGelu.gelu(x[i], false), y[i], 2e-7 * Math.max(1, Math.abs(x[i])), "gelu(" + x[i] + ")");
        }
    }

    @Test
    void theVectorApiIsThereUnderSurefire() {
        // Surefire starts the JVM with --add-modules jdk.incubator.vector, as the launchers do.
        assertTrue(ExactGelu.VECTOR, "the FLOAT kernels run on the Vector API");
        // One vector shape for every kernel (FloatLanes): 8 lanes also where the CPU prefers 16.
        assertEquals(8, GeluVectors.lanes(), "GELU lanes");
        assertEquals(8, LayerNormVectors.lanes(), "layer norm lanes");
        assertEquals(8, AttentionVectors.LANES, "attention lanes");
    }

    /** Two exact GELU layers (written as Layers.gelu writes them) and a loss reading the second. */
    private static SameDiff twoLayers(DataType type, boolean erfcAlsoRead) {
        Nd4j.getRandom().setSeed(5);
        SameDiff sd = SameDiff.create();
        SDVariable x = sd.placeHolder("x", type, -1, 12);
        SDVariable w1 = sd.var("w1", Nd4j.randn(DataType.DOUBLE, 12, 40).castTo(type));
        SDVariable w2 = sd.var("w2", Nd4j.randn(DataType.DOUBLE, 40, 16).divi(4).castTo(type));
        SDVariable h = x.mmul(w1);
        SDVariable e = sd.math.erfc(h.mul(-INV_SQRT2));
        SDVariable g1 = h.mul(e).mul(0.5);
        SDVariable h2 = g1.mmul(w2);
        SDVariable g2 = h2.mul(sd.math.erfc(h2.mul(-INV_SQRT2))).mul(0.5);
        SDVariable c = sd.constant("c", Nd4j.randn(DataType.DOUBLE, 1, 16).castTo(type));
        SDVariable loss = g2.mul(c).sum();
        if (erfcAlsoRead) {
            loss = loss.add(e.mean());
        }
        sd.identity("loss", loss);
        sd.setLossVariables("loss");
        return sd;
    }

    private static void assertClose(INDArray expected, INDArray actual, double tol, String what) {
        double scale = Math.max(expected.norm2Number().doubleValue(), 1e-30);
        double diff = expected.castTo(DataType.DOUBLE).sub(actual.castTo(DataType.DOUBLE)).norm2Number().doubleValue();
        assertTrue(diff <= tol * scale, what + ": relative difference " + diff / scale + " > " + tol);
    }

    private static int opsPerRun(String kernels, SameDiff sd, Map<String, INDArray> feed) {
        Kernels.select(kernels);
        try (GraphExecutor exec = GraphExecutor.gradients(sd, List.of("loss"), List.of("w1", "w2"))) {
            exec.run(feed);
            return exec.opsPerRun();
        }
    }

    @ParameterizedTest
    @EnumSource(Precision.class)
    void fusedPlanEqualsSameDiffAndRunsTwoOpsPerGeluInsteadOfFifteen(Precision p) {
        SameDiff sd = twoLayers(p.type, false);
        Map<String, INDArray> feed = Map.of("x", input(p.type, 3, 300, 12));
        var theirs = sd.calculateGradientsAndOutputs(feed, List.of("loss"), List.of("w1", "w2"));
        Kernels.select("gelu");
        try (GraphExecutor exec = GraphExecutor.gradients(sd, List.of("loss"), List.of("w1", "w2"))) {
            for (int run = 0; run < 3; run++) {
                GraphExecutor.Result ours = exec.run(run == 1 ? Map.of("x", input(p.type, 4, 300, 12)) : feed);
                if (run == 1) {
                    continue;
                }
                assertClose(theirs.getOutputs().get("loss"), ours.outputs().get("loss"), p.tolerance, "loss");
                assertClose(theirs.getGradients().get("w1"), ours.gradients().get("w1"), p.tolerance, "dw1");
                assertClose(theirs.getGradients().get("w2"), ours.gradients().get("w2"), p.tolerance, "dw2");
            }
        }
        // Each GELU: 4 forward + 11 backward ops become 1 + 1.
        assertEquals(opsPerRun("none", sd, feed) - 2 * 13, opsPerRun("gelu", sd, feed));
    }

    @Test
    void aGeluWhoseIntermediateIsReadElsewhereIsLeftAlone() {
        SameDiff sd = twoLayers(DataType.DOUBLE, true);
        Map<String, INDArray> feed = Map.of("x", input(DataType.DOUBLE, 6, 20, 12));
        var theirs = sd.calculateGradientsAndOutputs(feed, List.of("loss"), List.of("w1", "w2"));
        Kernels.select("gelu");
        try (GraphExecutor exec = GraphExecutor.gradients(sd, List.of("loss"), List.of("w1", "w2"))) {
            GraphExecutor.Result ours = exec.run(feed);
            assertClose(theirs.getGradients().get("w1"), ours.gradients().get("w1"), 1e-10, "dw1");
            assertClose(theirs.getGradients().get("w2"), ours.gradients().get("w2"), 1e-10, "dw2");
        }
        // Only the second GELU is fused: the first one's erfc is read by the loss.
        assertEquals(opsPerRun("none", sd, feed) - 13, opsPerRun("gelu", sd, feed));
    }

    @Test
    void inferenceFusesTheForward() {
        SameDiff sd = twoLayers(DataType.FLOAT, false);
        String out = sd.getVariable("loss").name();
        Map<String, INDArray> feed = Map.of("x", input(DataType.FLOAT, 7, 64, 12));
        double expected = sd.output(feed, List.of(out)).get(out).getDouble(0);
        int[] ops = new int[2];
        for (int i = 0; i < 2; i++) {
            Kernels.select(i == 0 ? "none" : "gelu");
            try (GraphExecutor exec = GraphExecutor.outputs(sd, List.of(out))) {
                assertEquals(expected, exec.run(feed).outputs().get(out).getDouble(0), 1e-5 * Math.abs(expected));
                ops[i] = exec.opsPerRun();
            }
        }
        assertEquals(ops[0] - 2 * 3, ops[1]);
    }

    @Test
    void selectionNamesGeluAndCombinesWithTheDefaults() {
        assertEquals(Set.of("gelu"), Kernels.parse("gelu"));
        Set<String> both = Kernels.parse("default, gelu");
        assertTrue(both.containsAll(Kernels.DEFAULT_OPS) && both.contains("gelu"), both.toString());
        // With the Vector API (Surefire adds it) the default includes the fused GELU.
        assertEquals(Kernels.DEFAULT_OPS, Kernels.parse("default"));
        assertEquals(Set.of("matmul", "matmul_bp"), Kernels.parse("matmul,matmul_bp"));
        assertThrows(IllegalArgumentException.class, () -> Kernels.parse("gelu,erfc"));
    }
}
