package io.mugs.core;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.UnaryOperator;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * Phase 3 of {@link MugsTrainer#step}, the collectives (docs/data-parallel.md): on every replica at once, the
 * gradients and losses averaged over all replicas (in place), and the teacher outputs and student patch means
 * ({@code [2b, ·]} per replica, b = B/N images) all-gathered into single-replica order ({@code [2B, ·]}, view-major).
 * With one replica in all, nothing moves: the outputs themselves.
 *
 * <pre>{@code
 * StepCollectives.Gathered all = StepCollectives.run(replicas, teacherShards, studentShards);
 * replicas.release(all.gatheredArrays());   // once the state is updated
 * }</pre>
 */
final class StepCollectives {

    /** A step's teacher and student outputs for the whole batch, and the arrays the collectives made for them. */
    record Gathered(TeacherOutputs teacher, StudentOutputs student, List<INDArray> gatheredArrays) {
    }

    private StepCollectives() {
    }

    /**
     * Averages and gathers {@code teacher} and {@code student} (one per local replica, in replica order) on every
     * replica at once. Returns replica 0's view (every replica's is the same).
     */
    static Gathered run(Replicas replicas, List<TeacherOutputs> teacher, List<StudentOutputs> student) {
        return replicas.run(r -> {
            StudentOutputs s = student.get(r);
            List<String> lossNames = List.copyOf(s.losses().keySet());
            INDArray losses = Nd4j.create(DataType.DOUBLE, lossNames.size());
            for (int i = 0; i < lossNames.size(); i++) {
                losses.putScalar(i, s.losses().get(lossNames.get(i)));
            }
            List<INDArray> reduced = new ArrayList<>(s.gradients().values());
            reduced.add(losses);
            replicas.allReduceMean(r, reduced);
            Map<String, Double> lossValues = new LinkedHashMap<>();
            for (int i = 0; i < lossNames.size(); i++) {
                lossValues.put(lossNames.get(i), losses.getDouble(i));
            }
            List<INDArray> gathered = new ArrayList<>();
            UnaryOperator<INDArray> gather = x -> {
                INDArray g = replicas.gatherViews(r, x);
                gathered.add(g);
                return g;
            };
            TeacherOutputs t = teacher.get(r);
            TeacherOutputs allTeacher = new TeacherOutputs(gather.apply(t.patchMean()), t.instanceKeys().map(gather),
                    t.localGroupKeys().map(gather), t.groupLogits().map(gather));
            StudentOutputs allStudent = new StudentOutputs(lossValues, s.gradients(), gather.apply(s.patchMean()));
            return new Gathered(allTeacher, allStudent, gathered);
        }).get(0);
    }
}
