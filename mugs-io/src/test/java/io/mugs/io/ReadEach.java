package io.mugs.io;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Reads each file given (by extension: {@code .pth} with {@link PthReader}, else {@link SafeTensors}) and
 * prints one line per file, {@code REFUSED <message>} or {@code READ}, then the process's peak resident memory.
 * Run in a small heap by {@link HostileInSmallHeapTest}; any Error ends the process with a non-zero status.
 *
 * <pre>{@code
 * java -Xmx64m -cp <test classpath> io.mugs.io.ReadEach bomb.pth overlap.safetensors
 * }</pre>
 */
public final class ReadEach {

    private ReadEach() {
    }

    public static void main(String[] args) throws IOException {
        for (String a : args) {
            Path file = Path.of(a);
            try {
                if (a.endsWith(".pth")) {
                    PthReader.read(file);
                } else {
                    SafeTensors.read(file);
                }
                System.out.println("READ " + file);
            } catch (IOException e) {
                System.out.println("REFUSED " + e.getMessage());
            }
        }
        Files.readAllLines(Path.of("/proc/self/status")).stream().filter(l -> l.startsWith("VmHWM"))
                .forEach(l -> System.out.println(l.replaceAll("\\s+", " ")));
    }
}
