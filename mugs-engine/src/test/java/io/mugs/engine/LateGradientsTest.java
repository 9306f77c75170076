package io.mugs.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.api.Test;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * Late gradients: a large parameter's gradient computed after the rest of the backward pass gives SameDiff's values
 * (each transpose of the split {@code matmul_bp}, and a weight-normalised prototype layer like the group head's),
 * and lowers the pass's peak of live bytes by about the parameter's size.
 */
class LateGradientsTest {

    private static final String PROPERTY = "mugs.engine.lateGradients";

    @AfterEach
    void restore() {
        System.clearProperty(PROPERTY);
    }

    /**
     * x [n, d] -> h = tanh(x w1) [n, d] -> scores = op(h) op(p) with a large parameter p -> loss = sum(tanh(scores)^2).
     * The gradient of p is a tail value (read by nothing), the gradient of h is not (it goes on to w1).
     */
    private static SameDiff prototypes(boolean ta, boolean tb, int n, int d, int m, long seed) {
        Nd4j.getRandom().setSeed(seed);
        SameDiff sd = SameDiff.create();
        SDVariable x = sd.placeHolder("x", DataType.DOUBLE, -1, d);
        SDVariable w1 = sd.var("w1", Nd4j.randn(DataType.DOUBLE, d, d).muli(0.3));
        SDVariable h = sd.math.tanh(x.mmul(w1));
        SDVariable left = ta ? h.permute(1, 0) : h;                       // as stored: [d, n] when transposed
        SDVariable p = sd.var("p", Nd4j.randn(DataType.DOUBLE, tb ? m : d, tb ? d : m).muli(0.3));
        SDVariable scores = sd.mmul(ta ? sd.identity(left) : left, p, ta, tb, false);
        SDVariable t = sd.math.tanh(scores);
        sd.sum("loss", t.mul(t));
        return sd;
    }

    @ParameterizedTest
    @CsvSource({"false,false", "false,true", "true,false", "true,true"})
    void splitProductGivesSameDiffsGradients(boolean ta, boolean tb) {
        // p [16, 400] is larger than h [4, 16] and the score gradient [4, 400] together: the product is split.
        SameDiff sd = prototypes(ta, tb, 4, 16, 400, 11);
        Map<String, INDArray> feed = Map.of("x", Nd4j.randn(DataType.DOUBLE, 4, 16));
        var theirs = sd.calculateGradientsAndOutputs(feed, List.of("loss"), List.of("w1", "p"));
        try (GraphExecutor exec = GraphExecutor.gradients(sd, List.of("loss"), List.of("w1", "p"))) {
            for (int run = 0; run < 2; run++) {
                GraphExecutor.Result ours = exec.run(feed);
                assertClose(theirs.getOutputs().get("loss"), ours.outputs().get("loss"), "loss");
                assertClose(theirs.getGradients().get("w1"), ours.gradients().get("w1"), "dw1");
                assertClose(theirs.getGradients().get("p"), ours.gradients().get("p"), "dp");
            }
            int split = exec.opsPerRun();
            System.setProperty(PROPERTY, "false");
            try (GraphExecutor planOrder = GraphExecutor.gradients(sd, List.of("loss"), List.of("w1", "p"))) {
                planOrder.run(feed);
                assertEquals(planOrder.opsPerRun() + 1, split, "matmul_bp runs as two products");
            }
        }
    }

    @Test
    void weightNormalisedPrototypesGiveSameDiffsGradientsWithALowerPeak() {
        // The group head's form: scores = (z v^T) * (g / ||v||)^T, v [m, d] large, after a wide activation that the
        // backward keeps (a [n, d, k] tanh standing in for a backbone's activations) and small parameters.
        int n = 8;
        int d = 64;
        int m = 4096;
        int k = 1024;
        Nd4j.getRandom().setSeed(5);
        SameDiff sd = SameDiff.create();
        SDVariable x = sd.placeHolder("x", DataType.FLOAT, n, d);
        SDVariable w1 = sd.var("w1", Nd4j.rand(DataType.FLOAT, 1, d).addi(0.5f));
        SDVariable spread = sd.constant("spread", Nd4j.linspace(0.1, 1, k, DataType.FLOAT).reshape(1, 1, k));
        SDVariable wide = sd.math.tanh(x.mul(w1).reshape(n, d, 1).mul(spread));        // [n, d, k]
        SDVariable w2 = sd.var("w2", Nd4j.randn(DataType.FLOAT, d, d).muli(0.2f));
        SDVariable z = sd.math.tanh(wide.mean(2).mmul(w2));
        SDVariable v = sd.var("v", Nd4j.randn(DataType.FLOAT, m, d));
        SDVariable g = sd.var("g", Nd4j.rand(DataType.FLOAT, m, 1).addi(0.5f));
        SDVariable scale = g.div(sd.norm2(v, true, 1));
        SDVariable scores = sd.mmul(z, v, false, true, false).mul(sd.transpose(scale));
        sd.sum("loss", sd.math.tanh(scores).mul(scores));
        Map<String, INDArray> feed = Map.of("x", Nd4j.randn(DataType.FLOAT, n, d));
        List<String> wrt = List.of("w1", "w2", "v", "g");
        var theirs = sd.calculateGradientsAndOutputs(feed, List.of("loss"), wrt);
        long[] peak = new long[2];
        for (int late = 0; late < 2; late++) {
            System.setProperty(PROPERTY, Boolean.toString(late == 1));
            try (GraphExecutor exec = GraphExecutor.gradients(sd, List.of("loss"), wrt)) {
                GraphExecutor.Result ours = exec.run(feed);
                for (String w : wrt) {
                    assertClose(theirs.getGradients().get(w), ours.gradients().get(w), 1e-5,
                            "d" + w + (late == 1 ? " (late)" : " (plan order)"));
                }
                peak[late] = exec.peakLiveBytes();
            }
        }
        long vBytes = (long) m * d * 4;
        // In plan order the gradient of v (the sum of its two 1 MiB terms) is alive while the backward still holds
        // the wide activation; late, it is computed after, and only what it is made from stays alive instead: the
        // [n, m] score gradient (128 KiB) and an [m, 1] norm gradient (16 KiB).
        assertTrue(peak[0] - peak[1] >= vBytes - (long) n * m * 4 - (long) m * 4,
                "peak " + peak[0] + " B in plan order, " + peak[1] + " B late; v is " + vBytes + " B");
    }

    private static void assertClose(INDArray expected, INDArray actual, String what) {
        assertClose(expected, actual, 1e-12, what);
    }

    private static void assertClose(INDArray expected, INDArray actual, double tol, String what) {
        assertEquals(List.of(expected.shape().length), List.of(actual.shape().length), what + " rank");
        double scale = Math.max(1e-30, expected.castTo(DataType.DOUBLE).amaxNumber().doubleValue());
        double diff = expected.castTo(DataType.DOUBLE).sub(actual.castTo(DataType.DOUBLE)).amaxNumber().doubleValue();
        assertTrue(diff <= tol * scale, what + ": relative difference " + diff / scale + " > " + tol);
    }
}
