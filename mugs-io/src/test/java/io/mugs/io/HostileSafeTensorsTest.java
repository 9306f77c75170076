package io.mugs.io;

import static io.mugs.io.HostileFiles.floats;
import static io.mugs.io.HostileFiles.refused;
import static io.mugs.io.HostileFiles.safetensors;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.management.ManagementFactory;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Optional;
import java.util.zip.CRC32C;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/** Fault injection for {@link SafeTensors}: lying headers refused before allocation, damage found by checksum. */
class HostileSafeTensorsTest {

    @TempDir
    Path dir;

    private static String tensor(String name, String dtype, String shape, long begin, long end) {
        return "\"" + name + "\":{\"dtype\":\"" + dtype + "\",\"shape\":" + shape + ",\"data_offsets\":[" + begin + ","
                + end + "]}";
    }

    @Test
    void writtenFilesCarryACrc32cPerTensorAndReadBack() throws Exception {
        Path file = dir.resolve("ok.safetensors");
        INDArray w = Nd4j.createFromArray(new float[] {1, 2, 3});
        INDArray d = Nd4j.createFromArray(new double[] {0.5, -0.25}).reshape(1, 2);
        SafeTensors.write(file, Map.of("w", w, "d", d), Map.of("format", "pt"));
        SafeTensors.Content c = SafeTensors.read(file);
        assertEquals(w, c.tensors().get("w"));
        assertEquals(d, c.tensors().get("d"));
        CRC32C crc = new CRC32C();
        crc.update(floats(1, 2, 3));
        String sums = c.metadata().get(SafeTensors.CHECKSUM_KEY);
        assertTrue(sums.contains(String.format("\"w\":\"%08x\"", crc.getValue())), sums);
        assertEquals(c.metadata(), SafeTensors.metadata(file));
        assertEquals("pt", SafeTensors.metadata(file).get("format"));
    }

    @Test
    void aBitFlipInTensorDataIsFoundByItsChecksum() throws Exception {
        Path file = dir.resolve("flip.safetensors");
        SafeTensors.write(file, Map.of("student/blocks.0.attn.qkv.weight", Nd4j.rand(DataType.FLOAT, 8, 4),
                "student/cls_token", Nd4j.rand(DataType.FLOAT, 1, 1, 4)), Map.of());
        byte[] bytes = Files.readAllBytes(file);
        bytes[bytes.length - 3] ^= 0x10;                          // inside the last tensor, by name order
        Files.write(file, bytes);
        refused("safetensors: one bit flipped in tensor data", file,
                "checksum mismatch in tensor 'student/cls_token': the file is damaged", () -> SafeTensors.read(file));
    }

    @Test
    void filesWithoutChecksumsFromOtherToolsStillRead() throws Exception {
        Path file = safetensors(dir.resolve("plain.safetensors"), "{" + tensor("a", "F32", "[2]", 0, 8) + ","
                + tensor("b", "F32", "[1]", 8, 12) + "}", floats(1, 2, 3));
        SafeTensors.Content c = SafeTensors.read(file);
        assertArrayEquals(new float[] {1, 2}, c.tensors().get("a").data().asFloat());
        assertArrayEquals(new float[] {3}, c.tensors().get("b").data().asFloat());
        assertEquals(Map.of(), c.metadata());
    }

    @Test
    void overlappingGappedAndOutOfRangeOffsetsAreRefused() throws Exception {
        int n = 1 << 20;                                      // 1000 tensors all claiming the same 4 MiB
        StringBuilder h = new StringBuilder("{");
        for (int i = 0; i < 1000; i++) {
            h.append(i == 0 ? "" : ",").append(tensor("t" + i, "F32", "[" + n + "]", 0, 4L * n));
        }
        Path overlap = safetensors(dir.resolve("overlap.safetensors"), h.append("}").toString(), new byte[4 * n]);
        refused("safetensors: 1000 tensors over the same 4 MiB", overlap, "overlaps tensor",
                () -> SafeTensors.read(overlap));

        Path gap = safetensors(dir.resolve("gap.safetensors"), "{" + tensor("a", "F32", "[4]", 0, 16) + ","
                + tensor("b", "F32", "[4]", 32, 48) + "}", new byte[48]);
        refused("safetensors: gap between tensors", gap, "a gap of 16 bytes precedes tensor 'b'",
                () -> SafeTensors.read(gap));

        Path range = safetensors(dir.resolve("range.safetensors"), "{" + tensor("a", "F32", "[1099511627776]", 0,
                4398046511104L) + "}", new byte[16]);
        refused("safetensors: offsets far past the end", range, "outside the data section of 16 bytes",
                () -> SafeTensors.read(range));

        Path trailing = safetensors(dir.resolve("trailing.safetensors"), "{" + tensor("a", "F32", "[2]", 0, 8) + "}",
                new byte[24]);
        refused("safetensors: data section longer than the tensors", trailing,
                "the tensors cover 8 bytes but the data section holds 24", () -> SafeTensors.read(trailing));
    }

