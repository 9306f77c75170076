package io.mugs.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.mugs.io.CheckpointFile;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * SIGINT and SIGTERM mid-epoch write a checkpoint at the current step and exit 130 / 143; the rerun resumes from it
 * to the same losses and weights as a run never interrupted. Periodic interim checkpoints are kept apart from the
 * epoch checkpoints.
 */
class StopSignalsTest {

    private static final ObjectMapper JSON = new ObjectMapper();

    @Test
    void sigintAndSigtermMidEpochCheckpointTheCurrentStepAndResumeExactly(@TempDir Path tmp) throws Exception {
        Path straight = tmp.resolve("straight");
        ForkedJvm s = ForkedJvm.start(ForkedTraining.class, straight.toString(), "3");
        assertTrue(s.process.waitFor(300, TimeUnit.SECONDS));
        assertEquals(0, s.process.exitValue(), s.rest());

        for (String signal : List.of("INT", "TERM")) {
            Path dir = tmp.resolve(signal);
            // the signal lands after step 4 (epoch 2, step 1 of 3): a checkpoint at iteration 5 at the latest
            ForkedJvm p = ForkedJvm.start(ForkedTraining.class, dir.toString(), "3", "-", "300");
            p.waitForLine("step 4");
            p.signal(signal);
            String out = p.rest();
            assertTrue(p.process.waitFor(120, TimeUnit.SECONDS));
            assertEquals(signal.equals("INT") ? 130 : 143, p.process.exitValue(), out);
            List<String> interim = names(dir, "-interim.safetensors");
            assertEquals(1, interim.size(), out);
            long at = RunCheckpoints.iterationOf(dir.resolve(interim.get(0)));
            assertTrue(at == 5 || at == 6 && out.contains("step 5"), interim + "\n" + out);
            assertTrue(out.contains("SIG" + signal + ": checkpoint '" + dir.resolve(interim.get(0))
                    + "' written at iteration " + at + " (epoch 2, step " + (at - 3) + " of 3)"), out);
            assertEquals(List.of("checkpoint-000000003.safetensors"), names(dir, ".safetensors")
                    .stream().filter(n -> !n.contains("interim")).toList());

            ForkedJvm again = ForkedJvm.start(ForkedTraining.class, dir.toString(), "3");
            String rerun = again.rest();
            assertTrue(again.process.waitFor(300, TimeUnit.SECONDS));
            assertEquals(0, again.process.exitValue(), rerun);
            assertTrue(rerun.contains("resumed from '" + dir.resolve(interim.get(0)) + "' at iteration " + at),
                    rerun);
            assertEquals(losses(straight), losses(dir), "losses step for step");
            assertSameTensors(straight.resolve("checkpoint-000000009.safetensors"),
                    dir.resolve("checkpoint-000000009.safetensors"));
            assertEquals(List.of(), names(dir, "-interim.safetensors"), "superseded by the epoch checkpoints");
        }
    }

    @Test
    void periodicInterimCheckpointsAreKeptApartFromTheEpochOnes(@TempDir Path tmp) throws Exception {
        // an interval of 0.1 s: every step that does not end an epoch writes an interim checkpoint
        Path dir = tmp.resolve("periodic");
        ForkedJvm p = ForkedJvm.start(ForkedTraining.class, dir.toString(), "2", String.valueOf(0.1 / 60), "150");
        p.waitForLine("step 4");   // iteration 5 is mid-epoch 1: its interim file is the newest
        p.process.destroyForcibly();
        assertTrue(p.process.waitFor(60, TimeUnit.SECONDS));
        List<String> all = names(dir, ".safetensors");
        assertTrue(all.contains("checkpoint-000000003.safetensors"), all.toString());
        List<String> interim = all.stream().filter(n -> n.contains("interim")).toList();
        assertEquals(1, interim.size(), "only the newest interim checkpoint is kept: " + all);
        assertTrue(RunCheckpoints.iterationOf(dir.resolve(interim.get(0))) >= 4, all.toString());
        assertEquals(RunCheckpoints.list(dir).get(RunCheckpoints.list(dir).size() - 1).getFileName().toString(),
                interim.get(0), "the newest checkpoint of either kind is resumed");
    }

    private static void assertSameTensors(Path x, Path y) throws IOException {
        Map<String, INDArray> a = CheckpointFile.read(x).state().tensors();
        Map<String, INDArray> b = CheckpointFile.read(y).state().tensors();
        assertEquals(a.keySet(), b.keySet());
        a.forEach((k, v) -> assertEquals(v, b.get(k), k));
    }

    private static List<String> names(Path dir, String suffix) throws IOException {
        try (Stream<Path> s = Files.list(dir)) {
            return s.map(f -> f.getFileName().toString()).filter(n -> n.endsWith(suffix)).sorted().toList();
        }
    }

    private static List<String> losses(Path dir) throws IOException {
        List<String> out = new ArrayList<>();
        for (String line : Files.readAllLines(dir.resolve("metrics.jsonl"))) {
            JsonNode row = JSON.readTree(line);
            out.add(row.get("iteration").asInt() + ":" + row.get("loss").asDouble());
        }
        return out;
    }
}
