package io.mugs.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import io.mugs.data.MultiCropLoader;
import io.mugs.io.CheckpointFile;
import io.mugs.io.StateDict;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.ndarray.INDArray;

/** Bad settings, diverging updates, damaged checkpoints and interrupted runs (docs/reliability.md). */
class ReliabilityTest {

    private static final ObjectMapper JSON = new ObjectMapper();

    @Test
    void settingsAreStrictAboutTypesAndFiniteness() {
        MugsConfig base = Tiny.config();
        Map<String, String> expected = new LinkedHashMap<>();
        expected.put("epochs=1.5", "'epochs=1.5': epochs must be an integer, got '1.5'");
        expected.put("lr=Infinity", "'lr=Infinity': lr must be a finite number, got 'Infinity'");
        expected.put("lr=NaN", "'lr=NaN': lr must be a finite number, got 'NaN'");
        expected.put("lr=1e400", "'lr=1e400': lr must be a finite number");
        expected.put("lr=\"0.1\"", "'lr=\"0.1\"': lr must be a finite number, got '0.1'");
        expected.put("useBnInHead=1", "'useBnInHead=1': useBnInHead must be true or false, got '1'");
        expected.put("crops.globalScale=0.4", "globalScale must be a list such as [0.4,1.0]");
        expected.put("crops.std=[1e400]", "std values must be finite and positive");
        expected.put("lossWeights.group=-1", "loss weights must be finite and >= 0");
        expected.put("momentumTeacher=1.5", "momentumTeacher must be in [0, 1]");
        expected.forEach((assignment, message) -> {
            var e = assertThrows(IllegalArgumentException.class, () -> base.with(assignment), assignment);
            assertTrue(e.getMessage().contains(message), assignment + " -> " + e.getMessage());
            assertFalse(e.getMessage().contains("\n"), "one line: " + e.getMessage());
        });
        var built = assertThrows(IllegalArgumentException.class,
                () -> base.toBuilder().lr(Double.POSITIVE_INFINITY).build());
        assertTrue(built.getMessage().contains("must be finite"), built.getMessage());
        assertEquals(3, base.with("epochs=3").epochs());
    }

    @Test
    void anUpdateThatMakesWeightsInfiniteStopsBeforeTheTeacherAndTheState() {
        MugsConfig cfg = Tiny.config().toBuilder().lr(1e41).build();   // scaled lr 3e39: beyond float range
        MugsTrainer trainer = new MugsTrainer(cfg, 3);
        try (MultiCropLoader loader = Tiny.loader(cfg)) {
            Map<String, INDArray> teacher = snapshot(trainer.model().teacherParameters());
            INDArray queue = trainer.instanceQueue().contents().dup();
            var e = assertThrows(NonFiniteWeightsException.class, () -> trainer.step(loader.batch(0, 0)));
            assertTrue(e.getMessage().contains("became NaN or infinite in the update of iteration 0"), e.getMessage());
            teacher.forEach((k, v) -> assertEquals(v, trainer.model().teacherParameters().get(k), k));
            assertEquals(queue, trainer.instanceQueue().contents(), "the queue is not written after a failed step");
            assertEquals(0, trainer.iteration());
        }
    }

    @Test
    void aCheckpointWithANaNIsRefusedAndResumeFallsBackToTheNewestIntactOne(@TempDir Path dir) throws IOException {
        MugsConfig cfg = Tiny.config();
        MugsTrainer trainer = new MugsTrainer(cfg, 3);
        try (MultiCropLoader loader = Tiny.loader(cfg)) {
            trainer.step(loader.batch(0, 0));
        }
        Path good = RunCheckpoints.save(dir, trainer, 5);
        StateDict state = new StateDict();
        trainer.saveState(state);
        Map<String, INDArray> tensors = new LinkedHashMap<>(state.tensors());
        String victim = "student/backbone.blocks.1.mlp.fc2.weight";
        tensors.put(victim, tensors.get(victim).dup().putScalar(3, Float.NaN));
        Map<String, Long> counters = new LinkedHashMap<>(state.counters());
        counters.put("iteration", 7L);
        Path bad = dir.resolve("checkpoint-000000007.safetensors");
        CheckpointFile.write(bad, new StateDict(tensors, counters), Map.of("config", cfg.toJson()));

        var e = assertThrows(IOException.class, () -> RunCheckpoints.read(bad));
        assertEquals(bad + ": tensor '" + victim + "' holds NaN or infinite values; the checkpoint is damaged or was "
                + "saved after training diverged", e.getMessage());
        RunCheckpoints.Loaded newest = RunCheckpoints.newestIntact(dir).orElseThrow();
        assertEquals(good, newest.file());
        MugsTrainer resumed = new MugsTrainer(cfg, 3);
        RunCheckpoints.restore(newest, resumed);
        assertEquals(1, resumed.iteration());
        assertEquals(trainer.model().studentParameters().get(victim), resumed.model().studentParameters().get(victim));

        Files.delete(good);
        var none = assertThrows(IOException.class, () -> RunCheckpoints.newestIntact(dir));
        assertTrue(none.getMessage().startsWith("no intact checkpoint in " + dir), none.getMessage());
    }

