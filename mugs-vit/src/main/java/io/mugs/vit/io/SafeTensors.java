package io.mugs.vit.io;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * Reader and writer of the <a href="https://github.com/huggingface/safetensors">safetensors</a> format: an
 * 8-byte little-endian header length, a JSON header mapping each tensor name to
 * {@code {dtype, shape, data_offsets}} (plus an optional string map {@code __metadata__}), then the raw
 * little-endian tensor bytes. It holds no code, so reading an untrusted file is safe; every offset and size is
 * checked before use.
 *
 * <p>Reads F64, F32, F16 and BF16 tensors (half precision widened to float) and I64/I32; writes F32 or F64 as the
 * array's type. Writes are atomic: a temporary file in the same folder, then a rename.
 *
 * <pre>{@code
 * SafeTensors.write(path, Map.of("w", weights), Map.of("format", "mugs-vit"));
 * SafeTensors.Content c = SafeTensors.read(path);   // c.tensors().get("w"), c.metadata()
 * }</pre>
 */
public final class SafeTensors {

    private static final ObjectMapper JSON = new ObjectMapper();
    private static final long MAX_HEADER = 100L * 1024 * 1024;

    /** Tensors in file order and the string metadata. */
    public record Content(Map<String, INDArray> tensors, Map<String, String> metadata) {
    }

    private SafeTensors() {
    }

