package io.mugs.losses;

import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.ops.impl.controlflow.compat.StopGradient;
import org.nd4j.linalg.factory.Nd4j;

/**
 * Mugs' instance and local-group discrimination loss (paper Eq. 2 and 3; reference §3.1): InfoNCE with the positive
 * in the denominator and negatives only from a queue of teacher keys, over the multi-crop pairs.
 * <pre>
 *   l(t, s) = 1/B sum_n -log( exp(q_sn . z_tn / tau) / (exp(q_sn . z_tn / tau) + sum_k exp(q_sn . Q_k / tau)) )
 *   L = sum_(t,s) w(t,s) l(t,s)            (w from {@link MultiCropPairing})
 * </pre>
 * The negative term {@code log sum_k exp(q_sn . Q_k / tau)} depends only on the student view, so it is computed
 * once per view ([V*B, K] logits) instead of once per pair (the reference builds 22 [B, K+1] matrices); the
 * result is the same number.
 *
 * <p>Shapes: student predictions q [V*B, d] (unit rows, views stacked view-major), teacher keys z [2*B, d] (unit
 * rows, no gradient), queue Q [K, d]. Temperature 0.2 in the reference.
 *
 * <pre>{@code
 * SDVariable loss = InfoNceLoss.build(sd, q, sd.placeHolder("z", FLOAT, -1, 256),
 *                                     sd.placeHolder("queue", FLOAT, -1, 256), 256, pairing, 0.2);
 * }</pre>
 */
public final class InfoNceLoss {

    private InfoNceLoss() {
    }

    /**
     * @param dim key width d
     * @return the scalar loss
     */
    public static SDVariable build(SameDiff sd, SDVariable studentQueries, SDVariable teacherKeys, SDVariable queue,
                                   int dim, MultiCropPairing pairing, double temperature) {
        if (temperature <= 0) {
            throw new IllegalArgumentException("temperature must be positive, got " + temperature);
        }
        int v = pairing.studentViews();
        SDVariable negatives = sd.mmul(studentQueries, queue, false, true, false).div(temperature);   // [V*B, K]
        SDVariable negLse = sd.reshape(logSumExp(sd, negatives), v, -1);                            // [V, B]
        SDVariable q3 = sd.reshape(studentQueries, v, -1, dim);                                     // [V, B, d]
        SDVariable[] keys = sd.split(sd.reshape(teacherKeys, MultiCropPairing.TEACHER_VIEWS, -1, dim),
                MultiCropPairing.TEACHER_VIEWS, 0);                                                  // 2 x [1, B, d]
        double[][] w = pairing.weights();
        SDVariable total = null;
        for (int t = 0; t < MultiCropPairing.TEACHER_VIEWS; t++) {
            SDVariable positive = q3.mul(keys[t]).sum(2).div(temperature);                          // [V, B]
            SDVariable perSample = logAddExp(sd, positive, negLse).sub(positive);                   // [V, B]
            SDVariable perView = perSample.mean(1);                                                 // [V]
            SDVariable weights = sd.constant(Nd4j.createFromArray(w[t]).castTo(studentQueries.dataType()));
            SDVariable term = perView.mul(weights).sum();
            total = total == null ? term : total.add(term);
        }
        return total;
    }

    /** log(sum(exp(x), 1)) with a max shift; ND4J's logSumExp(x, dim) has no backward in 1.0.0-M2.1. [N, M] -> [N]. */
    static SDVariable logSumExp(SameDiff sd, SDVariable x) {
        SDVariable m = stopGradient(sd, x.max(true, 1));
        return sd.reshape(m.add(sd.math.log(sd.math.exp(x.sub(m)).sum(true, 1))), -1);
    }

    /** log(exp(a) + exp(b)) elementwise, stable. */
    static SDVariable logAddExp(SameDiff sd, SDVariable a, SDVariable b) {
        SDVariable m = stopGradient(sd, sd.math.max(a, b));
        return m.add(sd.math.log(sd.math.exp(a.sub(m)).add(sd.math.exp(b.sub(m)))));
    }

    static SDVariable stopGradient(SameDiff sd, SDVariable x) {
        return new StopGradient(sd, x).outputVariable();
    }
}
