package io.mugs.core;

import io.mugs.io.SafeTensors;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.mugs.data.MultiCropBatch;
import io.mugs.data.MultiCropLoader;
import io.mugs.losses.LossWeights;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.ndarray.INDArray;

class TrainerTest {

    private static Map<String, INDArray> snapshot(Map<String, INDArray> params) {
        Map<String, INDArray> copy = new HashMap<>();
        params.forEach((k, v) -> copy.put(k, v.dup()));
        return copy;
    }

    private static double maxDiff(Map<String, INDArray> a, Map<String, INDArray> b) {
        double m = 0;
        for (String k : a.keySet()) {
            m = Math.max(m, a.get(k).sub(b.get(k)).amaxNumber().doubleValue());
        }
        return m;
    }

    @Test
    void stepsLowerTheLossAndTheTeacherFollowsByEma() {
        MugsConfig cfg = Tiny.config().toBuilder().lr(0.02).epochs(1).build();
        try (MultiCropLoader loader = Tiny.loader(cfg)) {
            MugsTrainer trainer = new MugsTrainer(cfg, 40);
            MultiCropBatch batch = loader.batch(0, 0);
            double first = trainer.step(batch).loss();
            double last = first;
            for (int i = 1; i < 12; i++) {
                Map<String, INDArray> teacherBefore = snapshot(trainer.model().teacherParameters());
                StepResult r = trainer.step(batch);
                last = r.loss();
                if (i == 11) {
                    Map<String, INDArray> student = trainer.model().studentParameters();
                    for (var e : trainer.model().teacherParameters().entrySet()) {
                        INDArray expected = teacherBefore.get(e.getKey()).mul(r.momentum())
                                .add(student.get(e.getKey()).mul(1 - r.momentum()));
                        assertTrue(expected.equalsWithEps(e.getValue(), 1e-6), e.getKey());
                    }
                }
            }
            assertTrue(last < first - 0.05, "loss " + first + " -> " + last);
        }
    }

    @Test
    void resumingGivesTheSameWeightsAsTrainingStraight(@TempDir Path dir) throws IOException {
        MugsConfig cfg = Tiny.config();
        try (MultiCropLoader loader = Tiny.loader(cfg)) {
            MugsTrainer straight = new MugsTrainer(cfg, 3);
            for (int i = 0; i < 4; i++) {
                straight.step(loader.batch(i / 3, i % 3));
            }
            MugsTrainer first = new MugsTrainer(cfg, 3);
            for (int i = 0; i < 2; i++) {
                first.step(loader.batch(i / 3, i % 3));
            }
            first.setTrainingSeconds(12.5);
            Path file = RunCheckpoints.save(dir, first, 2);
            MugsTrainer resumed = new MugsTrainer(RunCheckpoints.config(file), 3);
            RunCheckpoints.restore(file, resumed);
            assertEquals(2, resumed.iteration());
            assertEquals(12.5, resumed.trainingSeconds(), 0);
            for (int i = 2; i < 4; i++) {
                resumed.step(loader.batch(i / 3, i % 3));
            }
            assertTrue(maxDiff(straight.model().studentParameters(), resumed.model().studentParameters()) < 1e-6);
            assertTrue(maxDiff(straight.model().teacherParameters(), resumed.model().teacherParameters()) < 1e-6);
            assertTrue(straight.instanceQueue().contents().equalsWithEps(resumed.instanceQueue().contents(), 1e-6));
            assertEquals(straight.studentMemory().pointer(), resumed.studentMemory().pointer());
            assertTrue(straight.centre().contents().equalsWithEps(resumed.centre().contents(), 1e-6));
        }
    }

    @Test
    void lastLayerStaysFrozenInTheFirstEpoch() {
        MugsConfig cfg = Tiny.config().toBuilder().freezeLastLayer(1).build();
        try (MultiCropLoader loader = Tiny.loader(cfg)) {
            MugsTrainer trainer = new MugsTrainer(cfg, 2);
            String v = "group_head.last_layer.weight_v";
            INDArray before = trainer.model().studentParameters().get(v).dup();
            INDArray projectorBefore = trainer.model().studentParameters().get("group_head.projector.0.weight").dup();
            trainer.step(loader.batch(0, 0));
            trainer.step(loader.batch(0, 1));
            assertEquals(before, trainer.model().studentParameters().get(v), "frozen during epoch 0");
            assertFalse(projectorBefore.equals(trainer.model().studentParameters().get("group_head.projector.0.weight")));
            trainer.step(loader.batch(1, 0));
            assertFalse(before.equals(trainer.model().studentParameters().get(v)), "trained from epoch 1");
        }
    }

    @Test
    void timeBudgetStopsWithACheckpointAndTheNextFitResumesMidEpoch(@TempDir Path dir) throws IOException {
        MugsConfig cfg = Tiny.config();   // batch 8, 2 epochs: 24 images give 3 steps per epoch
        io.mugs.data.ImageSource src = Tiny.images(24);
        Path metrics = dir.resolve("metrics.jsonl");
        MugsTrainer first = Pretraining.fit(cfg, src, dir, java.util.List.of(MugsListeners.timeBudget(1e-9),
                MugsListeners.metrics(metrics), MugsListeners.checkpoints(dir, 3)));
        assertEquals(1, first.iteration(), "the step that crosses the budget completes, then the fit stops");
        assertTrue(Files.exists(dir.resolve("checkpoint-000000001.safetensors")));
        MugsTrainer second = Pretraining.fit(cfg, src, dir, java.util.List.of(MugsListeners.metrics(metrics),
                MugsListeners.checkpoints(dir, 3)));
        assertEquals(6, second.iteration());
        assertTrue(second.trainingSeconds() > first.trainingSeconds());
        var lines = Files.readAllLines(metrics);
        assertEquals(6, lines.size());
        double previous = 0;
        for (int i = 0; i < 6; i++) {
            var n = new com.fasterxml.jackson.databind.ObjectMapper().readTree(lines.get(i));
            assertEquals(i, n.get("iteration").asInt());
            assertTrue(n.get("train_s").asDouble() > previous, "train_s grows across the resume");
            previous = n.get("train_s").asDouble();
        }
        var e = assertThrows(IllegalArgumentException.class, () -> MugsListeners.timeBudget(0));
        assertTrue(e.getMessage().contains("positive minutes"), e.getMessage());
    }

