package io.mugs.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * Unread gradients: a {@code matmul_bp} against a placeholder (a queue of keys) computes only the gradient that is
 * read, with SameDiff's values, half the products' work, and without the queue-sized gradient buffer.
 */
class UnreadGradientsTest {

    private static final String PROPERTY = "mugs.engine.unreadGradients";

    @AfterEach
    void restore() {
        System.clearProperty(PROPERTY);
    }

    /**
     * The instance loss's form: q = tanh(x w) [n, d] against a queue placeholder [m, d] (or [d, m]), logits = op(q)
     * op(queue), loss = sum(tanh(logits)^2); or, with the queue first, logits = op(queue) op(q).
     */
    private static SameDiff queueLoss(boolean queueFirst, boolean ta, boolean tb, int n, int d, int m) {
        Nd4j.getRandom().setSeed(3);
        SameDiff sd = SameDiff.create();
        SDVariable x = sd.placeHolder("x", DataType.DOUBLE, n, d);
        SDVariable w = sd.var("w", Nd4j.randn(DataType.DOUBLE, d, d).muli(0.3));
        SDVariable q = sd.math.tanh(x.mmul(w));                                    // [n, d]
        SDVariable left;
        SDVariable right;
        if (queueFirst) {
            // op(queue) [m, d] times op(q^T) [d, n]
            left = sd.placeHolder("queue", DataType.DOUBLE, ta ? d : m, ta ? m : d);
            right = tb ? sd.identity(q) : sd.transpose(q);
        } else {
            // op(q) [n, d] times op(queue) [d, m]
            left = ta ? sd.transpose(q) : q;
            right = sd.placeHolder("queue", DataType.DOUBLE, tb ? m : d, tb ? d : m);
        }
        SDVariable logits = sd.mmul(left, right, ta, tb, false);
        SDVariable t = sd.math.tanh(logits);
        sd.sum("loss", t.mul(t));
        return sd;
    }

    @ParameterizedTest
    @CsvSource({"false,false,false", "false,false,true", "false,true,false", "false,true,true",
        "true,false,false", "true,false,true", "true,true,false", "true,true,true"})
    void onlyTheReadGradientIsComputedWithSameDiffsValues(boolean queueFirst, boolean ta, boolean tb) {
        int n = 2;
        int d = 32;
        int m = 128;
        SameDiff sd = queueLoss(queueFirst, ta, tb, n, d, m);
        long[] queueShape = sd.getVariable("queue").placeholderShape();
        Map<String, INDArray> feed = Map.of("x", Nd4j.randn(DataType.DOUBLE, n, d),
                "queue", Nd4j.randn(DataType.DOUBLE, queueShape));
        var theirs = sd.calculateGradientsAndOutputs(feed, List.of("loss"), List.of("w"));
        double[] flops = new double[2];
        long[] peak = new long[2];
        for (int on = 0; on < 2; on++) {
            System.setProperty(PROPERTY, Boolean.toString(on == 1));
            try (GraphExecutor exec = GraphExecutor.gradients(sd, List.of("loss"), List.of("w"))) {
                for (int run = 0; run < 2; run++) {
                    GraphExecutor.Result ours = exec.run(feed);
                    assertClose(theirs.getOutputs().get("loss"), ours.outputs().get("loss"), "loss");
                    assertClose(theirs.getGradients().get("w"), ours.gradients().get("w"), "dw");
                }
                flops[on] = exec.matmulFlopsPerRun();
                peak[on] = exec.peakLiveBytes();
            }
        }
        // Products, 2 M N K forward and twice that backward for both gradients: x w [n, d] [d, d] and the logits
        // [n, d] [d, m]. Without the unread gradients (of x and of the queue, both placeholders) each backward is
        // one product, as large as its forward.
        double both = 3 * (2.0 * n * d * d) + 3 * (2.0 * n * m * d);
        assertEquals(both, flops[0], 1e-9, "both gradients of each product");
        assertEquals(both - 2.0 * n * d * d - 2.0 * n * m * d, flops[1], 1e-9, "only the read gradients");
        // The queue's gradient [m, d] alone is larger than every other value of the pass together ([n, m], [n, d]
        // and [d, d] ones): the peak holds it when it is computed, and stays below its size when it is not.
        long queueBytes = (long) m * d * 8;
        assertTrue(peak[0] >= queueBytes, "peak " + peak[0] + " B with the queue's gradient of " + queueBytes + " B");
        assertTrue(peak[1] < queueBytes, "peak " + peak[1] + " B without the queue's gradient of " + queueBytes + " B");
    }

    private static void assertClose(INDArray expected, INDArray actual, String what) {
        assertEquals(List.of(expected.shape().length), List.of(actual.shape().length), what + " rank");
        double scale = Math.max(1e-30, expected.amaxNumber().doubleValue());
        double diff = expected.sub(actual).amaxNumber().doubleValue();
        assertTrue(diff <= 1e-12 * scale, what + ": relative difference " + diff / scale + " > 1e-12");
    }
}
