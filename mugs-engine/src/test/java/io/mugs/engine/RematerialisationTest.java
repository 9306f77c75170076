package io.mugs.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * Rematerialisation: two MLP blocks whose GELU outputs have 2^20 elements give SameDiff's gradients when those
 * outputs are recomputed before fc2's backward, run one more op per block, and hold one output's size less at the
 * peak; a smaller one is left alone.
 */
class RematerialisationTest {

    private static final String PROPERTY = "mugs.engine.rematerialise";
    private static final double INV_SQRT2 = 1 / Math.sqrt(2);
    private static final List<String> WRT = List.of("w1_0", "w2_0", "w1_1", "w2_1");

    @AfterEach
    void restore() {
        System.clearProperty(PROPERTY);
        Kernels.select(null);
    }

    /** Two MLP blocks: x [rows, 16] -> h = x w1 [rows, hidden] -> GELU as Layers.gelu writes it -> g w2 [rows, 16]. */
    private static SameDiff mlp(int hidden) {
        Nd4j.getRandom().setSeed(9);
        SameDiff sd = SameDiff.create();
        SDVariable y = sd.placeHolder("x", DataType.FLOAT, -1, 16);
        for (int block = 0; block < 2; block++) {
            SDVariable w1 = sd.var("w1_" + block, Nd4j.randn(DataType.FLOAT, 16, hidden).muli(0.5f));
            SDVariable w2 = sd.var("w2_" + block, Nd4j.randn(DataType.FLOAT, hidden, 16).muli(0.02f));
            SDVariable h = y.mmul(w1);
            SDVariable g = h.mul(sd.math.erfc(h.mul(-INV_SQRT2))).mul(0.5);
            y = g.mmul(w2);
        }
        SDVariable c = sd.constant("c", Nd4j.randn(DataType.FLOAT, 1, 16));
        sd.identity("loss", sd.math.tanh(y).mul(c).sum());
        sd.setLossVariables("loss");
        return sd;
    }

    @Test
    void aLargeGeluOutputIsRecomputedWithSameDiffsGradientsAndALowerPeak() {
        int rows = 256;
        int hidden = 4096;                                    // g: 2^20 floats, 4 MiB
        SameDiff sd = mlp(hidden);
        Map<String, INDArray> feed = Map.of("x", Nd4j.randn(DataType.FLOAT, rows, 16));
        var theirs = sd.calculateGradientsAndOutputs(feed, List.of("loss"), WRT);
        Kernels.select("gelu");
        long[] peak = new long[2];
        int[] ops = new int[2];
        for (int on = 0; on < 2; on++) {
            System.setProperty(PROPERTY, Boolean.toString(on == 1));
            try (GraphExecutor exec = GraphExecutor.gradients(sd, List.of("loss"), WRT)) {
                for (int run = 0; run < 2; run++) {
                    GraphExecutor.Result ours = exec.run(feed);
                    String when = (on == 1 ? "recomputed" : "kept") + ", run " + run;
                    assertClose(theirs.getOutputs().get("loss"), ours.outputs().get("loss"), "loss, " + when);
                    for (String w : WRT) {
                        assertClose(theirs.getGradients().get(w), ours.gradients().get(w), "d" + w + ", " + when);
                    }
                }
                peak[on] = exec.peakLiveBytes();
                ops[on] = exec.opsPerRun();
            }
        }
        assertEquals(ops[0] + 2, ops[1], "one GELU pass more per block and run");
        long gBytes = 4L * rows * hidden;
        // The peak is in the second block's backward (its h, g and dg); kept, the first block's g is alive there too.
        assertTrue(peak[0] - peak[1] >= gBytes, "peak " + peak[0] + " B kept, " + peak[1] + " B recomputed");
    }

    @Test
    void aSmallGeluOutputIsKept() {
        SameDiff sd = mlp(64);
        Map<String, INDArray> feed = Map.of("x", Nd4j.randn(DataType.FLOAT, 32, 16));
        Kernels.select("gelu");
        int[] ops = new int[2];
        for (int on = 0; on < 2; on++) {
            System.setProperty(PROPERTY, Boolean.toString(on == 1));
            try (GraphExecutor exec = GraphExecutor.gradients(sd, List.of("loss"), WRT)) {
                exec.run(feed);
                ops[on] = exec.opsPerRun();
            }
        }
        assertEquals(ops[0], ops[1], "2,048 elements are below " + Rematerialisation.MIN_ELEMENTS);
    }

    private static void assertClose(INDArray expected, INDArray actual, String what) {
        double scale = Math.max(expected.norm2Number().doubleValue(), 1e-30);
        double diff = expected.castTo(DataType.DOUBLE).sub(actual.castTo(DataType.DOUBLE)).norm2Number().doubleValue();
        assertTrue(diff <= 1e-5 * scale, what + ": relative difference " + diff / scale + " > 1e-5");
    }
}