    @Test
    void aFlippedBitIsFoundByItsChecksumAndResumeTakesThePreviousCheckpoint(@TempDir Path dir) throws IOException {
        MugsConfig cfg = Tiny.config();
        MugsTrainer trainer = new MugsTrainer(cfg, 3);
        Path older = RunCheckpoints.save(dir, trainer, 5);
        try (MultiCropLoader loader = Tiny.loader(cfg)) {
            trainer.step(loader.batch(0, 0));
        }
        Path newest = RunCheckpoints.save(dir, trainer, 5);
        byte[] bytes = Files.readAllBytes(newest);
        bytes[bytes.length - 4001] ^= 0x10;                        // one bit in the tensor data near the end
        Files.write(newest, bytes);

        var e = assertThrows(IOException.class, () -> RunCheckpoints.read(newest));
        assertTrue(e.getMessage().contains(newest.toString()) && e.getMessage().contains("checksum mismatch in tensor")
                && e.getMessage().contains("the file is damaged"), e.getMessage());
        assertEquals(older, RunCheckpoints.newestIntact(dir).orElseThrow().file());
    }

    @Test
    void metricsRowsPastTheResumedIterationAndCutLinesAreDropped(@TempDir Path dir) throws IOException {
        Path file = dir.resolve("metrics.jsonl");
        List<String> rows = new ArrayList<>();
        rows.add("{\"iteration\":-1,\"epoch\":-1,\"knn_top1\":0.6}");
        for (int i = 0; i < 8; i++) {
            rows.add("{\"iteration\":" + i + ",\"loss\":1.0}");
        }
        Files.writeString(file, String.join("\n", rows) + "\n{\"iteration\":8,\"lo");
        assertEquals(4, RunFolder.dropMetricsAfter(file, 5));
        List<String> kept = Files.readAllLines(file);
        assertEquals(rows.subList(0, 6), kept);
        assertEquals(0, RunFolder.dropMetricsAfter(file, 5));
        assertEquals(6, RunFolder.dropMetricsAfter(file, 0), "a fresh start keeps nothing");
        assertEquals(List.of(), Files.readAllLines(file));
    }

    @Test
    void aResumeTidiesTheRunFolderAndOnlyEpochsAndOptimisationMayChange(@TempDir Path dir) throws IOException {
        MugsConfig one = Tiny.config().toBuilder().epochs(1).build();   // 24 images, batch 8: 3 steps per epoch
        Path metrics = dir.resolve("metrics.jsonl");
        MugsTrainer first = Pretraining.fit(one, Tiny.images(24), dir,
                List.of(MugsListeners.metrics(metrics), MugsListeners.checkpoints(dir, 3)));
        assertEquals(3, first.iteration());
        // What a kill leaves behind: rows of steps after the checkpoint, a cut line, a temporary checkpoint.
        Files.writeString(metrics, "{\"iteration\":3,\"loss\":1}\n{\"iteration\":4,\"lo",
                java.nio.file.StandardOpenOption.APPEND);
        Path stale = dir.resolve("checkpoint-000000006.safetensors1234.tmp");
        Files.write(stale, new byte[100]);

        MugsConfig other = one.toBuilder().studentTemp(one.studentTemp() * 2).build();
        var e = assertThrows(IllegalArgumentException.class, () -> Pretraining.fit(other, Tiny.images(24), dir,
                List.of()));
        assertTrue(e.getMessage().contains("another configuration (it differs in studentTemp)"), e.getMessage());
        assertEquals(one.toJson(), Files.readString(dir.resolve("config.json")),
                "config.json is written only after the resume check");
        assertFalse(Files.exists(stale), "stale temporary files are removed");

        MugsConfig two = one.toBuilder().epochs(2).build();
        MugsTrainer second = Pretraining.fit(two, Tiny.images(24), dir,
                List.of(MugsListeners.metrics(metrics), MugsListeners.checkpoints(dir, 3)));
        assertEquals(6, second.iteration(), "the finished one-epoch run was extended to two epochs");
        assertEquals(two.toJson(), Files.readString(dir.resolve("config.json")));
        List<Integer> iterations = new ArrayList<>();
        for (String line : Files.readAllLines(metrics)) {
            iterations.add(JSON.readTree(line).get("iteration").asInt());
        }
        assertEquals(List.of(0, 1, 2, 3, 4, 5), iterations, "one row per step, none twice");
        assertEquals(second.lrSchedule().length, 6, "schedules laid out for the new length");
    }

    private static Map<String, INDArray> snapshot(Map<String, INDArray> params) {
        Map<String, INDArray> out = new LinkedHashMap<>();
        params.forEach((k, v) -> out.put(k, v.dup()));
        return out;
    }
}
