package io.mugs.losses;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.mugs.engine.Gradients;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

class LossesTest {

    private static final DataType D = DataType.DOUBLE;

    /** A per-pair loss l(t, s) of the reference. */
    private interface PairLoss {
        double of(int t, int s);
    }

    /** The reference's averaging, literally: skip s == t, 1/2 (mean over global pairs + mean over local pairs). */
    private static double officialAverage(int views, PairLoss pair) {
        double large = 0;
        double small = 0;
        int nLarge = 0;
        int nSmall = 0;
        for (int t = 0; t < 2; t++) {
            for (int s = 0; s < views; s++) {
                if (s == t) {
                    continue;
                }
                if (s < 2) {
                    large += pair.of(t, s);
                    nLarge++;
                } else {
                    small += pair.of(t, s);
                    nSmall++;
                }
            }
        }
        return nSmall == 0 ? large / nLarge : 0.5 * (large / nLarge + small / nSmall);
    }

    /** The reference's InfoNCE pair loss: a [B, K+1] logit matrix, cross-entropy with label 0. */
    private static double officialInfoNce(double[][] q, double[][] z, double[][] queue, int views, int b, double tau) {
        return officialAverage(views, (t, s) -> {
            double pair = 0;
            for (int n = 0; n < b; n++) {
                double[] qs = q[s * b + n];
                double[] logits = new double[queue.length + 1];
                logits[0] = Plain.dot(qs, z[t * b + n]) / tau;
                for (int k = 0; k < queue.length; k++) {
                    logits[k + 1] = Plain.dot(qs, queue[k]) / tau;
                }
                pair += -Plain.logSoftmax(logits)[0] / b;
            }
            return pair;
        });
    }

    /** The reference's DINO pair loss. */
    private static double officialGroupLoss(double[][] studentLogits, double[][] teacherProbs, int views, int b,
                                            double tauS) {
        return officialAverage(views, (t, s) -> {
            double pair = 0;
            for (int n = 0; n < b; n++) {
                double[] scaled = studentLogits[s * b + n].clone();
                for (int j = 0; j < scaled.length; j++) {
                    scaled[j] /= tauS;
                }
                pair += -Plain.dot(teacherProbs[t * b + n], Plain.logSoftmax(scaled)) / b;
            }
            return pair;
        });
    }

    @Test
    void infoNceMatchesTheReferenceForOneToFourLocalCrops() {
        int b = 3;
        int dim = 5;
        for (int views : new int[] {2, 3, 6}) {
            SameDiff sd = SameDiff.create();
            SDVariable q = sd.placeHolder("q", D, -1, dim);
            SDVariable z = sd.placeHolder("z", D, -1, dim);
            SDVariable queue = sd.placeHolder("queue", D, -1, dim);
            MultiCropPairing pairing = new MultiCropPairing(views, MultiCropPairing.Weighting.OFFICIAL);
            SDVariable loss = InfoNceLoss.build(sd, q, z, queue, dim, pairing, 0.2);
            INDArray qIn = Plain.unitRows(1 + views, (long) views * b, dim);
            INDArray zIn = Plain.unitRows(2, 2L * b, dim);
            INDArray queueIn = Plain.unitRows(3, 11, dim);
            double actual = sd.output(Map.of("q", qIn, "z", zIn, "queue", queueIn), loss.name()).get(loss.name())
                    .getDouble(0);
            double expected = officialInfoNce(Plain.matrix(qIn), Plain.matrix(zIn), Plain.matrix(queueIn), views, b,
                    0.2);
            assertEquals(expected, actual, 1e-10, "views " + views);
        }
    }

