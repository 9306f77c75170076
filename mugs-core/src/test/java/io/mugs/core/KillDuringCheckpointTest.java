package io.mugs.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.mugs.io.CheckpointFile;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
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
 * kill -9 of a training JVM half-way through a checkpoint write, then the same command again: the resumed run ends
 * with the same losses, step for step, and the same weights as a run that was never interrupted.
 */
class KillDuringCheckpointTest {

    private static final ObjectMapper JSON = new ObjectMapper();

    @Test
    void aRunKilledWhileWritingACheckpointResumesToTheUninterruptedResult(@TempDir Path tmp) throws Exception {
        Path straight = tmp.resolve("straight");
        Path killed = tmp.resolve("killed");
        assertTrue(run(straight, null).contains("finished at iteration 9"));

        Process p = start(killed, "checkpoint-000000006");
        String paused = waitForLine(p, "fault injection: paused");
        p.destroyForcibly();                                   // SIGKILL: no shutdown hooks, no finally blocks
        assertTrue(p.waitFor(60, TimeUnit.SECONDS));
        assertEquals(137, p.exitValue(), "killed by SIGKILL");
        assertTrue(paused.contains("checkpoint-000000006"), paused);
        assertEquals(List.of("checkpoint-000000003.safetensors"), names(killed, ".safetensors"));
        assertEquals(1, names(killed, ".tmp").size(), "the half-written file is a temporary one");

        assertTrue(run(killed, null).contains("finished at iteration 9"));
        assertEquals(List.of(), names(killed, ".tmp"));
        assertEquals(losses(straight), losses(killed), "losses step for step");
        Map<String, INDArray> a = CheckpointFile.read(straight.resolve("checkpoint-000000009.safetensors"))
                .state().tensors();
        Map<String, INDArray> b = CheckpointFile.read(killed.resolve("checkpoint-000000009.safetensors"))
                .state().tensors();
        assertEquals(a.keySet(), b.keySet());
        a.forEach((k, v) -> assertEquals(v, b.get(k), k));
    }

    private static Process start(Path dir, String pauseWriting) throws IOException {
        List<String> cmd = new ArrayList<>();
        cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        cmd.add("-Xmx1g");
        for (String prop : List.of("org.bytedeco.javacpp.maxbytes", "org.bytedeco.javacpp.maxphysicalbytes")) {
            if (System.getProperty(prop) != null) {
                cmd.add("-D" + prop + "=" + System.getProperty(prop));
            }
        }
        if (pauseWriting != null) {
            cmd.add("-Dmugs.faultInjection.pauseWriting=" + pauseWriting);
        }
        cmd.addAll(List.of("-cp", System.getProperty("java.class.path"), ForkedTraining.class.getName(),
                dir.toString(), "3"));
        ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true);
        pb.environment().put("OMP_NUM_THREADS", "1");
        return pb.start();
    }

    private static String run(Path dir, String pauseWriting) throws Exception {
        Process p = start(dir, pauseWriting);
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(300, TimeUnit.SECONDS));
        assertEquals(0, p.exitValue(), out);
        return out;
    }

    private static String waitForLine(Process p, String prefix) throws IOException {
        BufferedReader r = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8));
        StringBuilder all = new StringBuilder();
        for (String line; (line = r.readLine()) != null; ) {
            if (line.startsWith(prefix)) {
                return line;
            }
            all.append(line).append('\n');
        }
        throw new AssertionError("the process ended before '" + prefix + "':\n" + all);
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
