package io.mugs.io;

import static io.mugs.io.HostileFiles.floats;
import static io.mugs.io.HostileFiles.safetensors;
import static io.mugs.io.HostileFiles.stateDict;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.mugs.io.HostileFiles.Pickle;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The hostile files, read by a separate JVM with a 64 MiB heap and a 256 KiB thread stack: each is refused
 * with an IOException, none ends the process with OutOfMemoryError or StackOverflowError.
 */
class HostileInSmallHeapTest {

    @TempDir
    Path dir;

    private Path pth(String name, byte[] pickle, Map<String, byte[]> storages, boolean deflate) throws Exception {
        Map<String, byte[]> entries = new LinkedHashMap<>();
        entries.put("archive/data.pkl", pickle);
        storages.forEach((k, v) -> entries.put("archive/data/" + k, v));
        return HostileFiles.zip(dir.resolve(name), entries, deflate);
    }

    @Test
    void everyHostileFileIsRefusedInA64MiBHeap() throws Exception {
        List<String> files = new ArrayList<>();
        long n = 1L << 30;
        files.add(pth("huge-storage.pth", stateDict("w", p -> p.tensor("FloatStorage", "0", n, 0, new long[] {n},
                new long[] {1})), Map.of("0", floats(1, 2, 3, 4)), false).toString());
        int zeros = 8 << 20;
        files.add(pth("bomb.pth", stateDict("w", p -> p.tensor("FloatStorage", "0", zeros, 0, new long[] {zeros},
                new long[] {1})), Map.of("0", new byte[4 * zeros]), true).toString());
        files.add(pth("self.pth", new Pickle().op(0x80, 2, ']', 'q', 0, 'h', 0, 'a', '.').bytes(), Map.of(), false)
                .toString());
        Pickle deep = new Pickle().op(0x80, 2, 'N');
        for (int i = 0; i < 100_000; i++) {
            deep.op(0x85);
        }
        files.add(pth("deep.pth", deep.op('.').bytes(), Map.of(), false).toString());
        StringBuilder h = new StringBuilder("{");
        for (int i = 0; i < 1000; i++) {
            h.append(i == 0 ? "" : ",").append("\"t").append(i)
                    .append("\":{\"dtype\":\"F32\",\"shape\":[1048576],\"data_offsets\":[0,4194304]}");
        }
        files.add(safetensors(dir.resolve("overlap.safetensors"), h.append("}").toString(), new byte[4 << 20])
                .toString());

        List<String> command = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java")
                .toString(), "-Xmx64m", "-Xss256k", "-cp", System.getProperty("java.class.path"),
                ReadEach.class.getName()));
        command.addAll(files);
        Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertEquals(0, p.waitFor(), out);
        long refused = out.lines().filter(l -> l.startsWith("REFUSED ")).count();
        assertEquals(files.size(), refused, out);
        assertTrue(!out.contains("Error"), out);
        out.lines().filter(l -> l.startsWith("VmHWM")).forEach(l -> System.out.println("HOSTILE-RSS | " + l));
    }
}
