package io.mugs.io;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.core.StreamReadFeature;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
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

    /**
     * Tensors a file may declare: one per {@value #BYTES_PER_TENSOR} bytes of file plus {@value #MIN_TENSOR_BOUND}.
     * Each array costs ND4J a few KiB whatever its size, so this keeps a header full of empty tensors from costing
     * more memory than about 4x the file (real checkpoints hold one tensor per many KiB).
     */
    static final int BYTES_PER_TENSOR = 1024;
    static final int MIN_TENSOR_BOUND = 1024;

    /** Streaming, so the header costs little more than its own bytes; names are not interned (no symbol table). */
    private static final JsonFactory JSON = JsonFactory.builder()
            .enable(StreamReadFeature.STRICT_DUPLICATE_DETECTION)
            .disable(JsonFactory.Feature.CANONICALIZE_FIELD_NAMES).build();

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
        long dataStart = 8 + headerLen;
        long dataSize = size - dataStart;
        long maxTensors = MIN_TENSOR_BOUND + size / BYTES_PER_TENSOR;
        Map<String, String> metadata = new LinkedHashMap<>();
        List<Entry> tensors = new ArrayList<>();
        try (JsonParser p = JSON.createParser(headerBuf.array())) {
            expect(path, p.nextToken() == JsonToken.START_OBJECT, "the header is not a JSON object");
            while (p.nextToken() == JsonToken.FIELD_NAME) {
                String name = p.currentName();
                p.nextToken();
                if (name.equals("__metadata__")) {
                    readMetadata(path, p, metadata);
                } else {
                    if (tensors.size() >= maxTensors) {
                        throw bad(path, "it declares more than " + maxTensors + " tensors, more than a file of " + size
                                + " bytes may (one per " + BYTES_PER_TENSOR + " bytes, plus " + MIN_TENSOR_BOUND + ")");
                    }
                    tensors.add(entry(path, name, p, dataSize));
                }
            }
            expect(path, p.currentToken() == JsonToken.END_OBJECT && p.nextToken() == null,
                    "the header has content after its JSON object");
        } catch (JsonProcessingException e) {
            throw bad(path, "header is not valid JSON (" + e.getOriginalMessage().lines().findFirst().orElse("")
                    .replaceAll(" \\(start marker at .*", "") + ")");
        }
        checkLayout(path, tensors, dataSize);
        return new SafeTensorsHeader(metadata, tensors, dataStart);
    }

    private static void expect(Path path, boolean ok, String what) throws IOException {
        if (!ok) {
            throw bad(path, what);
        }
    }

    private static void readMetadata(Path path, JsonParser p, Map<String, String> out) throws IOException {
        expect(path, p.currentToken() == JsonToken.START_OBJECT, "__metadata__ is not a JSON object of strings");
        while (p.nextToken() == JsonToken.FIELD_NAME) {
            String key = p.currentName();
            if (p.nextToken() != JsonToken.VALUE_STRING) {
                throw bad(path, "__metadata__ entry '" + key + "' is not a string");
            }
            out.put(key, p.getText());
        }
    }

    /** Reads one tensor's {@code {dtype, shape, data_offsets}} object from the parser and checks it. */
    private static Entry entry(Path path, String name, JsonParser p, long dataSize) throws IOException {
        if (p.currentToken() != JsonToken.START_OBJECT) {
            throw bad(path, "tensor '" + name + "' is not a JSON object");
        }
        String dtype = "";
        List<Long> shapeList = null;
        List<Long> offsets = null;
        while (p.nextToken() == JsonToken.FIELD_NAME) {
            String field = p.currentName();
            JsonToken t = p.nextToken();
            switch (field) {
                case "dtype" -> dtype = t == JsonToken.VALUE_STRING ? p.getText() : "";
                case "shape" -> shapeList = naturals(path, name, p, MAX_RANK);
                case "data_offsets" -> offsets = naturals(path, name, p, 2);
                default -> p.skipChildren();
            }
        }
        if (shapeList == null || offsets == null || offsets.size() != 2) {
            throw bad(path, "tensor '" + name + "' lacks a shape or a pair of data_offsets");
        }
        int width = switch (dtype) {
            case "F64", "I64" -> 8;
            case "F32", "I32" -> 4;
            case "F16", "BF16" -> 2;
            default -> throw bad(path, "tensor '" + name + "' has unsupported dtype '" + dtype
                    + "' (F64, F32, F16, BF16, I64 and I32 are read)");
        };
        long[] shape = shapeList.stream().mapToLong(Long::longValue).toArray();
        long count = 1;
        for (long dim : shape) {
            if (dim < 0) {
                throw bad(path, "tensor '" + name + "' has a dimension that is not a natural number");
            }
            count = count == 0 || dim <= Long.MAX_VALUE / 8 / count ? count * dim : -1;
            if (count < 0) {
                throw bad(path, "tensor '" + name + "' declares a shape whose size overflows 64 bits");
            }
        }
        long begin = offsets.get(0);
        long end = offsets.get(1);
        if (begin < 0 || end < begin || end > dataSize) {
            throw bad(path, "tensor '" + name + "' spans bytes [" + begin + ", " + end + ") outside the data section "
                    + "of " + dataSize + " bytes (truncated file?)");
        }
        if (end - begin != count * width) {
            throw bad(path, "tensor '" + name + "' is " + dtype + " of shape " + shapeList + ", which needs "
                    + count * width + " bytes, but spans " + (end - begin));
        }
        if (count > Integer.MAX_VALUE - 8) {
            throw bad(path, "tensor '" + name + "' has " + count + " elements, more than one Java array holds");
        }
        return new Entry(name, dtype, shape, count, begin, end);
    }

    /** A JSON array of at most {@code max} integers; entries that are not natural numbers become -1. */
    private static List<Long> naturals(Path path, String name, JsonParser p, int max) throws IOException {
        if (p.currentToken() != JsonToken.START_ARRAY) {
            throw bad(path, "tensor '" + name + "' has a shape or data_offsets that is not an array");
        }
        List<Long> out = new ArrayList<>();
        for (JsonToken t = p.nextToken(); t != JsonToken.END_ARRAY; t = p.nextToken()) {
            if (out.size() >= max) {
                throw bad(path, "tensor '" + name + "' has more than " + max + " entries in an array");
            }
            boolean natural = t == JsonToken.VALUE_NUMBER_INT && p.getNumberType() != JsonParser.NumberType.BIG_INTEGER
                    && p.getLongValue() >= 0;
            if (!natural) {
                p.skipChildren();
            }
            out.add(natural ? p.getLongValue() : -1L);
        }
        return out;
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
