package io.mugs.core.parallel;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.ServerSocket;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import org.junit.jupiter.api.Test;

class RendezvousTest {

    private static LaunchEnvironment env(int rank, int world, int port) {
        return LaunchEnvironment.from(Map.of("RANK", "" + rank, "WORLD_SIZE", "" + world, "MASTER_ADDR", "127.0.0.1",
                "MASTER_PORT", "" + port));
    }

    @Test
    void everyRankGetsRankZerosBytesAndAWrongWorldSizeIsRefused() throws Exception {
        byte[] id = new byte[128];
        for (int i = 0; i < id.length; i++) {
            id[i] = (byte) (i * 7 + 3);
        }
        try (ServerSocket server = new ServerSocket(0)) {
            int port = server.getLocalPort();
            CompletableFuture<Void> served = CompletableFuture.runAsync(() -> {
                try {
                    Rendezvous.serve(server, 4, id, Duration.ofSeconds(30));
                } catch (IOException e) {
                    throw new UncheckedIOException(e);
                }
            });
            var refused = assertThrows(IllegalStateException.class,
                    () -> Rendezvous.fetch(env(1, 5, port), Duration.ofSeconds(10)));
            assertEquals("rank 0 refused rank 1: WORLD_SIZE is 5 there but 4 on rank 0", refused.getMessage());
            List<byte[]> got = Ranks.run(3, i -> {
                try {
                    return Rendezvous.fetch(env(i + 1, 4, port), Duration.ofSeconds(10));
                } catch (IOException e) {
                    throw new UncheckedIOException(e);
                }
            });
            got.forEach(g -> assertArrayEquals(id, g));
            served.get();
        }
    }

    @Test
    void rankZeroNamesTheRanksThatNeverCame() throws Exception {
        try (ServerSocket server = new ServerSocket(0)) {
            var e = assertThrows(IOException.class, () -> Rendezvous.serve(server, 3, new byte[1], Duration.ofMillis(300)));
            assertEquals("rendezvous on port " + server.getLocalPort() + ": rank(s) [1, 2] did not connect within 0 s; "
                    + "check MASTER_ADDR, MASTER_PORT and that every rank was started", e.getMessage());
        }
    }

    @Test
    void theEnvironmentIsReadAsTorchrunSetsIt() {
        LaunchEnvironment e = LaunchEnvironment.from(Map.of("RANK", "3", "WORLD_SIZE", "8", "LOCAL_RANK", "1",
                "MASTER_ADDR", "node0", "MASTER_PORT", "29500"));
        assertEquals(new LaunchEnvironment(3, 8, 1, "node0", 29500), e);
        assertEquals(2, LaunchEnvironment.from(Map.of("RANK", "2", "WORLD_SIZE", "4", "MASTER_ADDR", "h",
                "MASTER_PORT", "1")).localRank());
        var missing = assertThrows(IllegalArgumentException.class, () -> LaunchEnvironment.from(Map.of()));
        assertEquals("RANK is not set: start every process with RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and "
                + "MASTER_PORT in its environment, as torchrun does (docs/data-parallel.md)", missing.getMessage());
        var range = assertThrows(IllegalArgumentException.class, () -> env(4, 4, 29500));
        assertEquals("RANK must be in [0, WORLD_SIZE - 1] = [0, 3], got 4", range.getMessage());
    }
}
