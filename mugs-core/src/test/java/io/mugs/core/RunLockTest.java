package io.mugs.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.net.InetAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** A run folder belongs to one process: a second JVM is refused with the holder named; a kill frees the folder. */
class RunLockTest {

    @Test
    void aSecondProcessIsRefusedBeforeWritingAndAKilledHolderFreesTheFolder(@TempDir Path tmp) throws Exception {
        Path dir = tmp.resolve("run");
        ForkedJvm holder = ForkedJvm.start(HoldRunLock.class, dir.toString());
        try {
            String line = holder.waitForLine("locked ");
            long pid = Long.parseLong(line.substring("locked ".length()).trim());
            assertEquals(holder.process.pid(), pid);

            RunLock.HeldElsewhereException e = assertThrows(RunLock.HeldElsewhereException.class,
                    () -> RunLock.acquire(dir));
            assertTrue(e.getMessage().contains("pid " + pid + " on " + InetAddress.getLocalHost().getHostName()
                    + " since 20"), e.getMessage());
            assertEquals(1, e.getMessage().lines().count());
            assertFalse(RunLock.heldHere(dir));

            // The trainer takes the lock before reading or writing anything in the folder.
            assertThrows(RunLock.HeldElsewhereException.class, () -> Pretraining.fit(Tiny.config(), Tiny.images(16),
                    dir, List.of(MugsListeners.metrics(dir.resolve("metrics.jsonl")))));
            try (var s = Files.list(dir)) {
                assertEquals(List.of(RunLock.FILE_NAME), s.map(p -> p.getFileName().toString()).toList(),
                        "nothing but the lock file");
            }
        } finally {
            holder.process.destroyForcibly();   // SIGKILL: the OS releases the lock
            assertTrue(holder.process.waitFor(60, TimeUnit.SECONDS));
        }
        try (RunLock lock = RunLock.acquire(dir)) {
            assertTrue(RunLock.heldHere(dir));
            String content = Files.readString(dir.resolve(RunLock.FILE_NAME));
            assertTrue(content.startsWith("pid " + ProcessHandle.current().pid() + " "), content);
            try (RunLock again = RunLock.acquire(dir)) {   // re-entrant within one JVM
                assertTrue(RunLock.heldHere(dir));
            }
            assertTrue(RunLock.heldHere(dir), "held until the outermost holder closes");
        }
        assertFalse(RunLock.heldHere(dir));
    }

    @Test
    void aFileWhereTheFolderShouldBeIsNamed(@TempDir Path tmp) throws Exception {
        Path file = Files.writeString(tmp.resolve("plain"), "x");
        var e = assertThrows(java.io.IOException.class, () -> RunLock.acquire(file));
        assertEquals("run folder '" + file + "' is a file, not a folder: choose a folder for the run (--output)",
                e.getMessage());
        var below = assertThrows(java.io.IOException.class, () -> RunLock.acquire(file.resolve("run")));
        assertTrue(below.getMessage().contains("'" + file + "' is a file, not a folder"), below.getMessage());
    }
}
