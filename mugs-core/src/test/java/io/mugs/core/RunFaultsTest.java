package io.mugs.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.mugs.io.StateDict;
import java.io.ByteArrayOutputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Faults of a run folder and their messages: budgets, full disks, damaged logs, stale files, bad arguments. */
class RunFaultsTest {

    @Test
    void aSpentTimeBudgetSaysSoAndTakesNoStep(@TempDir Path dir) throws Exception {
        MugsConfig cfg = Tiny.config();   // 24 images: 3 steps per epoch, 2 epochs
        Path metrics = dir.resolve("metrics.jsonl");
        MugsTrainer first = Pretraining.fit(cfg, Tiny.images(24), dir, List.of(MugsListeners.timeBudget(1e-9),
                MugsListeners.metrics(metrics), MugsListeners.checkpoints(dir, 3)));
        assertEquals(1, first.iteration());
        try (LogCapture log = new LogCapture()) {
            MugsTrainer again = Pretraining.fit(cfg, Tiny.images(24), dir, List.of(MugsListeners.timeBudget(1e-9),
                    MugsListeners.metrics(metrics), MugsListeners.checkpoints(dir, 3)));
            assertEquals(1, again.iteration(), "no step");
            assertEquals(1, Files.readAllLines(metrics).size());
            assertEquals(String.format(Locale.ROOT, "the time budget of 1.0E-9 training minutes is spent: this run "
                    + "has trained %.1f minutes (iteration 1 of 6); no step taken. Pass a larger --max-minutes (or "
                    + "none) to continue", first.trainingSeconds() / 60), log.find("time budget"));
        }
    }

    @Test
    void aFullDiskNamesTheFolderAndTheBytesNeeded(@TempDir Path dir) throws Exception {
        MugsConfig cfg = Tiny.config().toBuilder().epochs(1).build();
        StateDict state = new StateDict();
        new MugsTrainer(cfg, 3).saveState(state);
        long need = 0;
        for (var a : state.tensors().values()) {
            need += a.length() * 4;   // every tensor of the state is float32
        }
        System.setProperty("mugs.faultInjection.diskFull", "checkpoint-");
        try {
            var e = assertThrows(UncheckedIOException.class, () -> Pretraining.fit(cfg, Tiny.images(24), dir,
                    List.of(MugsListeners.checkpoints(dir, 2))));
            assertTrue(e.getMessage().startsWith("java.io.IOException: cannot write checkpoint "
                    + "checkpoint-000000003.safetensors in folder '" + dir + "' (No space left on device): it needs "
                    + String.format(Locale.ROOT, "about %.1f MB (%d bytes), ", need / 1e6, need)), e.getMessage());
            System.out.println("DISKFULL " + e.getMessage());
            assertTrue(e.getMessage().endsWith("MB free; free some space or choose another --output, then rerun to "
                    + "resume from the previous checkpoint"), e.getMessage());
            assertEquals(List.of("config.json", "run.lock"), names(dir), "no checkpoint and no .tmp left");
        } finally {
            System.clearProperty("mugs.faultInjection.diskFull");
        }
    }

    @Test
    void damagedMetricsLinesAreDroppedWithTheirNumbers(@TempDir Path dir) throws Exception {
        Path metrics = dir.resolve("metrics.jsonl");
        ByteArrayOutputStream b = new ByteArrayOutputStream();
        b.writeBytes("{\"iteration\":0,\"loss\":1}\n{\"iteration\":1,\"loss\":2}\n".getBytes(StandardCharsets.UTF_8));
        b.writeBytes(new byte[] {'{', '"', (byte) 0xff, (byte) 0xfe, '"', '}', '\n'});   // line 3: not UTF-8
        b.writeBytes("{\"iteration\":2,\"loss\":3}\n{\"iteration\":3,\"lo".getBytes(StandardCharsets.UTF_8));
        Files.write(metrics, b.toByteArray());
        try (LogCapture log = new LogCapture()) {
            assertEquals(3, RunFolder.dropMetricsAfter(metrics, 2));
            assertEquals("'" + metrics + "': dropped 2 damaged line(s) (not UTF-8 or not a JSON object), line "
                    + "number(s) [3, 5]", log.find("damaged line"));
        }
        assertEquals(List.of("{\"iteration\":0,\"loss\":1}", "{\"iteration\":1,\"loss\":2}"),
                Files.readAllLines(metrics));
    }