    /** Writes {@code tensors} (FLOAT or DOUBLE arrays) and {@code metadata} atomically to {@code path}. */
    public static void write(Path path, Map<String, INDArray> tensors, Map<String, String> metadata)
            throws IOException {
        ObjectNode header = JSON.createObjectNode();
        if (!metadata.isEmpty()) {
            ObjectNode meta = header.putObject("__metadata__");
            new TreeMap<>(metadata).forEach(meta::put);
        }
        long offset = 0;
        List<INDArray> order = new ArrayList<>();
        for (Map.Entry<String, INDArray> e : new TreeMap<>(tensors).entrySet()) {
            INDArray a = e.getValue();
            String dtype = switch (a.dataType()) {
                case FLOAT -> "F32";
                case DOUBLE -> "F64";
                default -> throw new IllegalArgumentException("Tensor '" + e.getKey() + "' has type " + a.dataType()
                        + "; only FLOAT and DOUBLE are written");
            };
            long bytes = a.length() * a.dataType().width();
            ObjectNode t = header.putObject(e.getKey());
            t.put("dtype", dtype);
            var shape = t.putArray("shape");
            for (long s : a.shape()) {
                shape.add(s);
            }
            t.putArray("data_offsets").add(offset).add(offset + bytes);
            offset += bytes;
            order.add(a);
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
            for (INDArray a : order) {
                if (written++ == order.size() / 2) {
                    FaultInjection.pauseIfWriting(path, tmp);
                }
                INDArray c = a.dup('c');
                ByteBuffer data = ByteBuffer.allocate(Math.toIntExact(c.length() * c.dataType().width()))
                        .order(ByteOrder.LITTLE_ENDIAN);
                if (c.dataType() == DataType.DOUBLE) {
                    data.asDoubleBuffer().put(c.data().asDouble());
                } else {
                    data.asFloatBuffer().put(c.data().asFloat());
                }
                writeFully(ch, data);
            }
            ch.force(true);
        } catch (IOException | RuntimeException e) {
            Files.deleteIfExists(tmp);
            throw e;
        }
        Files.move(tmp, path, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
    }

    private static void writeFully(FileChannel ch, ByteBuffer b) throws IOException {
        while (b.hasRemaining()) {
            ch.write(b);
        }
    }

    /**
     * Reads a safetensors file.
     *
     * @throws IOException with a message naming the file and the inconsistency for truncated or malformed files
     */
    public static Content read(Path path) throws IOException {
        try (FileChannel ch = FileChannel.open(path, StandardOpenOption.READ)) {
            long size = ch.size();
            if (size < 8) {
                throw bad(path, "file has " + size + " bytes, fewer than the 8-byte header length");
            }
            ByteBuffer lenBuf = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
            readFully(ch, lenBuf, 0);
            long headerLen = lenBuf.flip().getLong();
            if (headerLen <= 0 || headerLen > MAX_HEADER || 8 + headerLen > size) {
                throw bad(path, "header length " + headerLen + " does not fit a file of " + size + " bytes");
            }
            ByteBuffer headerBuf = ByteBuffer.allocate((int) headerLen);
            readFully(ch, headerBuf, 8);
            JsonNode header;
            try {
                header = JSON.readTree(new String(headerBuf.array(), StandardCharsets.UTF_8));
            } catch (IOException e) {
                throw bad(path, "header is not JSON (" + e.getMessage() + ")");
            }
            if (header == null || !header.isObject()) {
                throw bad(path, "header is not a JSON object");
            }
            long dataStart = 8 + headerLen;
            long dataSize = size - dataStart;
            Map<String, String> metadata = new LinkedHashMap<>();
            Map<String, INDArray> tensors = new LinkedHashMap<>();
            for (Iterator<Map.Entry<String, JsonNode>> it = header.fields(); it.hasNext(); ) {
                Map.Entry<String, JsonNode> e = it.next();
                if (e.getKey().equals("__metadata__")) {
                    e.getValue().fields().forEachRemaining(m -> metadata.put(m.getKey(), m.getValue().asText()));
                    continue;
                }
                tensors.put(e.getKey(), readTensor(path, ch, e.getKey(), e.getValue(), dataStart, dataSize));
            }
            return new Content(tensors, metadata);
        }
    }

    private static INDArray readTensor(Path path, FileChannel ch, String name, JsonNode spec, long dataStart,
                                       long dataSize) throws IOException {
        String dtype = spec.path("dtype").asText("");
        JsonNode shapeNode = spec.path("shape");
        JsonNode offsets = spec.path("data_offsets");
        if (!shapeNode.isArray() || !offsets.isArray() || offsets.size() != 2) {
            throw bad(path, "tensor '" + name + "' lacks a shape or data_offsets");
        }
        long[] shape = new long[shapeNode.size()];
        long count = 1;
        for (int i = 0; i < shape.length; i++) {
            shape[i] = shapeNode.get(i).asLong(-1);
            if (shape[i] < 0) {
                throw bad(path, "tensor '" + name + "' has a negative dimension");
            }
            count = Math.multiplyExact(count, shape[i]);
        }
        int width = switch (dtype) {
            case "F64", "I64" -> 8;
            case "F32", "I32" -> 4;
            case "F16", "BF16" -> 2;
            default -> throw bad(path, "tensor '" + name + "' has unsupported dtype '" + dtype + "'");
        };
        long begin = offsets.get(0).asLong(-1);
        long end = offsets.get(1).asLong(-1);
        if (begin < 0 || end < begin || end > dataSize || end - begin != count * width) {
            throw bad(path, "tensor '" + name + "' spans bytes [" + begin + ", " + end + ") but needs "
                    + count * width + " bytes inside a data section of " + dataSize + " (truncated file?)");
        }
        ByteBuffer buf = ByteBuffer.allocate(Math.toIntExact(end - begin)).order(ByteOrder.LITTLE_ENDIAN);
        readFully(ch, buf, dataStart + begin);
        buf.flip();
        int n = Math.toIntExact(count);
        INDArray out;
        switch (dtype) {
            case "F64" -> {
                double[] v = new double[n];
                buf.asDoubleBuffer().get(v);
                out = Nd4j.create(v, shape, DataType.DOUBLE);
            }
            case "F32" -> {
                float[] v = new float[n];
                buf.asFloatBuffer().get(v);
                out = Nd4j.create(v, shape, DataType.FLOAT);
            }
            case "F16", "BF16" -> {
                float[] v = new float[n];
                for (int i = 0; i < n; i++) {
                    short bits = buf.getShort();
                    v[i] = dtype.equals("F16") ? halfToFloat(bits) : Float.intBitsToFloat((bits & 0xffff) << 16);
                }
                out = Nd4j.create(v, shape, DataType.FLOAT);
            }
            case "I64" -> {
                long[] v = new long[n];
                buf.asLongBuffer().get(v);
                out = Nd4j.createFromArray(v).reshape(shape);
            }
            default -> {
                int[] v = new int[n];
                buf.asIntBuffer().get(v);
                out = Nd4j.createFromArray(v).reshape(shape);
            }
        }
        return out;
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

    private static void readFully(FileChannel ch, ByteBuffer b, long position) throws IOException {
        long pos = position;
        while (b.hasRemaining()) {
            int r = ch.read(b, pos);
            if (r < 0) {
                throw new IOException("unexpected end of file at byte " + pos);
            }
            pos += r;
        }
    }

    private static IOException bad(Path path, String what) {
        return new IOException("Not a valid safetensors file " + path + ": " + what);
    }
}
