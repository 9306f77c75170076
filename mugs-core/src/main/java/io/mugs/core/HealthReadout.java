package io.mugs.core;

import io.mugs.core.health.CollapseWatch;
import io.mugs.core.health.TrainingHealth;
import io.mugs.losses.FeatureQueue;
import io.mugs.losses.GroupCentre;
import java.util.Optional;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * The training step's label-free health read-out (docs/training-health.md): every {@code every}-th step it
 * measures a {@link TrainingHealth} from a step's outputs, before the state changes, and shows every reading to a
 * {@link CollapseWatch}, which logs one WARN when a collapse signature appears.
 *
 * <pre>{@code
 * HealthReadout h = new HealthReadout(config, instanceQueue, centre);
 * Optional<TrainingHealth> r = h.due(iteration) ? Optional.of(h.measure(t, s, temperature, iteration, warm))
 *         : Optional.empty();
 * }</pre>
 */
final class HealthReadout {

    private final MugsConfig config;
    private final FeatureQueue instanceQueue;
    private final GroupCentre centre;
    private final CollapseWatch watch;
    private int every = MugsTrainer.HEALTH_EVERY;

    HealthReadout(MugsConfig config, FeatureQueue instanceQueue, GroupCentre centre) {
        this.config = config;
        this.instanceQueue = instanceQueue;
        this.centre = centre;
        this.watch = new CollapseWatch(config.lossWeights().instanceEnabled() ? config.instanceOut()
                : config.vit().embedDim(), config.lossWeights().groupEnabled() ? config.prototypes() : 0);
    }

    void every(int n) {
        if (n < 1) {
            throw new IllegalArgumentException("the health read-out needs a cadence >= 1 step, got " + n);
        }
        every = n;
    }

    int every() {
        return every;
    }

    /** Whether step {@code iteration} (counted from 0) is read. */
    boolean due(long iteration) {
        return (iteration + 1) % every == 0;
    }

    /**
     * The health of one step from one replica's shard of its outputs: the teacher's instance keys and the student's
     * predictions (or, without the instance loss, the mean patch tokens), the group loss's teacher probabilities with
     * the centre and {@code temperature} of this step, and the instance queue as fed.
     *
     * @param warm whether the teacher-temperature warm-up is over (the watch judges the group head only then)
     */
    TrainingHealth measure(TeacherOutputs teacher, StudentOutputs student, double temperature, long iteration,
                           boolean warm) {
        boolean instance = teacher.instanceKeys().isPresent() && student.instancePrediction().isPresent();
        INDArray t = instance ? teacher.instanceKeys().get() : teacher.patchMean();
        INDArray s = instance ? student.instancePrediction().get() : student.patchMean();
        TrainingHealth h = TrainingHealth.measure(t, s,
                teacher.groupLogits().map(logits -> centre.targets(logits, temperature)),
                student.groupLogits(), config.studentTemp(),
                instance ? Optional.of(instanceQueue.contents()) : Optional.empty());
        watch.observeAndLog(new CollapseWatch.Reading(iteration, h.teacherStd(), h.teacherRank(),
                h.teacherEntropyOfMean(), h.teacherMeanEntropy(), warm));
        return h;
    }
}
