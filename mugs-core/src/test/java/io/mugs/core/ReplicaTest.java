package io.mugs.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.mugs.data.MultiCropBatch;
import io.mugs.data.MultiCropLoader;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;

/** Data-parallel replicas in one JVM: N replicas on B/N images each compute what one replica computes on B. */
class ReplicaTest {

    /** Tiny (batch 8) without batch norm in the heads; the batch-norm tests below take Tiny as it is. */
    private static MugsConfig config() {
        return Tiny.config().toBuilder().useBnInHead(false).build();
    }

    private static MugsTrainer trainer(int replicas) {
        return new MugsTrainer(config(), RunSettings.defaults().withReplicas(replicas), 3);
    }

    /** Every state tensor of a trainer by name: student and teacher parameters, queues, memories, centre. */
    private static Map<String, INDArray> state(MugsTrainer t) {
        Map<String, INDArray> out = new LinkedHashMap<>();
        t.model().studentParameters().forEach((k, v) -> out.put("student/" + k, v));
        t.model().teacherParameters().forEach((k, v) -> out.put("teacher/" + k, v));
        out.put("instance_queue", t.instanceQueue().contents());
        out.put("local_group_queue", t.localGroupQueue().contents());
        out.put("student_memory", t.studentMemory().contents());
        out.put("teacher_memory", t.teacherMemory().contents());
        out.put("centre", t.centre().contents());
        return out;
    }

    /**
     * The largest {@code ||a - b|| / ||b||} over the state tensors. The key part of every {@code attn.qkv.bias} is
     * left out: its gradient is zero in exact arithmetic (softmax ignores a shift shared by all keys), so AdamW turns
     * the float rounding of that zero into steps of size lr, differently for every summation order.
     */
    private static double relativeDifference(MugsTrainer a, MugsTrainer b) {
        return relativeDifference(a, b, Set.of());
    }

    /** As above, without the parameters named in {@code skip} (in the student and the teacher). */
    private static double relativeDifference(MugsTrainer a, MugsTrainer b, Set<String> skip) {
        return relativeDifference(state(a), state(b), skip);
    }

    private static double relativeDifference(Map<String, INDArray> sa, Map<String, INDArray> sb, Set<String> skip) {
        assertEquals(sa.keySet(), sb.keySet());
        double worst = 0;
        for (String k : sa.keySet()) {
            if (skip.contains(k.substring(k.indexOf('/') + 1))) {
                continue;
            }
            INDArray x = withoutKeyBias(k, sa.get(k));
            INDArray y = withoutKeyBias(k, sb.get(k));
            double norm = y.norm2Number().doubleValue();
            double diff = x.sub(y).norm2Number().doubleValue();
            worst = Math.max(worst, norm == 0 ? diff : diff / norm);
        }
        return worst;
    }

    private static INDArray withoutKeyBias(String name, INDArray x) {
        if (!name.endsWith("attn.qkv.bias")) {
            return x;
        }
        long d = x.length() / 3;
        return Nd4j.concat(0, x.get(NDArrayIndex.interval(0, d)), x.get(NDArrayIndex.interval(2 * d, 3 * d)));
    }

    private static List<Double> run(MugsTrainer trainer, MultiCropLoader loader, int from, int to) {
        List<Double> losses = new ArrayList<>();
        for (int i = from; i < to; i++) {
            MultiCropBatch batch = loader.batch(i / 3, i % 3);
            losses.add(trainer.step(batch).loss());
        }
        return losses;
    }

