package io.mugs.core.health;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Optional;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;

/**
 * The label-free health of one training step, read from that step's own outputs by {@link RepresentationHealth}
 * (docs/training-health.md): for the teacher and the student, the standard deviation per dimension of the
 * L2-normalised embeddings and their effective rank; the group head's entropy of the mean and mean entropy (teacher:
 * the probabilities the group loss uses, after centring and the teacher temperature; student: softmax of its logits
 * at the student temperature); the teacher-student prototype agreement; the instance loss's mean positive and
 * hardest-negative cosine similarity. A value whose loss is switched off is NaN and is left out of
 * {@link #metrics()}.
 *
 * <p>Rows are the two global views, view-major ({@code [2B, ...]}: view 0 of every image, then view 1). A student
 * view is compared with the teacher's other view of the same image, the pair the losses train (student view 0 with
 * teacher view 1 and the reverse).
 *
 * <pre>{@code
 * TrainingHealth h = TrainingHealth.measure(teacherKeys, studentPredictions, Optional.of(teacherProbs),
 *         Optional.of(studentLogits), 0.1, Optional.of(queue));
 * Map<String, Double> row = h.metrics();   // health_teacher_std, health_teacher_rank, ...
 * }</pre>
 *
 * @param teacherStd           mean std per dimension of the teacher's L2-normalised embeddings (healthy ~ 1/sqrt(d))
 * @param studentStd           the same for the student
 * @param teacherRank          effective rank of the teacher's embeddings (1 = a line; up to min(2B - 1, d))
 * @param studentRank          the same for the student
 * @param teacherEntropyOfMean entropy (nats) of the teacher's batch-mean prototype distribution (high is healthy)
 * @param teacherMeanEntropy   mean entropy (nats) of the teacher's per-image prototype distributions (low is healthy)
 * @param studentEntropyOfMean the same as {@code teacherEntropyOfMean} for the student
 * @param studentMeanEntropy   the same as {@code teacherMeanEntropy} for the student
 * @param agreement            fraction of images whose highest prototype is the same for the student and the teacher
 * @param positive             mean cosine of a student prediction and its teacher key
 * @param hardestNegative      mean over predictions of the largest cosine with a key in the instance queue
 * @param millis               time the read-out took on the host
 */
public record TrainingHealth(double teacherStd, double studentStd, double teacherRank, double studentRank,
                             double teacherEntropyOfMean, double teacherMeanEntropy, double studentEntropyOfMean,
                             double studentMeanEntropy, double agreement, double positive, double hardestNegative,
                             double millis) {

    /** The metrics.jsonl key prefix of every read-out. */
    public static final String PREFIX = "health_";

    /**
     * The read-outs of one step.
     *
     * @param teacherEmbeddings  the teacher's embeddings of the two global views [2B, d]
     * @param studentEmbeddings  the student's embeddings of its two global views [2B, d]
     * @param teacherProbs       the group loss's teacher probabilities [2B, P] (centred, sharpened), if it is on
     * @param studentLogits      the student's group logits for its global views [2B, P], if the group loss is on
     * @param studentTemperature the group loss's student temperature
     * @param queue              the instance loss's queue of negatives [Q, d] as fed this step, if it is on (then the
     *                           embeddings are the instance keys and predictions)
     */
    public static TrainingHealth measure(INDArray teacherEmbeddings, INDArray studentEmbeddings,
                                         Optional<INDArray> teacherProbs, Optional<INDArray> studentLogits,
                                         double studentTemperature, Optional<INDArray> queue) {
        long start = System.nanoTime();
        double tStd = RepresentationHealth.stdPerDimension(teacherEmbeddings);
        double sStd = RepresentationHealth.stdPerDimension(studentEmbeddings);
        double tRank = RepresentationHealth.effectiveRank(teacherEmbeddings);
        double sRank = RepresentationHealth.effectiveRank(studentEmbeddings);
        double nan = Double.NaN;
        double[] group = {nan, nan, nan, nan, nan};
        if (teacherProbs.isPresent() && studentLogits.isPresent()) {
            INDArray t = teacherProbs.get();
            INDArray s = softmax(studentLogits.get(), studentTemperature);
            group = new double[] {RepresentationHealth.entropyOfMean(t), RepresentationHealth.meanEntropy(t),
                    RepresentationHealth.entropyOfMean(s), RepresentationHealth.meanEntropy(s),
                    RepresentationHealth.agreement(crossed(t), s)};
        }
        double[] instance = queue.map(q -> RepresentationHealth.positiveAndHardestNegative(studentEmbeddings,
                crossed(teacherEmbeddings), q)).orElse(new double[] {nan, nan});
        return new TrainingHealth(tStd, sStd, tRank, sRank, group[0], group[1], group[2], group[3], group[4],
                instance[0], instance[1], (System.nanoTime() - start) / 1e6);
    }

    /** The read-outs as flat metrics.jsonl fields ({@code health_teacher_std}, ...), NaN ones left out. */
    public Map<String, Double> metrics() {
        Map<String, Double> m = new LinkedHashMap<>();
        put(m, "teacher_std", teacherStd);
        put(m, "student_std", studentStd);
        put(m, "teacher_rank", teacherRank);
        put(m, "student_rank", studentRank);
        put(m, "teacher_entropy_of_mean", teacherEntropyOfMean);
        put(m, "teacher_mean_entropy", teacherMeanEntropy);
        put(m, "student_entropy_of_mean", studentEntropyOfMean);
        put(m, "student_mean_entropy", studentMeanEntropy);
        put(m, "agreement", agreement);
        put(m, "positive", positive);
        put(m, "hardest_negative", hardestNegative);
        put(m, "ms", millis);
        return m;
    }

    private static void put(Map<String, Double> m, String name, double value) {
        if (!Double.isNaN(value)) {
            m.put(PREFIX + name, value);
        }
    }

    /** The rows of the other view of each image: [v1; v0] for [v0; v1] ([2B, d] -> [2B, d]). */
    static INDArray crossed(INDArray twoViews) {
        long b = twoViews.size(0) / 2;
        if (twoViews.size(0) != 2 * b) {
            throw new IllegalArgumentException("expected the two global views [2B, d], got " + twoViews.size(0)
                    + " rows");
        }
        return Nd4j.concat(0, twoViews.get(NDArrayIndex.interval(b, 2 * b), NDArrayIndex.all()),
                twoViews.get(NDArrayIndex.interval(0, b), NDArrayIndex.all()));
    }

    /** Row-wise softmax(x / temperature) in double precision: [N, P] -> [N, P]. */
    static INDArray softmax(INDArray logits, double temperature) {
        double[][] x = logits.castTo(org.nd4j.linalg.api.buffer.DataType.DOUBLE).toDoubleMatrix();
        for (double[] row : x) {
            double max = Double.NEGATIVE_INFINITY;
            for (double v : row) {
                max = Math.max(max, v / temperature);
            }
            double sum = 0;
            for (int k = 0; k < row.length; k++) {
                row[k] = Math.exp(row[k] / temperature - max);
                sum += row[k];
            }
            for (int k = 0; k < row.length; k++) {
                row[k] /= sum;
            }
        }
        return Nd4j.createFromArray(x);
    }
}
