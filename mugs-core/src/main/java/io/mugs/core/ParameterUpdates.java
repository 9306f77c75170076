package io.mugs.core;

import io.mugs.engine.optim.AdamW;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * Phases 4 and 5 of {@link MugsTrainer#step}, what changes the parameters (reference §2.4, §6): the student's AdamW
 * step after per-tensor clipping (the last layer left alone while it is frozen), then the teacher's EMA
 * {@code θt ← m θt + (1 − m) θs}. Both deal the tensors to the local replicas' threads ({@link Replicas#deal});
 * replica 0's arrays are every replica's, so each tensor is updated once. After its part of the update each thread
 * checks the student tensors it changed ({@link NonFiniteChecks}), so that a NaN or infinity stops training before
 * the EMA spreads it.
 *
 * <pre>{@code
 * ParameterUpdates p = new ParameterUpdates(replicas, optimizer, config.clipGrad(), student, teacher, lastLayer);
 * int clipped = p.student(gradients, lr[it], weightDecay[it], lastLayerFrozen, iteration);
 * p.teacherEma(momentum[it]);
 * }</pre>
 */
final class ParameterUpdates {

    private final Replicas replicas;
    private final AdamW optimizer;
    private final double clipGrad;
    private final Map<String, INDArray> studentParams;
    private final Map<String, INDArray> teacherParams;
    private final Set<String> lastLayer;

    /**
     * The updates of replica 0's parameters (every replica's): {@code studentParams} with {@code optimizer},
     * {@code teacherParams} by EMA; {@code lastLayer} names the student tensors frozen at the start.
     */
    ParameterUpdates(Replicas replicas, AdamW optimizer, double clipGrad, Map<String, INDArray> studentParams,
                     Map<String, INDArray> teacherParams, Set<String> lastLayer) {
        this.replicas = replicas;
        this.optimizer = optimizer;
        this.clipGrad = clipGrad;
        this.studentParams = studentParams;
        this.teacherParams = teacherParams;
        this.lastLayer = lastLayer;
    }

    /**
     * Phase 4: clips each gradient to norm {@code clipGrad} (0: no clipping) and takes the AdamW step at
     * {@code lr} and {@code weightDecay}, leaving the last layer as it is while {@code freezeLastLayer}. Returns how
     * many tensors were clipped.
     *
     * @throws NonFiniteWeightsException when a student parameter became NaN or infinite ({@code iteration} and
     *                                   {@code lr} are in its message)
     */
    int student(Map<String, INDArray> gradients, double lr, double weightDecay, boolean freezeLastLayer,
                long iteration) {
        List<Map<String, INDArray>> parts = replicas.deal(gradients);
        return replicas.run(r -> {
            List<String> clipped = optimizer.step(parts.get(r), lr, weightDecay, clipGrad,
                    name -> freezeLastLayer && lastLayer.contains(name));
            NonFiniteChecks.requireFiniteParameters(studentParams, parts.get(r).keySet(), iteration, lr);
            return clipped.size();
        }).stream().mapToInt(Integer::intValue).sum();
    }

    /** Phase 5, EMA: {@code θt ← m θt + (1 − m) θs}, the teacher's tensors dealt to the local replicas' threads. */
    void teacherEma(double momentum) {
        List<Map<String, INDArray>> parts = replicas.deal(teacherParams);
        replicas.run(r -> {
            TeacherEma.update(parts.get(r), studentParams, momentum);
            return r;
        });
    }
}