    @Test
    void twoReplicasOnFourImagesEachMatchOneReplicaOnEightAfterThreeSteps() {
        try (MultiCropLoader loader = Tiny.loader(config())) {
            MugsTrainer one = trainer(1);
            MugsTrainer two = trainer(2);
            assertEquals(2, two.localReplicas());
            Map<String, INDArray> before = new LinkedHashMap<>();
            state(one).forEach((k, v) -> before.put(k, v.dup()));
            List<Double> lossOne = run(one, loader, 0, 3);
            List<Double> lossTwo = run(two, loader, 0, 3);
            for (int i = 0; i < 3; i++) {
                assertEquals(lossOne.get(i), lossTwo.get(i), 1e-5 * Math.abs(lossOne.get(i)), "loss of step " + i);
            }
            double rel = relativeDifference(two, one);
            System.out.println("two replicas vs one, largest relative difference: " + rel);
            assertTrue(rel < 1e-5, "largest relative difference " + rel);
            // Every part of the state moved, so the comparison above is not between two untouched states.
            state(one).forEach((k, v) -> {
                if (!k.startsWith("student/group_head.last_layer") && !k.startsWith("teacher/group_head.last_layer")) {
                    assertTrue(v.sub(before.get(k)).amaxNumber().doubleValue() > 0, k + " unchanged after 3 steps");
                }
            });
            assertEquals(one.studentMemory().pointer(), two.studentMemory().pointer());
            assertEquals(one.teacherMemory().pointer(), two.teacherMemory().pointer());
            assertEquals(one.instanceQueue().pointer(), two.instanceQueue().pointer());
        }
    }

    /**
     * With batch norm, a shift added to every row before it cancels: the biases of the linears right before a
     * batch norm, and the backbone's final norm bias (every head starts with a linear and a batch norm), have a zero
     * gradient in exact arithmetic ({@link #batchNormGradientsOfTwoReplicasAreThoseOfOneReplica} checks it), so
     * AdamW turns float rounding into steps of size lr there, as for the key bias.
     */
    private static final Set<String> SHIFTS_A_BATCH_NORM_REMOVES = Set.of("backbone.norm.bias",
            "group_head.projector.0.bias", "group_head.projector.3.bias");

    @Test
    void twoReplicasWithBatchNormInTheHeadsMatchOneReplicaAfterTwoSteps() {
        // Tiny is a fashion-mnist preset: batch norm in the projectors of the student and the teacher heads, whose
        // batch statistics must be those of the whole batch on every replica (ReplicaMean).
        MugsConfig bn = Tiny.config();
        assertTrue(bn.useBnInHead());
        try (MultiCropLoader loader = Tiny.loader(bn)) {
            MugsTrainer one = new MugsTrainer(bn, RunSettings.defaults(), 3);
            MugsTrainer two = new MugsTrainer(bn, RunSettings.defaults().withReplicas(2), 3);
            Map<String, INDArray> before = new LinkedHashMap<>();
            state(one).forEach((k, v) -> before.put(k, v.dup()));
            List<Double> lossOne = run(one, loader, 0, 1);
            List<Double> lossTwo = run(two, loader, 0, 1);
            double rel = relativeDifference(two, one, SHIFTS_A_BATCH_NORM_REMOVES);
            lossOne.addAll(run(one, loader, 1, 2));
            lossTwo.addAll(run(two, loader, 1, 2));
            double second = relativeDifference(two, one, SHIFTS_A_BATCH_NORM_REMOVES);
            System.out.println("batch norm in the heads, two replicas vs one: losses " + lossTwo + " vs " + lossOne
                    + ", largest relative difference of the state after one step " + rel + ", after two " + second);
            for (int i = 0; i < 2; i++) {
                assertEquals(lossOne.get(i), lossTwo.get(i), 1e-5 * Math.abs(lossOne.get(i)), "loss of step " + i);
            }
            assertTrue(rel < 1e-5, "largest relative difference after one step " + rel);
            // The second step's forward reads backbone.norm.bias, whose rounding-driven first steps differ (see
            // above): the features the neighbour memory stores then differ by about 2e-5 of their norm.
            assertTrue(second < 1e-4, "largest relative difference after two steps " + second);
            for (String norm : List.of("student/instance_head.projector.1.weight",
                    "student/group_head.projector.4.bias", "teacher/local_group_head.projector.1.weight")) {
                assertTrue(state(one).get(norm).sub(before.get(norm)).amaxNumber().doubleValue() > 0,
                        norm + " unchanged after 2 steps");
            }
        }
    }

