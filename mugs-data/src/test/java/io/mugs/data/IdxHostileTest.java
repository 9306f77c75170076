package io.mugs.data;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.OutputStream;
import java.lang.management.ManagementFactory;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.zip.GZIPOutputStream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Fault injection for {@link IdxImageSource}: lying headers are refused before the pixels are allocated. */
class IdxHostileTest {

    @TempDir
    Path dir;

    /** An idx file: magic, dimensions, then {@code data}; gzip-compressed when the name ends in .gz. */
    private Path idx(String name, int magic, int[] dims, byte[] data) throws IOException {
        ByteBuffer b = ByteBuffer.allocate(4 + 4 * dims.length + data.length).putInt(magic);
        for (int d : dims) {
            b.putInt(d);
        }
        b.put(data);
        Path file = dir.resolve(name);
        try (OutputStream out = name.endsWith(".gz") ? new GZIPOutputStream(Files.newOutputStream(file))
                : Files.newOutputStream(file)) {
            out.write(b.array());
        }
        return file;
    }

    /** One IOException naming the file and the problem; the warm attempt allocates < 4x the file + 1 MiB. */
    private static void refused(String what, Path file, String problem, Path labels) throws IOException {
        IOException e = assertThrows(IOException.class, () -> IdxImageSource.read(file, labels, List.of()));
        String m = e.getMessage();
        Path named = labels != null && m.startsWith(labels.toString()) ? labels : file;
        assertTrue(m.contains(named.toString()) && m.contains(problem), m);
        var bean = (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
        long before = bean.getThreadAllocatedBytes(Thread.currentThread().getId());
        assertThrows(IOException.class, () -> IdxImageSource.read(file, labels, List.of()));
        long allocated = bean.getThreadAllocatedBytes(Thread.currentThread().getId()) - before;
        long size = Files.size(named);
        assertTrue(allocated < 4 * size + (1 << 20), what + ": allocated " + allocated);
        System.out.printf("HOSTILE | %s | %,d | %,d | %s%n", what, size, allocated,
                m.replace(named.toString(), "<file>"));
    }

    @Test
    void honestFilesReadPlainAndCompressed() throws Exception {
        byte[] pixels = {0, 1, 2, 3, 4, 5, 6, 7, (byte) 200, 9, 10, 11};
        for (String ext : new String[] {"", ".gz"}) {
            Path images = idx("ok-images" + ext, 0x803, new int[] {3, 2, 2}, pixels);
            Path labels = idx("ok-labels" + ext, 0x801, new int[] {3}, new byte[] {7, 0, 9});
            IdxImageSource s = IdxImageSource.read(images, labels, List.of("a"));
            assertEquals(3, s.size());
            assertArrayEquals(new float[] {4, 5, 6, 7}, s.load(1).data());
            assertArrayEquals(new float[] {200, 9, 10, 11}, s.load(2).data());
            assertEquals(7, s.label(0));
            assertEquals(9, s.label(2));
        }
    }

    @Test
    void lyingDimensionsInPlainFilesAreRefused() throws Exception {
        Path lying = idx("lying-images-idx3-ubyte", 0x803, new int[] {60_000, 28, 28}, new byte[1000]);
        refused("idx: header 60000x28x28, 1000 pixel bytes", lying,
                "declares 60000 images of 28x28 (47040000 bytes) but the file holds 1000 bytes after the header: the "
                        + "file is truncated", null);

        Path huge = idx("huge-images-idx3-ubyte", 0x803, new int[] {Integer.MAX_VALUE, Integer.MAX_VALUE,
                Integer.MAX_VALUE}, new byte[16]);
        refused("idx: header (2^31-1)^3 pixels", huge, "the file is truncated", null);

        Path longer = idx("long-images-idx3-ubyte", 0x803, new int[] {1, 2, 2}, new byte[10]);
        refused("idx: 6 bytes beyond the declared pixels", longer, "the file is not what its header says", null);

        Path negative = idx("neg-images-idx3-ubyte", 0x803, new int[] {-1, 28, 28}, new byte[0]);
        refused("idx: negative count", negative, "dimension 0 is -1", null);

        Path images = idx("two-images-idx3-ubyte", 0x803, new int[] {2, 1, 1}, new byte[2]);
        Path labels = idx("lying-labels-idx1-ubyte", 0x801, new int[] {1 << 30}, new byte[2]);
        refused("idx labels: header 2^30 labels, 2 bytes", images, "declares 1073741824 labels", labels);
    }

    @Test
    void lyingDimensionsInGzipFilesAreRefused() throws Exception {
        Path lying = idx("lying-images-idx3-ubyte.gz", 0x803, new int[] {60_000, 28, 28}, new byte[10]);
        refused("idx.gz: header 60000x28x28 in a tiny gzip", lying,
                "more than a gzip file of " + Files.size(lying) + " bytes can inflate to", null);

        Path cut = idx("cut-images-idx3-ubyte.gz", 0x803, new int[] {10, 28, 28}, new byte[100]);
        refused("idx.gz: header 10x28x28, 100 pixel bytes", cut, "but ends after 100 of them: the file is truncated",
                null);

        Path more = idx("more-images-idx3-ubyte.gz", 0x803, new int[] {1, 2, 2}, new byte[4096]);
        refused("idx.gz: 4092 bytes beyond the declared pixels", more, "but holds more", null);

        Path notGzip = dir.resolve("plain-images-idx3-ubyte.gz");
        Files.write(notGzip, new byte[64]);
        refused("idx.gz: not gzip at all", notGzip, "is not a readable gzip file", null);
    }
}