    @Test
    void groupLossMatchesTheReference() {
        int b = 2;
        int m = 7;
        for (int views : new int[] {2, 5}) {
            MultiCropPairing pairing = new MultiCropPairing(views, MultiCropPairing.Weighting.OFFICIAL);
            SameDiff sd = SameDiff.create();
            SDVariable logits = sd.placeHolder("s", D, -1, m);
            SDVariable targets = sd.placeHolder("w", D, -1, m);
            SDVariable loss = GroupLoss.build(sd, logits, targets, pairing, 0.1);
            INDArray student = Plain.randn(4, (long) views * b, m);
            INDArray teacherLogits = Plain.randn(5, 2L * b, m);
            GroupCentre centre = new GroupCentre(Plain.randn(6, 1, m).muli(0.1), 0.9);
            INDArray probs = centre.targets(teacherLogits, 0.04);
            double actual = sd.output(Map.of("s", student, "w", GroupLoss.targets(probs, pairing)), loss.name())
                    .get(loss.name()).getDouble(0);
            assertEquals(officialGroupLoss(Plain.matrix(student), Plain.matrix(probs), views, b, 0.1), actual, 1e-10);
        }
    }

    @Test
    void centringAndTemperatureFollowTheirFormulas() {
        INDArray logits = Plain.randn(7, 4, 3);
        GroupCentre centre = new GroupCentre(3, 0.9, D);
        INDArray p = centre.targets(logits, 0.5);
        double[][] o = Plain.matrix(logits);
        for (int n = 0; n < 4; n++) {
            double z = 0;
            for (int j = 0; j < 3; j++) {
                z += Math.exp(o[n][j] / 0.5);
            }
            for (int j = 0; j < 3; j++) {
                assertEquals(Math.exp(o[n][j] / 0.5) / z, p.getDouble(n, j), 1e-12);
            }
        }
        centre.update(logits);
        centre.update(logits.mul(2));
        for (int j = 0; j < 3; j++) {
            double mean = 0;
            for (int n = 0; n < 4; n++) {
                mean += o[n][j] / 4;
            }
            // c1 = 0.1 mean; c2 = 0.9 c1 + 0.1 (2 mean)
            assertEquals(0.9 * 0.1 * mean + 0.1 * 2 * mean, centre.contents().getDouble(0, j), 1e-12);
        }
        TeacherTemperatureSchedule tau = new TeacherTemperatureSchedule(0.04, 0.07, 30);
        assertEquals(0.04, tau.at(0), 1e-15);
        assertEquals(0.04 + 0.03 * 10 / 29, tau.at(10), 1e-15);
        assertEquals(0.07, tau.at(29), 1e-15);
        assertEquals(0.07, tau.at(300), 1e-15);
        assertEquals(0.04, new TeacherTemperatureSchedule(0.04, 0.04, 0).at(0), 1e-15);
    }

    @Test
    void pairingWeights() {
        MultiCropPairing official = new MultiCropPairing(12, MultiCropPairing.Weighting.OFFICIAL);
        assertEquals(0.0, official.weight(0, 0));
        assertEquals(0.25, official.weight(0, 1));
        assertEquals(0.25, official.weight(1, 0));
        assertEquals(0.5 / 20, official.weight(1, 7), 1e-15);
        double sum = 0;
        for (double[] row : official.weights()) {
            for (double w : row) {
                sum += w;
            }
        }
        assertEquals(1.0, sum, 1e-12);
        assertEquals(1.0 / 22, new MultiCropPairing(12, MultiCropPairing.Weighting.UNIFORM).weight(0, 5), 1e-15);
        // Zero local crops: the global pairs carry everything (the reference divides by zero here).
        assertEquals(0.5, new MultiCropPairing(2, MultiCropPairing.Weighting.OFFICIAL).weight(1, 0));
        assertThrows(IllegalArgumentException.class, () -> new MultiCropPairing(1, MultiCropPairing.Weighting.OFFICIAL));
    }

