package io.mugs.io;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.zip.CRC32;
import java.util.zip.ZipEntry;
import java.util.zip.ZipOutputStream;

/**
 * Makers of small hostile files (pickles, torch zips, raw safetensors) and the check every hostile case shares:
 * one IOException naming the file and the problem, and little memory allocated by the reading thread.
 */
public final class HostileFiles {

    private HostileFiles() {
    }

    /** A reader call that must fail. */
    public interface Read {
        void run() throws Exception;
    }

    /** Bytes the current thread allocates on the heap while {@code r} runs (it must throw an IOException). */
    public static long allocation(Read r) {
        var bean = (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
        long id = Thread.currentThread().getId();
        long before = bean.getThreadAllocatedBytes(id);
        assertThrows(IOException.class, r::run);
        return bean.getThreadAllocatedBytes(id) - before;
    }

    /**
     * Asserts that reading {@code file} fails with one IOException whose message names the file and contains
     * {@code problem}, and that the second (warm) attempt allocates less than 4x the file's size plus 1 MiB.
     * Prints one line for docs/reliability.md. Returns the message.
     */
    public static String refused(String what, Path file, String problem, Read read) throws IOException {
        IOException e = assertThrows(IOException.class, read::run);
        String m = e.getMessage();
        assertTrue(m.contains(file.toString()), "the message names the file: " + m);
        assertTrue(m.contains(problem), "the message says '" + problem + "': " + m);
        assertTrue(!m.contains("\n"), "one line: " + m);
        long size = Files.size(file);
        long allocated = allocation(read);
        long bound = 4 * size + (1 << 20);
        assertTrue(allocated < bound, what + ": allocated " + allocated + " bytes, bound " + bound);
        System.out.printf("HOSTILE | %s | %,d | %,d | %s%n", what, size, allocated,
                m.replace(file.toString(), "<file>"));
        return m;
    }

    /** Writes a safetensors file from a raw JSON header (padded to 8 bytes) and raw data. */
    public static Path safetensors(Path file, String header, byte[] data) throws IOException {
        byte[] json = header.getBytes(StandardCharsets.UTF_8);
        int padded = (json.length + 7) / 8 * 8;
        ByteBuffer b = ByteBuffer.allocate(8 + padded + data.length).order(ByteOrder.LITTLE_ENDIAN);
        b.putLong(padded).put(json);
        for (int i = json.length; i < padded; i++) {
            b.put((byte) ' ');
        }
        b.put(data);
        Files.write(file, b.array());
        return file;
    }

    /** Writes a torch.save-like zip: entries stored, or deflated when {@code deflate}. */
    public static Path zip(Path file, Map<String, byte[]> entries, boolean deflate) throws IOException {
        try (ZipOutputStream out = new ZipOutputStream(Files.newOutputStream(file))) {
            for (Map.Entry<String, byte[]> e : entries.entrySet()) {
                ZipEntry z = new ZipEntry(e.getKey());
                if (!deflate) {
                    CRC32 crc = new CRC32();
                    crc.update(e.getValue());
                    z.setMethod(ZipEntry.STORED);
                    z.setSize(e.getValue().length);
                    z.setCompressedSize(e.getValue().length);
                    z.setCrc(crc.getValue());
                }
                out.putNextEntry(z);
                out.write(e.getValue());
                out.closeEntry();
            }
        }
        return file;
    }

    /** Sets the uncompressed size the zip's central directory declares for {@code entry} (a lying size). */
    public static void patchDeclaredSize(Path file, String entry, int size) throws IOException {
        byte[] b = Files.readAllBytes(file);
        ByteBuffer buf = ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN);
        byte[] name = entry.getBytes(StandardCharsets.UTF_8);
        for (int i = 0; i + 46 < b.length; i++) {
            if (buf.getInt(i) == 0x02014b50 && buf.getShort(i + 28) == name.length
                    && new String(b, i + 46, name.length, StandardCharsets.UTF_8).equals(entry)) {
                buf.putInt(i + 24, size);
                Files.write(file, b);
                return;
            }
        }
        throw new IllegalStateException("no central directory entry " + entry);
    }

    /** A tiny pickle writer for the opcodes a state dict uses (protocol 2). */
    static final class Pickle {
        private final ByteArrayOutputStream out = new ByteArrayOutputStream();

        Pickle op(int... codes) {
            for (int c : codes) {
                out.write(c);
            }
            return this;
        }

        Pickle string(String s) {
            byte[] b = s.getBytes(StandardCharsets.UTF_8);
            op('X').int32(b.length);
            out.writeBytes(b);
            return this;
        }

        Pickle int32(long v) {
            out.writeBytes(ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN).putInt((int) v).array());
            return this;
        }

        /** BININT or LONG1 for values beyond 32 bits. */
        Pickle integer(long v) {
            if (v == (int) v) {
                return op('J').int32(v);
            }
            op(0x8a, 8);
            out.writeBytes(ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(v).array());
            return this;
        }

        Pickle global(String module, String name) {
            op('c');
            out.writeBytes((module + "\n" + name + "\n").getBytes(StandardCharsets.US_ASCII));
            return this;
        }

        Pickle ints(long... v) {
            op('(');
            for (long x : v) {
                integer(x);
            }
            return op('t');
        }

        /** Pushes {@code _rebuild_tensor_v2(storage(key, numel), offset, size, stride, False, OrderedDict())}. */
        Pickle tensor(String storageType, String key, long numel, long offset, long[] size, long[] stride) {
            global("torch._utils", "_rebuild_tensor_v2").op('(');
            op('(').string("storage").global("torch", storageType).string(key).string("cpu").integer(numel).op('t');
            op('Q').integer(offset).ints(size).ints(stride).op(0x89);
            global("collections", "OrderedDict").op(')', 'R');
            return op('t', 'R');
        }

        byte[] bytes() {
            return out.toByteArray();
        }
    }

    /** A state-dict pickle {@code {name: tensor}} whose single tensor is given by {@code tensor}. */
    public static byte[] stateDict(String name, java.util.function.Consumer<Pickle> tensor) {
        Pickle p = new Pickle().op(0x80, 2, '}', '(').string(name);
        tensor.accept(p);
        return p.op('u', '.').bytes();
    }

    /** Little-endian float32 bytes. */
    public static byte[] floats(float... v) {
        ByteBuffer b = ByteBuffer.allocate(4 * v.length).order(ByteOrder.LITTLE_ENDIAN);
        for (float x : v) {
            b.putFloat(x);
        }
        return b.array();
    }
}
