package io.mugs.losses;

import io.mugs.io.StateDict;
import io.mugs.io.Stateful;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.ops.transforms.Transforms;

/**
 * The centre c of the teacher's group logits (DINO centring; reference §3.3), state kept outside the graph.
 * <pre>
 *   targets:  p_t = softmax((o_t - c) / tau_t)        using c before this step's update
 *   update:   c <- momentum * c + (1 - momentum) * mean_n o_t     (momentum 0.9, over both teacher views)
 * </pre>
 *
 * <pre>{@code
 * GroupCentre centre = new GroupCentre(65_536, 0.9, DataType.FLOAT);
 * INDArray p = centre.targets(teacherLogits, schedule.at(epoch));
 * ... step ...
 * centre.update(teacherLogits);
 * }</pre>
 */
public final class GroupCentre implements Stateful {

    private final INDArray centre;
    private final double momentum;

    public GroupCentre(int prototypes, double momentum, DataType type) {
        this(Nd4j.zeros(type, 1, prototypes), momentum);
    }

    /** Restores a centre [1, m] from a checkpoint. */
    public GroupCentre(INDArray centre, double momentum) {
        if (momentum < 0 || momentum >= 1) {
            throw new IllegalArgumentException("centre momentum must be in [0, 1), got " + momentum);
        }
        this.centre = centre.dup().reshape(1, centre.length());
        this.momentum = momentum;
    }

    /** [1, m]; a live view, do not modify. */
    public INDArray contents() {
        return centre;
    }

    public double momentum() {
        return momentum;
    }

    /** Teacher targets softmax((o - c) / temperature), [N, m]. */
    public INDArray targets(INDArray teacherLogits, double temperature) {
        INDArray shifted = teacherLogits.subRowVector(centre.castTo(teacherLogits.dataType())).divi(temperature);
        return Transforms.softmax(shifted, false);
    }

    /** {@code centre [1, m]}. */
    @Override
    public void saveState(StateDict into) {
        into.putTensor("centre", centre);
    }

    @Override
    public void loadState(StateDict from) {
        centre.assign(from.tensor("centre", centre.shape()));
    }

    /** c <- momentum c + (1 - momentum) mean over rows of {@code teacherLogits [N, m]}. */
    public void update(INDArray teacherLogits) {
        INDArray batchMean = teacherLogits.mean(0).reshape(1, centre.length()).castTo(centre.dataType());
        centre.muli(momentum).addi(batchMean.muli(1 - momentum));
    }
}
