package io.mugs.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.ops.transforms.Transforms;

/**
 * The {@code exp} kernel: the Vector API lanes against their plain-Java twin bit for bit and against {@link Math#exp}
 * in double, the kernel on native arrays against libnd4j's op, and a planned graph against SameDiff's session.
 */
class ExpKernelTest {

    @AfterEach
    void defaultKernels() {
        Kernels.select(null);
    }

    @Test
    void lanesEqualTheirScalarTwinAndMathExpWithinTwoUlps() {
        SplittableRandom random = new SplittableRandom(11);
        int n = 8 * 500 + 5;
        float[] x = new float[n];
        for (int i = 0; i < n; i++) {
            x[i] = (float) (random.nextDouble() * 200 - 110);
        }
        float[] specials = {0f, -0f, 1f, -1f, Float.NaN, Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY, 88.376f,
                88.5f, 88.72f, 89f, -87f, -87.5f, -95f, -104f, -120f, 0.3465f, -0.3466f, 1e-8f, -1e-8f};
        System.arraycopy(specials, 0, x, 8, specials.length);
        float[] y = new float[n];
        ExpVectors.warmUp();
        ExpVectors.exp(x, y, n);
        double worst = 0;
        for (int i = 0; i < n; i++) {
            assertEquals(Float.floatToRawIntBits(Exponential.expSingle(x[i])), Float.floatToRawIntBits(y[i]),
                    "exp(" + x[i] + "): lane against its twin");
            double exact = Math.exp(x[i]);
            if (Double.isNaN(exact)) {
                assertTrue(Float.isNaN(y[i]), "exp(NaN)");
            } else if (exact > Float.MAX_VALUE || exact < Float.MIN_NORMAL) {
                assertEquals((float) exact, y[i], 0f, "exp(" + x[i] + ") outside the normal floats");
            } else {
                worst = Math.max(worst, Math.abs(y[i] - exact) / exact);
            }
        }
        assertTrue(worst < 2 * Math.ulp(1f), "largest relative error " + worst);
        assertEquals(Float.POSITIVE_INFINITY, y[8 + 10], "exp(89)");
        assertEquals(0f, y[8 + 6], "exp(-inf)");
    }

    @Test
    void kernelMatchesLibnd4jOnNativeArrays() {
        // [300, 4096] splits over the cores (mugs.engine.parallelWork); [37, 1001] has a tail in its last chunk.
        for (long[] shape : new long[][] {{37, 1001}, {300, 4096}}) {
            Nd4j.getRandom().setSeed(3);
            INDArray x = Nd4j.rand(DataType.DOUBLE, shape).muli(25).subi(20).castTo(DataType.FLOAT);
            INDArray y = Nd4j.zeros(DataType.FLOAT, shape).addi(7);
            Kernel k = Exponential.forward(x, y);
            assertTrue(k != null, "a FLOAT kernel with the Vector API");
            k.run();
            INDArray expected = Transforms.exp(x, true);
            double diff = expected.sub(y).div(expected).amaxNumber().doubleValue();
            assertTrue(diff < 1e-6, java.util.Arrays.toString(shape) + ": largest relative difference " + diff);
        }
        INDArray d = Nd4j.rand(DataType.DOUBLE, 4, 4);
        assertNull(Exponential.forward(d, d.ulike()), "DOUBLE stays on the native op");
        INDArray small = Nd4j.rand(DataType.FLOAT, 6, 32);
        assertNull(Exponential.forward(small, small.ulike()), "small arrays stay on the native op");
    }

    @Test
    void plannedGraphRunsTheKernelAndEqualsSameDiff() {
        Nd4j.getRandom().setSeed(5);
        SameDiff sd = SameDiff.create();
        SDVariable x = sd.placeHolder("x", DataType.FLOAT, -1, 24);
        // [40, 600] logits: above Exponential.MIN_ELEMENTS.
        SDVariable w = sd.var("w", Nd4j.randn(DataType.DOUBLE, 24, 600).divi(5).castTo(DataType.FLOAT));
        SDVariable c = sd.constant("c", Nd4j.randn(DataType.DOUBLE, 1, 600).castTo(DataType.FLOAT));
        SDVariable logits = x.mmul(w);
        SDVariable m = logits.max(true, 1);
        sd.identity("loss", sd.math.exp(logits.sub(m)).mul(c).sum());
        sd.setLossVariables("loss");
        Map<String, INDArray> feed = Map.of("x", Nd4j.randn(DataType.DOUBLE, 40, 24).castTo(DataType.FLOAT));
        var theirs = sd.calculateGradientsAndOutputs(feed, List.of("loss"), List.of("w"));
        int[] rewritten = new int[2];
        for (int i = 0; i < 2; i++) {
            Kernels.select(i == 0 ? "none" : "exp");
            try (GraphExecutor exec = GraphExecutor.gradients(sd, List.of("loss"), List.of("w"))) {
                GraphExecutor.Result ours = exec.run(feed);
                double loss = theirs.getOutputs().get("loss").getDouble(0);
                assertEquals(loss, ours.outputs().get("loss").getDouble(0), 1e-5 * Math.abs(loss), "loss");
                INDArray dw = theirs.getGradients().get("w");
                double diff = dw.sub(ours.gradients().get("w")).norm2Number().doubleValue();
                assertTrue(diff <= 1e-5 * dw.norm2Number().doubleValue(), "dw: difference " + diff);
                rewritten[i] = exec.rewrittenOps();
            }
        }
        // The forward exp and the one SameDiff's backward of exp computes again.
        assertEquals(rewritten[0] + 2, rewritten[1], "exp ops run by the kernel");
    }
}
