package io.mugs.io;

import com.fasterxml.jackson.core.type.TypeReference;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Optional;
import java.util.TreeMap;
import java.util.zip.CRC32C;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.BooleanIndexing;
import org.nd4j.linalg.indexing.conditions.Conditions;

/**
 * Reader and writer of the <a href="https://github.com/huggingface/safetensors">safetensors</a> format: an
 * 8-byte little-endian header length, a JSON header mapping each tensor name to
 * {@code {dtype, shape, data_offsets}} (plus an optional string map {@code __metadata__}), then the raw
 * little-endian tensor bytes. It holds no code, and the whole header is checked before any tensor is read
 * ({@link SafeTensorsHeader}): offsets contiguous, in range and covering the data section, bytes equal to
 * dtype width times elements. Reading therefore allocates about the file's size, whatever the header claims.
 *
 * <p>Integrity: {@link #write} stores a CRC32C of every tensor's bytes in the metadata under
 * {@value #CHECKSUM_KEY} (one JSON object, tensor name to 8 hex digits) and {@link #read} verifies them when
 * present; files from other tools carry none and read as before.
 *
 * <p>Reads F64, F32, F16 and BF16 tensors (half precision widened to float) and I64/I32; writes F32 or F64 as the
 * array's type. Writes are atomic: a temporary file in the same folder, then a rename.
 *
 * <pre>{@code
 * SafeTensors.write(path, Map.of("w", weights), Map.of("format", "mugs-vit"));
 * SafeTensors.Content c = SafeTensors.read(path);   // c.tensors().get("w"), c.metadata()
 * Optional<String> bad = SafeTensors.firstNonFinite(c.tensors());   // name of a tensor holding NaN or Inf
 * }</pre>
 */
public final class SafeTensors {

    /** Metadata key of the per-tensor CRC32C checksums (JSON object: tensor name to 8 lowercase hex digits). */
    public static final String CHECKSUM_KEY = "mugs.crc32c";

    private static final ObjectMapper JSON = new ObjectMapper();

    /** Tensors in file order and the string metadata (including {@value #CHECKSUM_KEY} when the file has it). */
    public record Content(Map<String, INDArray> tensors, Map<String, String> metadata) {
    }

    private SafeTensors() {
    }

