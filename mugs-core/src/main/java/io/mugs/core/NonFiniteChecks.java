package io.mugs.core;

import java.util.Map;
import java.util.Set;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * Where a training step stops on a non-finite number, and the one line it tells the user: a NaN or infinite loss
 * (after the collectives, before anything changes: {@link NonFiniteLossException}) and a NaN or infinite student
 * parameter (after the update, before the teacher EMA spreads it: {@link NonFiniteWeightsException}). Either way the
 * newest checkpoint is intact and the message says what to lower before resuming.
 *
 * <pre>{@code
 * NonFiniteChecks.requireFiniteLoss(losses, iteration, epoch);
 * NonFiniteChecks.requireFiniteParameters(studentParams, updatedNames, iteration, lr);
 * }</pre>
 */
final class NonFiniteChecks {

    private NonFiniteChecks() {
    }

    /** A non-finite loss ({@link MugsModel#LOSS} of {@code losses}) stops training before anything changes. */
    static void requireFiniteLoss(Map<String, Double> losses, long iteration, int epoch) {
        double loss = losses.get(MugsModel.LOSS);
        if (!Double.isFinite(loss)) {
            throw new NonFiniteLossException("loss is " + loss + " at iteration " + iteration + " (epoch " + epoch
                    + "; components " + losses + "): training stopped before the update; the last checkpoint is "
                    + "intact. Lower the learning rate or raise the warm-up, and resume.");
        }
    }

    /** After the update: a NaN or infinite student parameter stops training before the EMA spreads it. */
    static void requireFiniteParameters(Map<String, INDArray> studentParams, Set<String> names, long iteration,
                                        double lr) {
        for (String name : names) {
            double sum = studentParams.get(name).sumNumber().doubleValue();   // NaN/Inf iff an element is (or overflow)
            if (!Double.isFinite(sum)) {
                throw new NonFiniteWeightsException("student parameter '" + name + "' became NaN or infinite "
                        + "in the update of iteration " + iteration + " (lr " + lr
                        + ") although the loss was finite: training stopped before the teacher and the state were "
                        + "updated; the newest checkpoint is intact. Lower the learning rate and resume.");
            }
        }
    }
}
