package io.mugs.core;

import java.util.Map;
import java.util.Optional;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * The student's side of one step: loss values, the gradient of every student parameter and the mean patch token of
 * the student's global views (the student memory's keys). The gradients belong to a replica's student executor and
 * are overwritten by its next student pass (after the collectives they hold the average over the replicas); the
 * patch means are, with several replicas, gathered copies freed at the end of the step.
 *
 * @param losses    {@code loss} first, then each enabled component ({@code loss_instance}, ...)
 * @param gradients parameter name -> gradient (the update clips them in place)
 * @param patchMean          [2B, D]
 * @param instancePrediction the instance head's predictions for the two global views [2B, K] (L2-normalised; with
 *                           the instance loss), read by the training-health read-outs
 * @param groupLogits        the group head's logits for the two global views [2B, P] (with the group loss), read by
 *                           the training-health read-outs
 */
public record StudentOutputs(Map<String, Double> losses, Map<String, INDArray> gradients, INDArray patchMean,
                             Optional<INDArray> instancePrediction, Optional<INDArray> groupLogits) {

    /** Outputs without the health read-outs' values. */
    public StudentOutputs(Map<String, Double> losses, Map<String, INDArray> gradients, INDArray patchMean) {
        this(losses, gradients, patchMean, Optional.empty(), Optional.empty());
    }
}
