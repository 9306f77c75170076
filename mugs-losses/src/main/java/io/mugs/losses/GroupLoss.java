package io.mugs.losses;

import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * Mugs' group discrimination loss (paper Eq. 4; DINO's loss, reference §3.3): cross-entropy between the centred,
 * sharpened teacher distribution over m prototypes and the student's, over the multi-crop pairs.
 * <pre>
 *   p_t = softmax((o_t - c) / tau_t)          (teacher, computed in Java: {@link GroupCentre#targets})
 *   l(t, s) = 1/B sum_n sum_j -p_t[n, j] log softmax(o_s / tau_s)[n, j]
 *   L = sum_(t,s) w(t,s) l(t,s)
 * </pre>
 * Because l is linear in p_t, the pairs collapse into one target per student view,
 * {@code W_s = sum_t w(t,s) p_t} ({@link #targets}), fed as a placeholder [V*B, m]:
 * {@code L = -1/B sum(W . log softmax(o / tau_s))}. Student temperature 0.1 in the reference.
 *
 * <pre>{@code
 * SDVariable w = sd.placeHolder("group_targets", FLOAT, -1, m);
 * SDVariable loss = GroupLoss.build(sd, studentLogits, w, pairing, 0.1);
 * feed.put("group_targets", GroupLoss.targets(centre.targets(teacherLogits, tau), pairing));
 * }</pre>
 */
public final class GroupLoss {

    private GroupLoss() {
    }

    /**
     * @param studentLogits [V*B, m], views stacked view-major
     * @param targets       {@link #targets} [V*B, m]
     */
    public static SDVariable build(SameDiff sd, SDVariable studentLogits, SDVariable targets, MultiCropPairing pairing,
                                   double studentTemperature) {
        if (studentTemperature <= 0) {
            throw new IllegalArgumentException("student temperature must be positive, got " + studentTemperature);
        }
        SDVariable logProbs = sd.nn.logSoftmax(studentLogits.div(studentTemperature));
        // -1/B sum = -V * mean over the V*B rows of the row sums.
        return targets.mul(logProbs).sum(1).mean().mul(-pairing.studentViews());
    }

    /**
     * Per-student-view targets {@code W_s = sum_t w(t,s) p_t}.
     *
     * @param teacherProbs [2*B, m], teacher view 0 rows first
     * @return [V*B, m]
     */
    public static INDArray targets(INDArray teacherProbs, MultiCropPairing pairing) {
        long b = teacherProbs.size(0) / MultiCropPairing.TEACHER_VIEWS;
        long m = teacherProbs.size(1);
        INDArray p0 = teacherProbs.get(org.nd4j.linalg.indexing.NDArrayIndex.interval(0, b),
                org.nd4j.linalg.indexing.NDArrayIndex.all());
        INDArray p1 = teacherProbs.get(org.nd4j.linalg.indexing.NDArrayIndex.interval(b, 2 * b),
                org.nd4j.linalg.indexing.NDArrayIndex.all());
        int v = pairing.studentViews();
        INDArray out = org.nd4j.linalg.factory.Nd4j.create(teacherProbs.dataType(), v * b, m);
        for (int s = 0; s < v; s++) {
            INDArray rows = out.get(org.nd4j.linalg.indexing.NDArrayIndex.interval(s * b, (s + 1) * b),
                    org.nd4j.linalg.indexing.NDArrayIndex.all());
            rows.assign(p0.mul(pairing.weight(0, s)).addi(p1.mul(pairing.weight(1, s))));
        }
        return out;
    }
}