    @Test
    void batchNormGradientsOfTwoReplicasAreThoseOfOneReplica() {
        MugsConfig bn = Tiny.config();
        try (MultiCropLoader loader = Tiny.loader(bn)) {
            MultiCropBatch batch = loader.batch(0, 0);
            List<Map<String, INDArray>> averaged = new ArrayList<>();
            for (int n : new int[] {1, 2}) {
                MugsTrainer t = new MugsTrainer(bn, RunSettings.defaults().withReplicas(n), 3);
                DropPathMasks masks = t.dropPathMasks(batch.batchSize());
                List<TeacherOutputs> teacher = t.teacherForward(batch);
                List<StudentOutputs> student = t.studentGradients(batch, teacher, masks, t.teacherTemperature(0));
                Map<String, INDArray> g = new LinkedHashMap<>();
                t.collectives(teacher, student).student().gradients().forEach((k, v) -> g.put(k, v.dup()));
                averaged.add(g);
            }
            Map<String, INDArray> one = averaged.get(0);
            double all = Math.sqrt(one.values().stream().mapToDouble(g -> Math.pow(g.norm2Number().doubleValue(), 2))
                    .sum());
            for (String k : one.keySet()) {
                double norm = one.get(k).norm2Number().doubleValue();
                double diff = one.get(k).sub(averaged.get(1).get(k)).norm2Number().doubleValue();
                if (SHIFTS_A_BATCH_NORM_REMOVES.contains(k)) {
                    assertTrue(norm < 1e-6 * all, k + ": gradient " + norm + " is not rounding-sized");
                    assertTrue(diff < 1e-6 * all, k + ": differs by " + diff);
                } else {
                    assertTrue(diff < 1e-5 * norm, k + ": differs by " + diff + " of " + norm);
                }
            }
        }
    }

    @Test
    void replicasWithUnequalBatchesAreRefusedAtTheFirstBatchNormOnEveryReplica() throws Exception {
        // Two "processes" whose batches differ (8 and 4 images): their first collective is the teacher's first batch
        // mean, where every replica sees the unequal row counts and refuses them, none waiting for the other.
        List<io.mugs.core.parallel.Communicator> world = io.mugs.core.parallel.InJvmCommunicator.group(2);
        MugsConfig eight = Tiny.config();
        MugsConfig four = eight.toBuilder().batchSize(4).build();
        RunSettings two = RunSettings.defaults().withReplicas(2);
        List<MugsTrainer> ranks = List.of(new MugsTrainer(eight, two, 3, world.get(0)),
                new MugsTrainer(four, two, 3, world.get(1)));
        var pool = java.util.concurrent.Executors.newFixedThreadPool(2);
        try (MultiCropLoader l8 = Tiny.loader(eight); MultiCropLoader l4 = Tiny.loader(four)) {
            var f0 = pool.submit(() -> ranks.get(0).step(l8.batch(0, 0)));
            var f1 = pool.submit(() -> ranks.get(1).step(l4.batch(0, 0)));
            for (var f : List.of(f0, f1)) {
                var e = assertThrows(java.util.concurrent.ExecutionException.class,
                        () -> f.get(60, java.util.concurrent.TimeUnit.SECONDS));
                assertTrue(e.getCause() instanceof IllegalArgumentException, String.valueOf(e.getCause()));
            }
            assertEquals("batch norm over replicas needs as many rows on every replica: replica 0 has 8, the mean over "
                    + "the 2 replicas is 6.0; give every replica an equal share of the batch",
                    causeOf(f0));
            assertEquals("batch norm over replicas needs as many rows on every replica: replica 1 has 4, the mean over "
                    + "the 2 replicas is 6.0; give every replica an equal share of the batch", causeOf(f1));
        } finally {
            pool.shutdownNow();
        }
    }

