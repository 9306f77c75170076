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
 * The {@code columns} kernel: the mean and the sum over leading axes against sums in plain Java double, and a batch
 * norm's statistics in a planned graph (forward and backward) against SameDiff's session; other axes stay native.
 */
class ColumnReductionTest {

    @AfterEach
    void defaultKernels() {
        Kernels.select(null);
    }

    /** x [n, d] -> batch-norm-like z = (x - mean_0(x)) * sum_0(x^2) -> loss = sum(tanh(z) * c). */
    private static SameDiff statistics(DataType type, long n, long d) {
        Nd4j.getRandom().setSeed(7);
        SameDiff sd = SameDiff.create();
        SDVariable x = sd.placeHolder("x", type, n, d).mul(sd.var("w", Nd4j.rand(type, 1, d).addi(0.5)));
        SDVariable centred = x.sub(x.mean(true, 0));
        SDVariable z = centred.mul(x.mul(x).sum(true, 0));
        sd.sum("loss", sd.math.tanh(z).mul(sd.constant(Nd4j.randn(type, n, d))));
        return sd;
    }

    @Test
    void meanAndSumOverLeadingAxesEqualPlainJavaSums() {
        Nd4j.getRandom().setSeed(1);
        INDArray x = Nd4j.randn(DataType.DOUBLE, 6, 5, 7).addi(3);
        double[] mean = new double[7];
        double[] sum01 = new double[7];
        for (int i = 0; i < 6; i++) {
            for (int j = 0; j < 5; j++) {
                for (int k = 0; k < 7; k++) {
                    sum01[k] += x.getDouble(i, j, k);
                }
            }
        }
        for (int k = 0; k < 7; k++) {
            mean[k] = sum01[k] / 30;
        }
        INDArray m = x.mean(0, 1);
        INDArray s = x.sum(0, 1);
        Kernels.select("columns");
        // Through the legacy ops' planned path: a graph of the two reductions.
        SameDiff sd = SameDiff.create();
        SDVariable in = sd.placeHolder("x", DataType.DOUBLE, 6, 5, 7);
        sd.identity("m", in.mean(0, 1));
        sd.identity("s", in.sum(0, 1));
        try (GraphExecutor exec = GraphExecutor.outputs(sd, List.of("m", "s"))) {
            Map<String, INDArray> out = exec.run(Map.of("x", x)).outputs();
            assertEquals(2, exec.rewrittenOps(), "both reductions run the kernel");
            for (int k = 0; k < 7; k++) {
                assertEquals(mean[k], out.get("m").getDouble(k), 1e-12 * Math.abs(mean[k]), "mean " + k);
                assertEquals(sum01[k], out.get("s").getDouble(k), 1e-12 * Math.abs(sum01[k]), "sum " + k);
                assertEquals(m.getDouble(k), out.get("m").getDouble(k), 1e-12 * Math.abs(mean[k]), "libnd4j mean");
                assertEquals(s.getDouble(k), out.get("s").getDouble(k), 1e-12 * Math.abs(sum01[k]), "libnd4j sum");
            }
        }
    }

    @Test
    void batchStatisticsGiveSameDiffsLossAndGradients() {
        for (DataType type : new DataType[] {DataType.DOUBLE, DataType.FLOAT}) {
            double tol = type == DataType.DOUBLE ? 1e-12 : 1e-5;
            SameDiff sd = statistics(type, 12, 9);
            Map<String, INDArray> feed = Map.of("x", Nd4j.randn(type, 12, 9));
            var theirs = sd.calculateGradientsAndOutputs(feed, List.of("loss"), List.of("w"));
            Kernels.select("none");
            int nativeRewrites;
            try (GraphExecutor exec = GraphExecutor.gradients(sd, List.of("loss"), List.of("w"))) {
                exec.run(feed);
                nativeRewrites = exec.rewrittenOps();   // native op sequences (Rewrites), there either way
            }
            Kernels.select("columns");
            try (GraphExecutor exec = GraphExecutor.gradients(sd, List.of("loss"), List.of("w"))) {
                for (int run = 0; run < 2; run++) {
                    GraphExecutor.Result ours = exec.run(feed);
                    assertClose(theirs.getOutputs().get("loss"), ours.outputs().get("loss"), tol, type + " loss");
                    assertClose(theirs.getGradients().get("w"), ours.gradients().get("w"), tol, type + " dw");
                }
                assertEquals(nativeRewrites + 2, exec.rewrittenOps(),
                        type + ": the mean and the sum over axis 0 run the kernel");
            }
            Kernels.select(null);
        }
    }

