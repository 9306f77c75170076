package io.mugs.core;

import io.mugs.engine.ParameterKernels;
import java.util.Map;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.ops.impl.transforms.pairwise.arithmetic.Axpy;
import org.nd4j.linalg.factory.Nd4j;

/**
 * The EMA teacher update (reference §2.4, §6): {@code theta_t <- m theta_t + (1 - m) theta_s} for every teacher
 * parameter (backbone including the aggregator and final norm, projectors, group head; the student's predictors
 * have no teacher counterpart), with m on a per-iteration cosine schedule 0.996 -> 1. One pass per tensor on the
 * CPU backend ({@link ParameterKernels#ema}), ND4J's ops otherwise.
 *
 * <pre>{@code
 * TeacherEma.update(teacherParams, studentParams, momentum[it]);
 * }</pre>
 */
public final class TeacherEma {

    private TeacherEma() {
    }

    /** Updates each teacher array in place from the student array of the same name. */
    public static void update(Map<String, INDArray> teacher, Map<String, INDArray> student, double momentum) {
        for (Map.Entry<String, INDArray> e : teacher.entrySet()) {
            INDArray s = student.get(e.getKey());
            if (s == null) {
                throw new IllegalStateException("teacher parameter " + e.getKey() + " has no student counterpart");
            }
            INDArray t = e.getValue();
            if (ParameterKernels.covers(t, s)) {
                ParameterKernels.ema(t, s, momentum);
                continue;
            }
            // t <- m t + (1 - m) s, in place (Axpy: z = a x + y).
            Nd4j.exec(new Axpy(s, t.muli(momentum), t, 1 - momentum));
        }
    }
}