    @Test
    void aReplicaThatFailsWakesTheOtherFromItsBatchNormCollectiveAndTheNextStepRuns() {
        MugsConfig bn = Tiny.config();
        try (MultiCropLoader loader = Tiny.loader(bn)) {
            MugsTrainer two = new MugsTrainer(bn, RunSettings.defaults().withReplicas(2), 3);
            MultiCropBatch batch = loader.batch(0, 0);
            List<TeacherOutputs> teacher = two.teacherForward(batch);
            TeacherOutputs t1 = teacher.get(1);
            // Replica 1's group logits have the wrong width: it fails before its student graph runs, while replica 0
            // waits in the student's first batch-norm collective.
            TeacherOutputs broken = new TeacherOutputs(t1.patchMean(), t1.instanceKeys(), t1.localGroupKeys(),
                    java.util.Optional.of(Nd4j.zeros(t1.patchMean().dataType(), 4, 3)));
            RuntimeException e = org.junit.jupiter.api.Assertions.assertTimeoutPreemptively(
                    java.time.Duration.ofSeconds(60), () -> assertThrows(RuntimeException.class,
                            () -> two.studentGradients(batch, List.of(teacher.get(0), broken),
                                    two.dropPathMasks(batch.batchSize()), two.teacherTemperature(0))));
            assertTrue(!String.valueOf(e.getMessage()).startsWith("replica group"),
                    "the replica that failed says why: " + e.getMessage());
            double loss = two.step(batch).loss();   // a fresh group: the batch norms meet again
            assertTrue(Double.isFinite(loss), "loss " + loss);
        }
    }

    private static String causeOf(java.util.concurrent.Future<?> f) {
        try {
            f.get();
            return "no failure";
        } catch (Exception e) {
            return e.getCause().getMessage();
        }
    }

    @Test
    void batchNormWithReplicasOnTheSameDiffSessionIsRefusedAtTheStart() {
        String before = System.getProperty("mugs.engine");
        System.setProperty("mugs.engine", "samediff");
        try {
            var e = assertThrows(IllegalStateException.class,
                    () -> new MugsTrainer(Tiny.config(), RunSettings.defaults().withReplicas(2), 3));
            assertEquals("batch means over replicas (batch norm with replicas > 1) run on the planned engine only, "
                    + "not on SameDiff's session: remove -Dmugs.engine=samediff, or turn off useBnInHead, or use one "
                    + "replica", e.getMessage());
            new MugsTrainer(config(), RunSettings.defaults().withReplicas(2), 3);   // no batch norm: no collective
        } finally {
            if (before == null) {
                System.clearProperty("mugs.engine");
            } else {
                System.setProperty("mugs.engine", before);
            }
        }
    }

    @Test
    void replicasShareOneSetOfParameterArrays() {
        try (MultiCropLoader loader = Tiny.loader(config())) {
            MugsTrainer two = trainer(2);
            run(two, loader, 0, 1);
            MugsModel first = two.replicaModel(0);
            MugsModel second = two.replicaModel(1);
            assertSame(two.model(), first);
            Map<String, INDArray> s1 = second.studentParameters();
            first.studentParameters().forEach((k, v) -> assertSame(v, s1.get(k), k));
            Map<String, INDArray> t1 = second.teacherParameters();
            first.teacherParameters().forEach((k, v) -> assertSame(v, t1.get(k), k));
            assertEquals(first.studentParameters().size(), s1.size());
            assertEquals(first.teacherParameters().size(), t1.size());
        }
    }

    @Test
    void aBatchThatDoesNotSplitEvenlyNamesTheRemainder() {
        MugsConfig ten = Tiny.config().toBuilder().batchSize(10).build();
        var e = assertThrows(IllegalArgumentException.class,
                () -> new MugsTrainer(ten, RunSettings.defaults().withReplicas(4), 3));
        assertEquals("Invalid run settings: batchSize 10 does not split evenly over 4 replicas (remainder 2): make "
                + "batchSize a multiple of replicas, e.g. 8 or 12", e.getMessage());
        var zero = assertThrows(IllegalArgumentException.class, () -> RunSettings.defaults().withReplicas(0));
        assertEquals("Invalid run settings: replicas must be >= 1, got 0", zero.getMessage());
    }