    @Test
    void aHeaderFloodedWithEmptyTensorsIsRefused() throws Exception {
        StringBuilder h = new StringBuilder("{");
        for (int i = 0; i < 20_000; i++) {
            h.append(i == 0 ? "" : ",").append(tensor("t" + i, "F32", "[0]", 0, 0));
        }
        Path flood = safetensors(dir.resolve("flood.safetensors"), h.append("}").toString(), new byte[0]);
        refused("safetensors: 20,000 empty tensors in a 1.1 MB header", flood, "declares more than 2145 tensors",
                () -> SafeTensors.read(flood));
    }

    @Test
    void sizesThatDisagreeWithDtypeAndShapeAreRefused() throws Exception {
        Path wrong = safetensors(dir.resolve("bytes.safetensors"), "{" + tensor("a", "F32", "[5]", 0, 16) + "}",
                new byte[16]);
        refused("safetensors: F32 [5] spanning 16 bytes", wrong, "which needs 20 bytes, but spans 16",
                () -> SafeTensors.read(wrong));

        Path overflow = safetensors(dir.resolve("overflow.safetensors"), "{" + tensor("a", "F32",
                "[1099511627776,1099511627776]", 0, 16) + "}", new byte[16]);
        refused("safetensors: shape whose size overflows", overflow, "overflows 64 bits",
                () -> SafeTensors.read(overflow));

        Path negative = safetensors(dir.resolve("negative.safetensors"), "{" + tensor("a", "F32", "[-4]", 0, 16)
                + "}", new byte[16]);
        refused("safetensors: negative dimension", negative, "has a dimension that is not a natural number",
                () -> SafeTensors.read(negative));

        Path twice = safetensors(dir.resolve("twice.safetensors"), "{" + tensor("a", "F32", "[1]", 0, 4) + ","
                + tensor("a", "F32", "[1]", 4, 8) + "}", new byte[8]);
        refused("safetensors: the same name twice", twice, "Duplicate field 'a'", () -> SafeTensors.read(twice));
    }

    @Test
    void headerLengthLiesAndTruncationAreRefused() throws Exception {
        Path good = dir.resolve("good.safetensors");
        SafeTensors.write(good, Map.of("w", Nd4j.rand(DataType.FLOAT, 16, 16)), Map.of());
        byte[] bytes = Files.readAllBytes(good);

        Path cut = dir.resolve("cut.safetensors");
        Files.write(cut, Arrays.copyOf(bytes, bytes.length - 100));
        refused("safetensors: last 100 bytes cut", cut, "outside the data section", () -> SafeTensors.read(cut));

        Path lie = dir.resolve("lie.safetensors");
        byte[] lying = bytes.clone();
        ByteBuffer.wrap(lying).order(ByteOrder.LITTLE_ENDIAN).putLong(0, 1L << 40);
        Files.write(lie, lying);
        refused("safetensors: header length 2^40", lie, "header length 1099511627776 does not fit a file of",
                () -> SafeTensors.read(lie));
        refused("safetensors: header length 2^40 (metadata only)", lie, "header length 1099511627776",
                () -> SafeTensors.metadata(lie));

        Path notJson = safetensors(dir.resolve("text.safetensors"), "{\"a\": {\"dtype\": \"F32\", \"shape\": [1, 2",
                new byte[0]);
        refused("safetensors: header not JSON", notJson, "header is not valid JSON", () -> SafeTensors.read(notJson));

        Path tiny = dir.resolve("tiny.safetensors");
        Files.write(tiny, new byte[] {1, 2, 3});
        refused("safetensors: 3-byte file", tiny, "fewer than the 8-byte header length", () -> SafeTensors.read(tiny));
    }

    @Test
    void metadataReadsOnlyTheHeader() throws Exception {
        Path big = dir.resolve("big.safetensors");
        SafeTensors.write(big, Map.of("w", Nd4j.zeros(DataType.FLOAT, 1024, 1024)), Map.of("k", "v"));
        SafeTensors.metadata(big);                             // warm up
        var bean = (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
        long before = bean.getThreadAllocatedBytes(Thread.currentThread().getId());
        Map<String, String> meta = SafeTensors.metadata(big);
        long allocated = bean.getThreadAllocatedBytes(Thread.currentThread().getId()) - before;
        assertEquals("v", meta.get("k"));
        assertTrue(allocated < 256 * 1024, "metadata of a 4 MiB file allocated " + allocated + " bytes");
    }

    @Test
    void firstNonFiniteNamesTheFirstDamagedTensor() {
        Map<String, INDArray> m = new LinkedHashMap<>();
        m.put("fine", Nd4j.createFromArray(1f, 2f));
        m.put("ints", Nd4j.createFromArray(1, 2));
        assertEquals(Optional.empty(), SafeTensors.firstNonFinite(m));
        m.put("inf", Nd4j.createFromArray(1.0, Double.NEGATIVE_INFINITY));
        m.put("nan", Nd4j.createFromArray(Float.NaN, 0f));
        assertEquals(Optional.of("inf"), SafeTensors.firstNonFinite(m));
        m.remove("inf");
        assertEquals(Optional.of("nan"), SafeTensors.firstNonFinite(m));
    }
}