    @Test
    void theClassTokensTileOverTheBatchGivesSameDiffsGradient() {
        // The ViT's form: a [1, 1, d] token tiled to [b, 1, d], concatenated before the patch tokens; here scaled
        // per image and summed with weights, in DOUBLE and FLOAT.
        for (DataType type : new DataType[] {DataType.DOUBLE, DataType.FLOAT}) {
            double tol = type == DataType.DOUBLE ? 1e-12 : 1e-5;
            Nd4j.getRandom().setSeed(9);
            SameDiff sd = SameDiff.create();
            SDVariable x = sd.placeHolder("x", type, 6, 1, 5);
            SDVariable token = sd.var("token", Nd4j.randn(type, 1, 1, 5));
            SDVariable tiled = sd.tile(token, 6, 1, 1);
            sd.sum("loss", sd.math.tanh(tiled.mul(x)).mul(sd.constant(Nd4j.randn(type, 6, 1, 5))));
            Map<String, INDArray> feed = Map.of("x", Nd4j.randn(type, 6, 1, 5));
            var theirs = sd.calculateGradientsAndOutputs(feed, List.of("loss"), List.of("token"));
            int[] rewritten = new int[2];
            for (int on = 0; on < 2; on++) {
                Kernels.select(on == 1 ? "columns" : "none");
                try (GraphExecutor exec = GraphExecutor.gradients(sd, List.of("loss"), List.of("token"))) {
                    GraphExecutor.Result ours = exec.run(feed);
                    assertClose(theirs.getGradients().get("token"), ours.gradients().get("token"), tol,
                            type + " dtoken" + (on == 1 ? " (kernel)" : " (native)"));
                    rewritten[on] = exec.rewrittenOps();
                }
            }
            assertEquals(rewritten[0] + 1, rewritten[1], type + ": tile_bp runs the kernel");
        }
    }

    @Test
    void aTileOfAWholeRowStaysOnTheNativeOp() {
        // [2, 3] tiled to [2, 6]: the copies sit inside each row, not in whole blocks.
        INDArray x = Nd4j.rand(DataType.FLOAT, 2, 3);
        INDArray reps = Nd4j.createFromArray(1, 2);
        INDArray dy = Nd4j.rand(DataType.FLOAT, 2, 6);
        assertEquals(null, ColumnReduction.tileBackward(new INDArray[] {x, reps, dy},
                new INDArray[] {Nd4j.create(DataType.FLOAT, 2, 3)}));
        INDArray blocks = Nd4j.rand(DataType.FLOAT, 1, 3);
        assertTrue(ColumnReduction.tileBackward(new INDArray[] {blocks, Nd4j.createFromArray(4, 1),
                Nd4j.rand(DataType.FLOAT, 4, 3)}, new INDArray[] {Nd4j.create(DataType.FLOAT, 1, 3)}) != null,
                "[1, 3] tiled to [4, 3] is whole rows");
    }

    @Test
    void otherAxesStayOnTheNativeOp() {
        Kernels.select("columns");
        SameDiff sd = SameDiff.create();
        SDVariable in = sd.placeHolder("x", DataType.FLOAT, 4, 6);
        sd.identity("rows", in.mean(1));
        sd.identity("all", in.sum());
        INDArray x = Nd4j.rand(DataType.FLOAT, 4, 6);
        try (GraphExecutor exec = GraphExecutor.outputs(sd, List.of("rows", "all"))) {
            Map<String, INDArray> out = exec.run(Map.of("x", x)).outputs();
            assertEquals(0, exec.rewrittenOps(), "row means and a full sum are not the kernel's");
            assertClose(x.mean(1), out.get("rows"), 1e-6, "row means");
        }
    }

    private static void assertClose(INDArray expected, INDArray actual, double tol, String what) {
        assertEquals(expected.length(), actual.length(), what + " length");
        INDArray e = expected.castTo(DataType.DOUBLE).reshape(-1);
        INDArray a = actual.castTo(DataType.DOUBLE).reshape(-1);
        double scale = Math.max(1e-30, e.amaxNumber().doubleValue());
        double diff = e.sub(a).amaxNumber().doubleValue();
        assertTrue(diff <= tol * scale, what + ": relative difference " + diff / scale + " > " + tol);
    }
}