    @Test
    void replicasAreARunSettingThatTheRecipeDoesNotHold() {
        MugsConfig cfg = config();
        assertEquals(cfg.toJson(), MugsConfig.fromJson(cfg.toJson()).toJson());
        assertTrue(!cfg.toJson().contains("replicas") && !cfg.toJson().contains("workers"), cfg.toJson());
        assertEquals(4, RunSettings.defaults().with("replicas=4").replicas());
        assertEquals(new RunSettings(3, 2), RunSettings.defaults().with("workers=3", "replicas=2"));
        var e = assertThrows(IllegalArgumentException.class, () -> cfg.with("replicas=4"));
        assertTrue(e.getMessage().contains("no field 'replicas'"), e.getMessage());
        var half = assertThrows(IllegalArgumentException.class, () -> RunSettings.defaults().with("replicas=1.5"));
        assertEquals("'replicas=1.5': replicas must be an integer, got '1.5'", half.getMessage());
    }

    @Test
    void aCheckpointOfTwoReplicasResumesWithOneAndWithTwo(@TempDir Path dir) throws IOException {
        try (MultiCropLoader loader = Tiny.loader(config())) {
            MugsTrainer straight = trainer(2);
            run(straight, loader, 0, 2);
            Path file = RunCheckpoints.save(dir, straight, 2);
            run(straight, loader, 2, 3);

            MugsTrainer withTwo = trainer(2);
            RunCheckpoints.restore(file, withTwo);
            run(withTwo, loader, 2, 3);
            assertEquals(0.0, relativeDifference(withTwo, straight), "same replicas: the same bits");

            MugsTrainer withOne = trainer(1);
            RunCheckpoints.restore(file, withOne);
            assertEquals(2, withOne.iteration());
            run(withOne, loader, 2, 3);
            double rel = relativeDifference(withOne, straight);
            System.out.println("resumed with one replica vs two, largest relative difference: " + rel);
            assertTrue(rel < 1e-5, "largest relative difference " + rel);
        }
    }

    @Test
    void twoProcessesWithTheirOwnStateStayIdenticalAndMatchOneReplica() throws Exception {
        // Each "process" is a trainer with one local replica and its own state, joined by a communicator as the
        // NCCL path joins processes; here the in-JVM one, each trainer stepping in a thread of its own.
        List<io.mugs.core.parallel.Communicator> world = io.mugs.core.parallel.InJvmCommunicator.group(2);
        try (MultiCropLoader loader = Tiny.loader(config())) {
            MugsTrainer one = trainer(1);
            run(one, loader, 0, 3);
            List<MugsTrainer> ranks = List.of(new MugsTrainer(config(), RunSettings.defaults().withReplicas(2), 3,
                    world.get(0)), new MugsTrainer(config(), RunSettings.defaults().withReplicas(2), 3, world.get(1)));
            assertEquals(1, ranks.get(0).localReplicas());
            var pool = java.util.concurrent.Executors.newFixedThreadPool(2);
            try {
                List<java.util.concurrent.Future<List<Double>>> losses = new ArrayList<>();
                for (MugsTrainer t : ranks) {
                    losses.add(pool.submit(() -> run(t, loader, 0, 3)));
                }
                assertEquals(losses.get(0).get(), losses.get(1).get());
            } finally {
                pool.shutdownNow();
            }
            assertEquals(0.0, relativeDifference(ranks.get(0), ranks.get(1)), "every process holds the same state");
            double rel = relativeDifference(ranks.get(0), one);
            System.out.println("two processes vs one replica, largest relative difference: " + rel);
            assertTrue(rel < 1e-5, "largest relative difference " + rel);
        }
    }
}