    @Test
    void combinationAndAblations() {
        SameDiff sd = SameDiff.create();
        SDVariable a = sd.constant(Nd4j.scalar(2.0));
        SDVariable b = sd.constant(Nd4j.scalar(4.0));
        SDVariable c = sd.constant(Nd4j.scalar(9.0));
        assertEquals(5.0, LossWeights.defaults().combine(a, b, c).eval().getDouble(0), 1e-12);
        // Official: weights only switch and divide: (2 + 9) / (1 + 3).
        assertEquals(11.0 / 4, new LossWeights(1, 0, 3, LossWeights.Combination.OFFICIAL).combine(a, null, c).eval()
                .getDouble(0), 1e-12);
        assertEquals(2 + 27.0, new LossWeights(1, 0, 3, LossWeights.Combination.WEIGHTED).combine(a, null, c).eval()
                .getDouble(0), 1e-12);
        assertEquals(9.0, new LossWeights(0, 0, 1, LossWeights.Combination.OFFICIAL).combine(null, null, c).eval()
                .getDouble(0), 1e-12);
        var e = assertThrows(IllegalArgumentException.class,
                () -> new LossWeights(1, 1, 0, LossWeights.Combination.OFFICIAL).combine(a, null, null));
        assertTrue(e.getMessage().contains("local-group"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> new LossWeights(0, 0, 0, LossWeights.Combination.OFFICIAL));
    }

    /** Central differences of the scalar {@code loss} with respect to sampled entries of {@code vars}. */
    static void checkGradients(SameDiff sd, SDVariable loss, Map<String, INDArray> feed, List<String> vars) {
        sd.setLossVariables(loss);
        Map<String, INDArray> grads = Gradients.bySameDiff(sd, feed, vars);
        for (String v : vars) {
            INDArray w = sd.getArrForVarName(v);
            for (int k = 0; k < Math.min(6, w.length()); k++) {
                long idx = (k * 7919L + v.length()) % w.length();
                double orig = w.getDouble(idx);
                w.putScalar(idx, orig + 1e-6);
                double up = sd.output(feed, loss.name()).get(loss.name()).getDouble(0);
                w.putScalar(idx, orig - 1e-6);
                double down = sd.output(feed, loss.name()).get(loss.name()).getDouble(0);
                w.putScalar(idx, orig);
                double numeric = (up - down) / 2e-6;
                double analytic = grads.get(v).getDouble(idx);
                assertEquals(numeric, analytic, 1e-6 + 1e-5 * Math.abs(numeric), v + "[" + idx + "]");
            }
        }
    }

    @Test
    void gradientsThroughInfoNceAndTheInstanceHead() {
        SameDiff sd = SameDiff.create();
        int views = 4;
        ProjectionHead head = new ProjectionHead(sd, "h.", new ProjectionHead.Options(6, 8, 5, 7, false), D, 1);
        SDVariable x = sd.var("x", Plain.randn(2, views * 2L, 6));
        SDVariable q = head.studentPrediction(x);
        SDVariable z = sd.placeHolder("z", D, -1, 5);
        SDVariable queue = sd.placeHolder("queue", D, -1, 5);
        SDVariable loss = InfoNceLoss.build(sd, q, z, queue, 5,
                new MultiCropPairing(views, MultiCropPairing.Weighting.OFFICIAL), 0.2);
        Map<String, INDArray> feed = new HashMap<>(Map.of("z", Plain.unitRows(3, 4, 5), "queue",
                Plain.unitRows(4, 9, 5)));
        List<String> vars = new java.util.ArrayList<>(head.parameterNames());
        vars.add("x");
        checkGradients(sd, loss, feed, vars);
    }

    @Test
    void gradientsThroughTheGroupLossAndHead() {
        for (boolean normLastLayer : new boolean[] {true, false}) {
            SameDiff sd = SameDiff.create();
            GroupHead head = new GroupHead(sd, "g.", new GroupHead.Options(6, 8, 4, 7, normLastLayer, true), D, 1);
            SDVariable x = sd.var("x", Plain.randn(2, 3 * 2L, 6));
            SDVariable targets = sd.placeHolder("w", D, -1, 7);
            MultiCropPairing pairing = new MultiCropPairing(3, MultiCropPairing.Weighting.OFFICIAL);
            SDVariable loss = GroupLoss.build(sd, head.logits(x), targets, pairing, 0.1);
            INDArray probs = new GroupCentre(7, 0.9, D).targets(Plain.randn(5, 4, 7), 0.5);
            Map<String, INDArray> feed = new HashMap<>(Map.of("w", GroupLoss.targets(probs, pairing)));
            List<String> vars = new java.util.ArrayList<>(head.parameterNames());
            vars.add("x");
            checkGradients(sd, loss, feed, vars);
        }
    }
}
