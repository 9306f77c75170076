package io.mugs.io;

import java.nio.file.Path;

/**
 * A switch for the fault-injection tests: with {@code -Dmugs.faultInjection.pauseWriting=NAME}, a safetensors write
 * of a file whose name starts with {@code NAME} stops half-way, prints one line to standard output and waits, so a
 * test can kill the process in the middle of a checkpoint write; with {@code -Dmugs.faultInjection.diskFull=NAME} such a
 * write fails half-way as a full disk makes it fail. Unset (always, outside those tests) it does nothing.
 */
final class FaultInjection {

    static final String PAUSE_WRITING = "mugs.faultInjection.pauseWriting";
    static final String DISK_FULL = "mugs.faultInjection.diskFull";

    private FaultInjection() {
    }

    static void pauseIfWriting(Path target, Path partial) {
        String name = System.getProperty(PAUSE_WRITING);
        if (name == null || !target.getFileName().toString().startsWith(name)) {
            return;
        }
        System.out.println("fault injection: paused half-way through writing " + partial);
        System.out.flush();
        try {
            Thread.sleep(600_000);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    static void failIfDiskFull(Path target) throws java.io.IOException {
        String name = System.getProperty(DISK_FULL);
        if (name != null && target.getFileName().toString().startsWith(name)) {
            throw new java.io.IOException("No space left on device");
        }
    }
}
