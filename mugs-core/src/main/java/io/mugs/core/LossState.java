package io.mugs.core;

import io.mugs.data.MultiCropBatch;
import io.mugs.io.StateDict;
import io.mugs.losses.FeatureQueue;
import io.mugs.losses.GroupCentre;
import io.mugs.losses.GroupLoss;
import io.mugs.losses.MultiCropPairing;
import io.mugs.losses.NeighbourMemory;
import java.util.Map;
import java.util.Optional;
import java.util.stream.IntStream;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;

/**
 * What the three Mugs losses carry from one step to the next (reference §2): the two InfoNCE queues of teacher keys
 * (instance and local-group, {@code [queueSize, instanceOut]}), the two neighbour memories of patch means (student
 * and teacher, {@code [memorySize, D]}) and the group centre ({@code [1, prototypes]}). A step reads them as the
 * graphs' feeds ({@link #teacherFeed}, {@link #studentFeed}) and writes them once, in its phase 6 ({@link #update});
 * they go into the trainer's checkpoints under {@code instance_queue/}, {@code local_group_queue/}, {@code
 * student_memory/}, {@code teacher_memory/} and {@code centre/}.
 *
 * <pre>{@code
 * LossState state = new LossState(config);
 * MugsModel.TeacherFeed feed = state.teacherFeed(batch);
 * state.update(batch, allTeacher, allStudent);   // after the update and the EMA
 * }</pre>
 */
final class LossState {

    private final MugsConfig config;
    private final FeatureQueue instanceQueue;
    private final FeatureQueue localGroupQueue;
    private final NeighbourMemory studentMemory;
    private final NeighbourMemory teacherMemory;
    private final GroupCentre centre;
    private final MultiCropPairing pairing;

    /**
     * Queues of random unit rows and memories of N(0, 1) rows, as the reference starts them, and a zero centre; the
     * seeds are the recipe's seed plus 11 to 14.
     */
    LossState(MugsConfig config) {
        this.config = config;
        long seed = config.seed();
        DataType f = DataType.FLOAT;
        this.instanceQueue = new FeatureQueue(config.queueSize(), config.instanceOut(), f, seed + 11);
        this.localGroupQueue = new FeatureQueue(config.queueSize(), config.instanceOut(), f, seed + 12);
        int d = config.vit().embedDim();
        this.studentMemory = new NeighbourMemory(config.memorySize(), d, config.neighbours(),
                config.officialPointerQuirk(), f, seed + 13);
        this.teacherMemory = new NeighbourMemory(config.memorySize(), d, config.neighbours(),
                config.officialPointerQuirk(), f, seed + 14);
        this.centre = new GroupCentre(config.prototypes(), config.centreMomentum(), f);
        this.pairing = new MultiCropPairing(config.studentViews(), config.pairing());
    }

    /** The teacher graph's inputs for {@code batch}: its views and, with the local-group loss, the teacher memory. */
    MugsModel.TeacherFeed teacherFeed(MultiCropBatch batch) {
        return new MugsModel.TeacherFeed(batch.teacherGlobals(), config.lossWeights().localGroupEnabled()
                ? Optional.of(memoryFeed(teacherMemory)) : Optional.empty());
    }

    private static MugsModel.MemoryFeed memoryFeed(NeighbourMemory memory) {
        return new MugsModel.MemoryFeed(memory.contents(), memory.normalisedContents());
    }

    /**
     * The student graph's inputs: views, the teacher's keys with their queues, the student memory, the group targets
     * (the centred, sharpened teacher logits at {@code temperature}) and the drop-path masks.
     */
    MugsModel.StudentFeed studentFeed(MultiCropBatch batch, TeacherOutputs teacher, Map<String, INDArray> masks,
                                      double temperature) {
        return new MugsModel.StudentFeed(batch.studentGlobals(), Optional.ofNullable(batch.locals()),
                teacher.instanceKeys().map(k -> new MugsModel.KeysFeed(k, instanceQueue.contents())),
                teacher.localGroupKeys().map(k -> new MugsModel.KeysFeed(k, localGroupQueue.contents())),
                teacher.localGroupKeys().map(k -> memoryFeed(studentMemory)),
                teacher.groupLogits().map(logits -> GroupLoss.targets(centre.targets(logits, temperature), pairing)),
                masks);
    }

    /**
     * Phase 6, state: enqueue the teacher keys, write both memories (teacher: view 0 of every image; student: view 0
     * of the weak images), update the centre. {@code teacher} and {@code student} cover the whole batch.
     */
    void update(MultiCropBatch batch, TeacherOutputs teacher, StudentOutputs student) {
        int b = batch.batchSize();
        teacher.instanceKeys().ifPresent(instanceQueue::enqueue);
        teacher.localGroupKeys().ifPresent(keys -> {
            localGroupQueue.enqueue(keys);
            teacherMemory.write(teacher.patchMean().get(NDArrayIndex.interval(0, b), NDArrayIndex.all()));
            int[] weak = IntStream.range(0, b).filter(i -> batch.weakFlags()[i]).toArray();
            if (weak.length > 0) {
                studentMemory.write(Nd4j.pullRows(student.patchMean(), 1, weak));
            }
        });
        teacher.groupLogits().ifPresent(centre::update);
    }

    /** Puts both queues, both memories and the centre into {@code into}, each under its own scope. */
    void saveState(StateDict into) {
        instanceQueue.saveState(into.scope("instance_queue"));
        localGroupQueue.saveState(into.scope("local_group_queue"));
        studentMemory.saveState(into.scope("student_memory"));
        teacherMemory.saveState(into.scope("teacher_memory"));
        centre.saveState(into.scope("centre"));
    }

    /**
     * Loads what {@link #saveState} wrote. It checks each object's names and shapes as it loads it: the trainer checks
     * the whole state first, so that nothing changes when anything is off.
     */
    void loadState(StateDict from) {
        instanceQueue.loadState(from.scope("instance_queue"));
        localGroupQueue.loadState(from.scope("local_group_queue"));
        studentMemory.loadState(from.scope("student_memory"));
        teacherMemory.loadState(from.scope("teacher_memory"));
        centre.loadState(from.scope("centre"));
    }

    FeatureQueue instanceQueue() {
        return instanceQueue;
    }

    FeatureQueue localGroupQueue() {
        return localGroupQueue;
    }

    NeighbourMemory studentMemory() {
        return studentMemory;
    }

    NeighbourMemory teacherMemory() {
        return teacherMemory;
    }

    GroupCentre centre() {
        return centre;
    }
}