    @Test
    void temporaryFilesOfEveryKindAreRemovedAndOthersKept(@TempDir Path dir) throws Exception {
        List<String> ours = List.of("checkpoint-000000003.safetensors1234.tmp", "config.json.tmp",
                "metrics.jsonl.tmp", "teacher.safetensors8812345.tmp", "student.safetensors77.tmp");
        for (String n : ours) {
            Files.writeString(dir.resolve(n), "partial");
        }
        Files.writeString(dir.resolve("notes.tmp"), "the user's");
        assertEquals(ours.size(), RunFolder.removeStaleTemporaryFiles(dir));
        assertEquals(List.of("notes.tmp"), names(dir));
    }

    @Test
    void fitChecksItsArgumentsBeforeWritingAnything(@TempDir Path tmp) {
        Path dir = tmp.resolve("run");
        var e = assertThrows(IllegalArgumentException.class,
                () -> Pretraining.fit(Tiny.config(), null, dir, List.of()));
        assertEquals("Pretraining.fit: data is null (pass a value)", e.getMessage());
        var l = assertThrows(IllegalArgumentException.class,
                () -> Pretraining.fit(Tiny.config(), Tiny.images(8), dir, null));
        assertEquals("Pretraining.fit: listeners is null (pass List.of() for no listeners)", l.getMessage());
        var c = assertThrows(IllegalArgumentException.class,
                () -> Pretraining.fit(null, Tiny.images(8), dir, List.of()));
        assertEquals("Pretraining.fit: config is null (pass a value)", c.getMessage());
        assertFalse(Files.exists(dir), "nothing created");
    }

    @Test
    void aFolderNameWithANewlineStaysOnOneLogLine(@TempDir Path tmp) throws Exception {
        Path dir = tmp.resolve("two\nlines");
        MugsConfig cfg = Tiny.config().toBuilder().epochs(1).build();
        try (LogCapture log = new LogCapture()) {
            Pretraining.fit(cfg, Tiny.images(8), dir, List.of(MugsListeners.checkpoints(dir, 1)));
            String quoted = "'" + tmp + "/two\\nlines";
            assertTrue(log.find("steps/epoch").startsWith(quoted + "': 8 images"), log.find("steps/epoch"));
            assertTrue(log.find("checkpoint '").startsWith("checkpoint " + quoted + "/checkpoint-000000001"),
                    log.find("checkpoint '"));
            for (String m : log.messages()) {
                assertFalse(m.contains("two\nlines"), m);
            }
        }
    }

    @Test
    void aSecondSigintExitsAtOnceDuringTheCheckpoint(@TempDir Path tmp) throws Exception {
        Path dir = tmp.resolve("run");
        ForkedJvm p = ForkedJvm.start(List.of("-Dmugs.faultInjection.pauseWriting=checkpoint-000000005-interim"),
                ForkedTraining.class, dir.toString(), "3", "-", "1500");
        p.waitForLine("step 4");
        p.signal("INT");
        p.waitForLine("fault injection: paused");
        long sent = System.nanoTime();
        p.signal("INT");
        assertTrue(p.process.waitFor(60, TimeUnit.SECONDS));
        double seconds = (System.nanoTime() - sent) / 1e9;
        assertEquals(130, p.process.exitValue(), p.rest());
        assertTrue(seconds < 10, "exited " + seconds + " s after the second SIGINT");
        assertTrue(p.rest().contains("SIGINT again: exiting without waiting for the checkpoint"), p.rest());
        List<String> left = names(dir);
        assertTrue(left.contains("checkpoint-000000003.safetensors"), left.toString());
        assertFalse(left.stream().anyMatch(n -> n.contains("interim.safetensors") && !n.endsWith(".tmp")),
                left.toString());
        assertEquals(1, left.stream().filter(n -> n.endsWith(".tmp")).count(), "the cut write is a .tmp");
    }

    private static List<String> names(Path dir) throws java.io.IOException {
        try (Stream<Path> s = Files.list(dir)) {
            return s.map(f -> f.getFileName().toString()).sorted().toList();
        }
    }
}
