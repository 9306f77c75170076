package io.mugs.core;

import io.mugs.data.LogText;
import java.io.IOException;
import java.net.InetAddress;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.channels.OverlappingFileLockException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.HashMap;
import java.util.Map;

/**
 * A run folder belongs to one process: an operating-system lock ({@link FileChannel#tryLock()}) on the file
 * {@value #FILE_NAME} in the folder, taken before anything in the folder is read or written. The operating system
 * releases it when the process ends, however it ends ({@code kill -9} included), so a stale lock never blocks a
 * rerun. The file holds the holder's PID, host and start time, which a second process names in its refusal.
 *
 * <p>Within one JVM the lock is re-entrant: {@link MugsTrainer#fit} takes it, and an application that also writes to
 * the folder after the fit (the {@code mugs pretrain} command writes {@code teacher.safetensors}) takes it around
 * both; the file lock is released when the outermost holder closes.
 *
 * <pre>{@code
 * try (RunLock lock = RunLock.acquire(Path.of("runs/fm"))) {
 *     Pretraining.fit(config, data, Path.of("runs/fm"), listeners);
 * }
 * }</pre>
 */
public final class RunLock implements AutoCloseable {

    /** The lock file's name inside the run folder. */
    public static final String FILE_NAME = "run.lock";

    /** Locks of this JVM by folder, with their holder counts (a second channel would throw inside one JVM). */
    private static final Map<Path, Held> HELD = new HashMap<>();

    private static final class Held {
        final FileChannel channel;
        final FileLock lock;
        int count;

        Held(FileChannel channel, FileLock lock) {
            this.channel = channel;
            this.lock = lock;
        }
    }

    /** Thrown when another process holds a run folder: one line naming the holder. */
    public static final class HeldElsewhereException extends IOException {
        HeldElsewhereException(String message) {
            super(message);
        }
    }

    private final Path key;
    private boolean closed;

    private RunLock(Path key) {
        this.key = key;
    }

    /**
     * Creates {@code dir} if needed and locks it for this process.
     *
     * @throws HeldElsewhereException when another process holds it (the message names its PID, host and start)
     * @throws IOException            when {@code dir} is a file, or the lock file cannot be created
     */
    public static RunLock acquire(Path dir) throws IOException {
        if (Files.exists(dir) && !Files.isDirectory(dir)) {
            throw new IOException("run folder " + quoted(dir) + " is a file, not a folder: choose a folder for the "
                    + "run (--output)");
        }
        for (Path up = dir.toAbsolutePath().getParent(); up != null; up = up.getParent()) {
            if (Files.exists(up) && !Files.isDirectory(up)) {
                throw new IOException("run folder " + quoted(dir) + ": " + quoted(up) + " is a file, not a folder: "
                        + "choose another path for the run (--output)");
            }
        }
        Files.createDirectories(dir);
        Path key = dir.toRealPath();
        synchronized (HELD) {
            Held held = HELD.get(key);
            if (held != null) {
                held.count++;
                return new RunLock(key);
            }
            Path file = key.resolve(FILE_NAME);
            FileChannel channel = FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.READ,
                    StandardOpenOption.WRITE);
            FileLock lock;
            try {
                lock = channel.tryLock();
            } catch (OverlappingFileLockException e) {
                lock = null;   // held by this JVM through a channel not opened here
            } catch (IOException e) {
                channel.close();
                throw new IOException("cannot lock the run folder " + quoted(dir) + " (" + e.getMessage() + "): is "
                        + "it on a file system without locks?", e);
            }
            if (lock == null) {
                String holder = holder(channel);
                channel.close();
                throw new HeldElsewhereException("run folder " + quoted(dir) + " is in use by another process ("
                        + holder + "): wait for it to end, stop it, or choose another --output");
            }
            String me = "pid " + ProcessHandle.current().pid() + " on " + host() + " since "
                    + Instant.now().truncatedTo(ChronoUnit.SECONDS);
            channel.truncate(0);
            channel.write(ByteBuffer.wrap((me + "\n").getBytes(StandardCharsets.UTF_8)), 0);
            channel.force(false);
            Held h = new Held(channel, lock);
            h.count = 1;
            HELD.put(key, h);
            return new RunLock(key);
        }
    }

    /** True when this JVM holds the lock of {@code dir}. */
    public static boolean heldHere(Path dir) {
        try {
            Path key = dir.toRealPath();
            synchronized (HELD) {
                return HELD.containsKey(key);
            }
        } catch (IOException e) {
            return false;
        }
    }

    /** Releases this holder; the file lock goes with the last holder of this JVM. */
    @Override
    public void close() throws IOException {
        synchronized (HELD) {
            if (closed) {
                return;
            }
            closed = true;
            Held h = HELD.get(key);
            if (h != null && --h.count == 0) {
                HELD.remove(key);
                try {
                    h.lock.release();
                } finally {
                    h.channel.close();
                }
            }
        }
    }

    private static String holder(FileChannel channel) {
        try {
            ByteBuffer b = ByteBuffer.allocate(256);
            channel.read(b, 0);
            String s = new String(b.array(), 0, b.position(), StandardCharsets.UTF_8).strip();
            return s.isEmpty() ? "holder unknown: the lock file is empty" : s.lines().findFirst().orElse(s);
        } catch (IOException e) {
            return "holder unknown: " + e.getMessage();
        }
    }

    private static String host() {
        try {
            return InetAddress.getLocalHost().getHostName();
        } catch (IOException e) {
            return "unknown host";
        }
    }

    /** A path as it appears in messages: in quotes, with control characters (a newline) escaped. */
    static String quoted(Path p) {
        return LogText.quoted(p);
    }
}
