package io.mugs.vit.io;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The validated header of a safetensors file: every rule of the format is checked against the file's real size
 * before a caller allocates anything for the data. Offsets must be in range, contiguous and non-overlapping and
 * cover the data section exactly; each tensor's byte span must equal its dtype width times its element count;
 * names are unique; metadata values are strings.
 *
 * <pre>{@code
 * SafeTensorsHeader h = SafeTensorsHeader.read(path, channel);   // h.tensors(): name, dtype, shape, offsets
 * }</pre>
 */
record SafeTensorsHeader(Map<String, String> metadata, List<Entry> tensors, long dataStart) {

    /** The format's own bound on the JSON header (the reference implementation refuses larger ones). */
    static final long MAX_HEADER = 100_000_000L;

    /** Tensors of more dimensions than this are refused (real models use at most 5 or 6). */
    static final int MAX_RANK = 64;

    private static final ObjectMapper JSON = new ObjectMapper()
            .enable(JsonParser.Feature.STRICT_DUPLICATE_DETECTION);

    /** One tensor: its byte span {@code [begin, end)} is relative to the start of the data section. */
    record Entry(String name, String dtype, long[] shape, long elements, long begin, long end) {
    }

    static IOException bad(Path path, String what) {
        return new IOException("Not a valid safetensors file " + path + ": " + what);
    }

    /** Reads and validates the header of the file open in {@code ch}. */
    static SafeTensorsHeader read(Path path, FileChannel ch) throws IOException {
        long size = ch.size();
        if (size < 8) {
            throw bad(path, "file has " + size + " bytes, fewer than the 8-byte header length");
        }
        ByteBuffer lenBuf = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
        SafeTensors.readFully(path, ch, lenBuf, 0);
        long headerLen = lenBuf.flip().getLong();
        if (headerLen < 2 || headerLen > MAX_HEADER || headerLen > size - 8) {
            throw bad(path, "header length " + headerLen + " does not fit a file of " + size + " bytes (at most "
                    + MAX_HEADER + "; truncated file?)");
        }
        ByteBuffer headerBuf = ByteBuffer.allocate((int) headerLen);
        SafeTensors.readFully(path, ch, headerBuf, 8);
        JsonNode header;
        try {
            header = JSON.readTree(headerBuf.array());
        } catch (JsonProcessingException e) {
            throw bad(path, "header is not valid JSON (" + e.getOriginalMessage().lines().findFirst().orElse("")
                    .replaceAll(" \\(start marker at .*", "") + ")");
        }
        if (header == null || !header.isObject()) {
            throw bad(path, "header is not a JSON object");
        }
        long dataStart = 8 + headerLen;
        long dataSize = size - dataStart;
        Map<String, String> metadata = new LinkedHashMap<>();
        List<Entry> tensors = new ArrayList<>();
        for (Iterator<Map.Entry<String, JsonNode>> it = header.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> e = it.next();
            if (e.getKey().equals("__metadata__")) {
                readMetadata(path, e.getValue(), metadata);
            } else {
                tensors.add(entry(path, e.getKey(), e.getValue(), dataSize));
            }
        }
        checkLayout(path, tensors, dataSize);
        return new SafeTensorsHeader(metadata, tensors, dataStart);
    }

    private static void readMetadata(Path path, JsonNode node, Map<String, String> out) throws IOException {
        if (!node.isObject()) {
            throw bad(path, "__metadata__ is not a JSON object of strings");
        }
        for (Iterator<Map.Entry<String, JsonNode>> it = node.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> m = it.next();
            if (!m.getValue().isTextual()) {
                throw bad(path, "__metadata__ entry '" + m.getKey() + "' is not a string");
            }
            out.put(m.getKey(), m.getValue().textValue());
        }
    }

    private static Entry entry(Path path, String name, JsonNode spec, long dataSize) throws IOException {
        JsonNode shapeNode = spec.path("shape");
        JsonNode offsets = spec.path("data_offsets");
        if (!spec.isObject() || !shapeNode.isArray() || !offsets.isArray() || offsets.size() != 2) {
            throw bad(path, "tensor '" + name + "' lacks a shape or a pair of data_offsets");
        }
        if (shapeNode.size() > MAX_RANK) {
            throw bad(path, "tensor '" + name + "' has " + shapeNode.size() + " dimensions (at most " + MAX_RANK + ")");
        }
        String dtype = spec.path("dtype").asText("");
        int width = switch (dtype) {
            case "F64", "I64" -> 8;
            case "F32", "I32" -> 4;
            case "F16", "BF16" -> 2;
            default -> throw bad(path, "tensor '" + name + "' has unsupported dtype '" + dtype
                    + "' (F64, F32, F16, BF16, I64 and I32 are read)");
        };
        long[] shape = new long[shapeNode.size()];
        long count = 1;
        for (int i = 0; i < shape.length; i++) {
            shape[i] = natural(shapeNode.get(i));
            if (shape[i] < 0) {
                throw bad(path, "tensor '" + name + "' has dimension " + shapeNode.get(i) + ", not a natural number");
            }
            count = count == 0 || shape[i] <= Long.MAX_VALUE / 8 / count ? count * shape[i] : -1;
            if (count < 0) {
                throw bad(path, "tensor '" + name + "' declares a shape whose size overflows 64 bits");
            }
        }
        long begin = natural(offsets.get(0));
        long end = natural(offsets.get(1));
        if (begin < 0 || end < begin || end > dataSize) {
            throw bad(path, "tensor '" + name + "' spans bytes [" + offsets.get(0) + ", " + offsets.get(1)
                    + ") outside the data section of " + dataSize + " bytes (truncated file?)");
        }
        if (end - begin != count * width) {
            throw bad(path, "tensor '" + name + "' is " + dtype + " of shape " + shapeNode + ", which needs "
                    + count * width + " bytes, but spans " + (end - begin));
        }
        if (count > Integer.MAX_VALUE - 8) {
            throw bad(path, "tensor '" + name + "' has " + count + " elements, more than one Java array holds");
        }
        return new Entry(name, dtype, shape, count, begin, end);
    }

    /** The node's value as a non-negative long, or -1 when it is not one. */
    private static long natural(JsonNode n) {
        return n.isIntegralNumber() && n.canConvertToLong() && n.longValue() >= 0 ? n.longValue() : -1;
    }

    /** Offsets in order of position must start at 0, touch without gaps or overlaps and end at the data's end. */
    private static void checkLayout(Path path, List<Entry> tensors, long dataSize) throws IOException {
        List<Entry> byPosition = new ArrayList<>(tensors);
        byPosition.sort(Comparator.comparingLong(Entry::begin).thenComparingLong(Entry::end));
        long expected = 0;
        Entry previous = null;
        for (Entry e : byPosition) {
            if (e.begin() < expected) {
                throw bad(path, "tensor '" + e.name() + "' at bytes [" + e.begin() + ", " + e.end()
                        + ") overlaps tensor '" + previous.name() + "' at [" + previous.begin() + ", "
                        + previous.end() + ")");
            }
            if (e.begin() > expected) {
                throw bad(path, "a gap of " + (e.begin() - expected) + " bytes precedes tensor '" + e.name()
                        + "' at byte " + e.begin() + " (the format requires contiguous data)");
            }
            expected = e.end();
            previous = e;
        }
        if (expected != dataSize) {
            throw bad(path, "the tensors cover " + expected + " bytes but the data section holds " + dataSize
                    + " (trailing bytes or a damaged header)");
        }
    }
}