    /**
     * Writes {@code tensors} (FLOAT or DOUBLE arrays), {@code metadata} and a checksum per tensor atomically to
     * {@code path}. A {@value #CHECKSUM_KEY} entry in {@code metadata} is replaced by the fresh checksums.
     */
    public static void write(Path path, Map<String, INDArray> tensors, Map<String, String> metadata)
            throws IOException {
        Map<String, INDArray> sorted = new TreeMap<>(tensors);
        Map<String, String> sums = new TreeMap<>();
        for (Map.Entry<String, INDArray> e : sorted.entrySet()) {
            sums.put(e.getKey(), hex(crc(littleEndianBytes(e.getKey(), e.getValue()))));
        }
        Map<String, String> meta = new TreeMap<>(metadata);
        meta.put(CHECKSUM_KEY, JSON.writeValueAsString(sums));

        ObjectNode header = JSON.createObjectNode();
        meta.forEach(header.putObject("__metadata__")::put);
        long offset = 0;
        for (Map.Entry<String, INDArray> e : sorted.entrySet()) {
            INDArray a = e.getValue();
            long bytes = a.length() * a.dataType().width();
            ObjectNode t = header.putObject(e.getKey());
            t.put("dtype", a.dataType() == DataType.DOUBLE ? "F64" : "F32");
            var shape = t.putArray("shape");
            for (long s : a.shape()) {
                shape.add(s);
            }
            t.putArray("data_offsets").add(offset).add(offset + bytes);
            offset += bytes;
        }
        byte[] json = JSON.writeValueAsBytes(header);
        int padded = (json.length + 7) / 8 * 8;
        ByteBuffer prefix = ByteBuffer.allocate(8 + padded).order(ByteOrder.LITTLE_ENDIAN);
        prefix.putLong(padded).put(json);
        while (prefix.hasRemaining()) {
            prefix.put((byte) ' ');
        }
        prefix.flip();
        Path dir = path.toAbsolutePath().getParent();
        Files.createDirectories(dir);
        Path tmp = Files.createTempFile(dir, path.getFileName().toString(), ".tmp");
        try (FileChannel ch = FileChannel.open(tmp, StandardOpenOption.WRITE, StandardOpenOption.TRUNCATE_EXISTING)) {
            writeFully(ch, prefix);
            int written = 0;
            for (Map.Entry<String, INDArray> e : sorted.entrySet()) {
                if (written++ == sorted.size() / 2) {
                    FaultInjection.pauseIfWriting(path, tmp);
                    FaultInjection.failIfDiskFull(path);
                }
                writeFully(ch, littleEndianBytes(e.getKey(), e.getValue()));
            }
            ch.force(true);
        } catch (IOException | RuntimeException e) {
            Files.deleteIfExists(tmp);
            throw e;
        }
        Files.move(tmp, path, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
    }

    /** The tensor's values, row-major, little-endian, as the file stores them. */
    private static ByteBuffer littleEndianBytes(String name, INDArray a) {
        if (a.dataType() != DataType.FLOAT && a.dataType() != DataType.DOUBLE) {
            throw new IllegalArgumentException("Tensor '" + name + "' has type " + a.dataType()
                    + "; only FLOAT and DOUBLE are written");
        }
        INDArray c = a.dup('c');
        ByteBuffer data = ByteBuffer.allocate(Math.toIntExact(c.length() * c.dataType().width()))
                .order(ByteOrder.LITTLE_ENDIAN);
        if (c.dataType() == DataType.DOUBLE) {
            data.asDoubleBuffer().put(c.data().asDouble());
        } else {
            data.asFloatBuffer().put(c.data().asFloat());
        }
        return data;
    }

    private static long crc(ByteBuffer bytes) {
        CRC32C crc = new CRC32C();
        crc.update(bytes.duplicate());
        return crc.getValue();
    }

    private static String hex(long crc) {
        return String.format("%08x", crc);
    }

    private static void writeFully(FileChannel ch, ByteBuffer b) throws IOException {
        while (b.hasRemaining()) {
            ch.write(b);
        }
    }

    /**
     * Reads a safetensors file, verifying the checksums when it has them.
     *
     * @throws IOException with one line naming the file and the problem for truncated, malformed, inconsistent
     *                     or damaged files (nothing is allocated beyond the file's size before the header is valid)
     */
    public static Content read(Path path) throws IOException {
        try (FileChannel ch = FileChannel.open(path, StandardOpenOption.READ)) {
            SafeTensorsHeader header = SafeTensorsHeader.read(path, ch);
            Map<String, String> sums = checksums(path, header);
            Map<String, INDArray> tensors = new LinkedHashMap<>();
            for (SafeTensorsHeader.Entry e : header.tensors()) {
                ByteBuffer buf = ByteBuffer.allocate(Math.toIntExact(e.end() - e.begin()))
                        .order(ByteOrder.LITTLE_ENDIAN);
                readFully(path, ch, buf, header.dataStart() + e.begin());
                buf.flip();
                if (sums != null && !sums.get(e.name()).equalsIgnoreCase(hex(crc(buf)))) {
                    throw SafeTensorsHeader.bad(path, "checksum mismatch in tensor '" + e.name()
                            + "': the file is damaged");
                }
                tensors.put(e.name(), decode(e, buf));
            }
            return new Content(tensors, header.metadata());
        }
    }

    /**
     * The string metadata of a safetensors file, reading only its (bounded, validated) header.
     *
     * @throws IOException naming the file and the problem when the header is malformed or does not fit the file
     */
    public static Map<String, String> metadata(Path path) throws IOException {
        try (FileChannel ch = FileChannel.open(path, StandardOpenOption.READ)) {
            return SafeTensorsHeader.read(path, ch).metadata();
        }
    }

    /**
     * The name of the first tensor (in the map's order) holding a NaN or an infinity, if any; integer tensors are
     * skipped. For refusing damaged weights on load: {@code firstNonFinite(w).ifPresent(n -> ...)}.
     */
    public static Optional<String> firstNonFinite(Map<String, INDArray> tensors) {
        for (Map.Entry<String, INDArray> e : tensors.entrySet()) {
            INDArray a = e.getValue();
            if (a.dataType().isFPType() && !a.isEmpty() && BooleanIndexing.or(a, Conditions.notFinite())) {
                return Optional.of(e.getKey());
            }
        }
        return Optional.empty();
    }

    /** The checksum map of the metadata, or null for files without one; it must name exactly the tensors. */
    private static Map<String, String> checksums(Path path, SafeTensorsHeader header) throws IOException {
        String json = header.metadata().get(CHECKSUM_KEY);
        if (json == null) {
            return null;
        }
        Map<String, String> sums;
        try {
            sums = JSON.readValue(json, new TypeReference<Map<String, String>>() { });
        } catch (IOException e) {
            throw SafeTensorsHeader.bad(path, "the '" + CHECKSUM_KEY + "' metadata is not a JSON map of names to hex"
                    + " digits: the header is damaged");
        }
        for (SafeTensorsHeader.Entry e : header.tensors()) {
            if (sums.get(e.name()) == null) {
                throw SafeTensorsHeader.bad(path, "no checksum for tensor '" + e.name() + "': the header is damaged");
            }
        }
        if (sums.size() != header.tensors().size()) {
            throw SafeTensorsHeader.bad(path, "the checksums name " + sums.size() + " tensors but the file holds "
                    + header.tensors().size() + ": the header is damaged");
        }
        return sums;
    }

    private static INDArray decode(SafeTensorsHeader.Entry e, ByteBuffer buf) {
        int n = Math.toIntExact(e.elements());
        long[] shape = e.shape();
        switch (e.dtype()) {
            case "F64" -> {
                double[] v = new double[n];
                buf.asDoubleBuffer().get(v);
                return Nd4j.create(v, shape, DataType.DOUBLE);
            }
            case "F32" -> {
                float[] v = new float[n];
                buf.asFloatBuffer().get(v);
                return Nd4j.create(v, shape, DataType.FLOAT);
            }
            case "F16", "BF16" -> {
                boolean half = e.dtype().equals("F16");
                float[] v = new float[n];
                for (int i = 0; i < n; i++) {
                    short bits = buf.getShort();
                    v[i] = half ? halfToFloat(bits) : Float.intBitsToFloat((bits & 0xffff) << 16);
                }
                return Nd4j.create(v, shape, DataType.FLOAT);
            }
            case "I64" -> {
                long[] v = new long[n];
                buf.asLongBuffer().get(v);
                return Nd4j.createFromArray(v).reshape(shape);
            }
            default -> {
                int[] v = new int[n];
                buf.asIntBuffer().get(v);
                return Nd4j.createFromArray(v).reshape(shape);
            }
        }
    }

    /** IEEE 754 binary16 to float (Java 17 has no {@code Float.float16ToFloat}). */
    static float halfToFloat(short bits) {
        int h = bits & 0xffff;
        int sign = (h >>> 15) << 31;
        int exponent = (h >>> 10) & 0x1f;
        int mantissa = h & 0x3ff;
        if (exponent == 0x1f) {
            return Float.intBitsToFloat(sign | 0x7f800000 | (mantissa << 13));
        }
        if (exponent == 0) {
            float magnitude = mantissa * 0x1p-24f;
            return sign == 0 ? magnitude : -magnitude;
        }
        return Float.intBitsToFloat(sign | ((exponent + 112) << 23) | (mantissa << 13));
    }

    static void readFully(Path path, FileChannel ch, ByteBuffer b, long position) throws IOException {
        long pos = position;
        while (b.hasRemaining()) {
            int r = ch.read(b, pos);
            if (r < 0) {
                throw SafeTensorsHeader.bad(path, "unexpected end of file at byte " + pos + " (truncated file?)");
            }
            pos += r;
        }
    }
}
