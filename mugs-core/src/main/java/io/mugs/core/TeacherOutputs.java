package io.mugs.core;

import java.util.Optional;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * What the teacher hands the student in one step (reference §2.2): the loss targets of the enabled losses and the
 * values the state updates need. A loss that is switched off has no target here ({@link Optional#empty()}).
 *
 * <p>Straight from a replica's teacher pass, the arrays are that replica's executor's and are overwritten by its next
 * teacher forward; after the collectives of a step with several replicas they are gathered copies in single-replica
 * order, freed at the end of the step. Either way they live for one step.
 *
 * @param patchMean      mean final-LN patch token of each teacher view [2B, D] (the neighbour memories' keys)
 * @param instanceKeys   instance-discrimination keys, L2-normalised [2B, K] (the instance loss and its queue)
 * @param localGroupKeys local-group keys, L2-normalised [2B, K] (the local-group loss and its queue)
 * @param groupLogits    prototype logits [2B, P] (the group loss's targets and the centre)
 */
public record TeacherOutputs(INDArray patchMean, Optional<INDArray> instanceKeys, Optional<INDArray> localGroupKeys,
                             Optional<INDArray> groupLogits) {
}
