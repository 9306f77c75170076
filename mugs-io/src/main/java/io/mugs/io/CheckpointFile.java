package io.mugs.io;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.type.TypeReference;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Optional;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * The training-checkpoint file format, shared by the trainer (which writes and resumes) and the evaluation tools
 * (which read the teacher backbone): one safetensors file whose tensors are a {@link StateDict} by full name, whose
 * counters are JSON under {@value #COUNTERS_KEY}, and whose other metadata (configuration, manifest, input
 * normalisation) is the caller's. What the names inside mean is {@code io.mugs.eval.CheckpointLayout}'s. Every tensor carries a checksum (see {@link SafeTensors}), and {@link #read}
 * refuses a file with a non-finite value, so a damaged checkpoint is named instead of loaded.
 *
 * <pre>{@code
 * CheckpointFile.write(path, state, Map.of("note", "anything"));
 * CheckpointFile.Content c = CheckpointFile.read(path);
 * StateDict state = c.state();
 * }</pre>
 *
 * Files of the first format ({@code mugs-checkpoint-1}, which spelled the optimiser and queue keys differently and
 * kept counters in separate metadata entries) are read through {@link #fromFirstFormat}.
 */
public final class CheckpointFile {

    /** Value of the {@code format} metadata entry of files written now. */
    public static final String FORMAT = "mugs-checkpoint-2";
    /** Metadata key of the counters JSON object. */
    public static final String COUNTERS_KEY = "mugs.counters";

    private static final ObjectMapper JSON = new ObjectMapper();

    private CheckpointFile() {
    }

    /** What a checkpoint holds: the state and the metadata. */
    public record Content(StateDict state, Map<String, String> metadata) {

        /** The metadata entry {@code key}; an IOException naming {@code file} when it is missing. */
        public String metadata(String key, Path file) throws IOException {
            String v = metadata.get(key);
            if (v == null) {
                throw new IOException(file + ": no '" + key + "' metadata entry; it was not written by Mugs for Java "
                        + "or is damaged");
            }
            return v;
        }
    }

    /** Writes {@code state} and {@code metadata} atomically (a temporary file renamed over {@code file}). */
    public static void write(Path file, StateDict state, Map<String, String> metadata) throws IOException {
        Map<String, String> meta = new LinkedHashMap<>(metadata);
        meta.put("format", FORMAT);
        meta.put(COUNTERS_KEY, JSON.writeValueAsString(state.counters()));
        SafeTensors.write(file, state.tensors(), meta);
    }

    /**
     * Reads and verifies a checkpoint: safetensors structure, checksums, every value finite, counters well formed.
     *
     * @throws IOException one line naming the file and what is wrong with it
     */
    public static Content read(Path file) throws IOException {
        SafeTensors.Content c = SafeTensors.read(file);
        Map<String, String> meta = c.metadata();
        String format = meta.get("format");
        StateDict state;
        if (FORMAT.equals(format)) {
            state = new StateDict(c.tensors(), counters(file, meta.get(COUNTERS_KEY)));
        } else if ("mugs-checkpoint-1".equals(format)) {
            state = fromFirstFormat(file, c.tensors(), meta);
        } else {
            throw new IOException(file + " is not a Mugs training checkpoint (format '" + format + "'; expected '"
                    + FORMAT + "')");
        }
        Optional<String> bad = SafeTensors.firstNonFinite(state.tensors());
        if (bad.isPresent()) {
            throw new IOException(file + ": tensor '" + bad.get() + "' holds NaN or infinite values; the checkpoint "
                    + "is damaged or was saved after training diverged");
        }
        return new Content(state, meta);
    }

    private static Map<String, Long> counters(Path file, String json) throws IOException {
        if (json == null) {
            throw new IOException(file + ": no '" + COUNTERS_KEY + "' metadata entry; the checkpoint is damaged");
        }
        try {
            return JSON.readValue(json, new TypeReference<LinkedHashMap<String, Long>>() { });
        } catch (JsonProcessingException e) {
            throw new IOException(file + ": the '" + COUNTERS_KEY + "' metadata is not a JSON object of integers ("
                    + e.getOriginalMessage() + ")", e);
        }
    }

    /**
     * The state of a first-format file under today's names: {@code adam_m/X} to {@code adam/m/X}, {@code
     * state/instance_queue} to {@code instance_queue/rows} and so on; the step counts, pointers and iteration from
     * their metadata entries.
     */
    static StateDict fromFirstFormat(Path file, Map<String, INDArray> tensors, Map<String, String> meta)
            throws IOException {
        Map<String, INDArray> t = new LinkedHashMap<>();
        Map<String, Long> counters = new LinkedHashMap<>();
        tensors.forEach((k, v) -> {
            if (k.startsWith("adam_m/")) {
                t.put("adam/m/" + k.substring(7), v);
            } else if (k.startsWith("adam_v/")) {
                t.put("adam/v/" + k.substring(7), v);
            } else if (k.equals("state/centre")) {
                t.put("centre/centre", v);
            } else if (k.startsWith("state/")) {
                t.put(k.substring(6) + "/rows", v);
            } else {
                t.put(k, v);
            }
        });
        try {
            Map<String, Long> steps = JSON.readValue(metaOf(file, meta, "adam_steps"),
                    new TypeReference<LinkedHashMap<String, Long>>() { });
            steps.forEach((k, v) -> counters.put("adam/step/" + k, v));
            Map<String, Long> pointers = JSON.readValue(metaOf(file, meta, "pointers"),
                    new TypeReference<LinkedHashMap<String, Long>>() { });
            pointers.forEach((k, v) -> counters.put(k + "/pointer", v));
            counters.put("iteration", Long.parseLong(metaOf(file, meta, "iteration")));
        } catch (JsonProcessingException | NumberFormatException e) {
            throw new IOException(file + ": malformed counters in a first-format checkpoint (" + e.getMessage() + ")",
                    e);
        }
        return new StateDict(t, counters);
    }

    private static String metaOf(Path file, Map<String, String> meta, String key) throws IOException {
        String v = meta.get(key);
        if (v == null) {
            throw new IOException(file + ": no '" + key + "' metadata entry; the checkpoint is damaged");
        }
        return v;
    }
}