    @Test
    void nonFiniteLossStopsBeforeTheUpdateAndKeepsTheCheckpoint(@TempDir Path dir) throws IOException {
        MugsConfig cfg = Tiny.config();
        try (MultiCropLoader loader = Tiny.loader(cfg)) {
            MugsTrainer trainer = new MugsTrainer(cfg, 3);
            trainer.step(loader.batch(0, 0));
            Path file = RunCheckpoints.save(dir, trainer, 3);
            byte[] saved = Files.readAllBytes(file);
            trainer.model().studentParameters().get("backbone.norm.weight").assign(Double.NaN);
            Map<String, INDArray> before = snapshot(trainer.model().teacherParameters());
            var e = assertThrows(NonFiniteLossException.class, () -> trainer.step(loader.batch(0, 1)));
            assertTrue(e.getMessage().contains("iteration 1"), e.getMessage());
            assertEquals(1, trainer.iteration());
            assertEquals(0.0, maxDiff(before, trainer.model().teacherParameters()), "no EMA after a failed step");
            assertArrayEquals(saved, Files.readAllBytes(file));
        }
    }

    @Test
    void corruptedCheckpointGivesAClearError(@TempDir Path dir) throws IOException {
        MugsConfig cfg = Tiny.config();
        MugsTrainer trainer = new MugsTrainer(cfg, 3);
        Path file = RunCheckpoints.save(dir, trainer, 3);
        byte[] bytes = Files.readAllBytes(file);
        Files.write(file, java.util.Arrays.copyOf(bytes, bytes.length / 2));
        var e = assertThrows(IOException.class, () -> RunCheckpoints.restore(file, new MugsTrainer(cfg, 3)));
        assertTrue(e.getMessage().contains(file.toString()) && e.getMessage().contains("truncated"), e.getMessage());
        RunCheckpoints.save(dir, trainer, 3);
        var other = new MugsTrainer(cfg.toBuilder().studentTemp(cfg.studentTemp() / 2).build(), 3);
        var mismatch = assertThrows(IOException.class,
                () -> RunCheckpoints.restore(RunCheckpoints.latest(dir).orElseThrow(), other));
        assertTrue(mismatch.getMessage().contains("another configuration (it differs in studentTemp)"),
                mismatch.getMessage());
    }

    @Test
    void keepsTheNewestCheckpointsWithAManifest(@TempDir Path dir) throws IOException {
        MugsConfig cfg = Tiny.config();
        try (MultiCropLoader loader = Tiny.loader(cfg)) {
            MugsTrainer trainer = new MugsTrainer(cfg, 3);
            for (int i = 0; i < 3; i++) {
                trainer.step(loader.batch(0, i));
                RunCheckpoints.save(dir, trainer, 2);
            }
            assertEquals(2, RunCheckpoints.list(dir).size());
            assertTrue(RunCheckpoints.latest(dir).orElseThrow().getFileName().toString().contains("000000003"));
            var meta = io.mugs.io.SafeTensors.read(RunCheckpoints.latest(dir).orElseThrow()).metadata();
            assertTrue(meta.get("manifest").contains("\"backend\"") && meta.get("manifest").contains("\"jvm\""));
        }
    }

    @Test
    void everyLossCanBeSwitchedOffAndZeroLocalCropsWork() {
        for (LossWeights w : new LossWeights[] {new LossWeights(0, 1, 1, LossWeights.Combination.OFFICIAL),
            new LossWeights(1, 0, 1, LossWeights.Combination.OFFICIAL),
            new LossWeights(1, 1, 0, LossWeights.Combination.OFFICIAL),
            new LossWeights(0, 0, 1, LossWeights.Combination.OFFICIAL)}) {
            MugsConfig cfg = Tiny.config().toBuilder().lossWeights(w).build();
            try (MultiCropLoader loader = Tiny.loader(cfg)) {
                StepResult r = new MugsTrainer(cfg, 3).step(loader.batch(0, 0));
                assertEquals(w.instanceEnabled(), r.losses().containsKey(MugsModel.LOSS_INSTANCE));
                assertEquals(w.groupEnabled(), r.losses().containsKey(MugsModel.LOSS_GROUP));
                assertTrue(Double.isFinite(r.loss()));
            }
        }
        MugsConfig noLocals = Tiny.config().toBuilder().crops(io.mugs.data.MultiCropConfig.builder().channels(1)
                .globalSize(28).localSize(14).localCrops(0).mean(0.286).std(0.353).build()).build();
        try (MultiCropLoader loader = Tiny.loader(noLocals)) {
            assertTrue(Double.isFinite(new MugsTrainer(noLocals, 3).step(loader.batch(0, 0)).loss()));
        }
    }
}
