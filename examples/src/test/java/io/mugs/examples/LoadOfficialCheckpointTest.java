package io.mugs.examples;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** A damaged or hostile .pth given to the example is one line and exit code 1, not a stack trace. */
class LoadOfficialCheckpointTest {

    @Test
    void aDamagedCheckpointIsOneLineAndExitOne(@TempDir Path dir) throws Exception {
        Path bad = Files.writeString(dir.resolve("model.pth"), "PK\u0003\u0004 cut short");
        List<String> cmd = List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(), "-cp",
                System.getProperty("java.class.path"), LoadOfficialCheckpoint.class.getName(), "--checkpoint",
                bad.toString());
        Process p = new ProcessBuilder(cmd).redirectErrorStream(false).start();
        String err = new String(p.getErrorStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(120, TimeUnit.SECONDS));
        assertEquals(1, p.exitValue(), err);
        List<String> errors = err.lines().filter(l -> l.startsWith("Error: ")).toList();
        assertEquals(1, errors.size(), err);
        assertTrue(errors.get(0).startsWith("Error: " + bad + " is not a readable zip file"), err);
        assertFalse(err.contains("\tat "), "no stack trace: " + err);
    }
}
