package io.mugs.core;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.mugs.data.LogText;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The files of a run folder other than checkpoints, kept consistent across crashes and resumes: {@code
 * config.json} (written atomically, only after the resume check), {@code metrics.jsonl} (rows past the resumed
 * checkpoint dropped, so a resumed run has no duplicate steps) and the temporary files a killed write leaves behind.
 *
 * <pre>{@code
 * RunFolder.removeStaleTemporaryFiles(dir);
 * RunFolder.dropMetricsAfter(dir.resolve("metrics.jsonl"), trainer.iteration());
 * }</pre>
 */
public final class RunFolder {

    private static final Logger LOG = LoggerFactory.getLogger(RunFolder.class);
    private static final ObjectMapper JSON = new ObjectMapper();

    private RunFolder() {
    }

    /** Deletes the {@code .tmp} files that a killed checkpoint, config or metrics write left in {@code dir}. */
    public static int removeStaleTemporaryFiles(Path dir) throws IOException {
        if (!Files.isDirectory(dir)) {
            return 0;
        }
        List<Path> stale;
        try (Stream<Path> s = Files.list(dir)) {
            stale = s.filter(p -> isStaleTemporary(p.getFileName().toString())).sorted().toList();
        }
        for (Path p : stale) {
            Files.deleteIfExists(p);
        }
        if (!stale.isEmpty()) {
            LOG.info("removed {} temporary file(s) left by an interrupted write: {}", stale.size(),
                    stale.stream().map(p -> LogText.quoted(p.getFileName())).toList());
        }
        return stale.size();
    }

    /**
     * The temporary files of the library's atomic writes: {@code checkpoint-*.tmp}, {@code config.json*.tmp},
     * {@code metrics.jsonl*.tmp} and every safetensors write's ({@code teacher.safetensors123.tmp}, exports).
     */
    static boolean isStaleTemporary(String name) {
        return name.endsWith(".tmp") && (name.startsWith("checkpoint-") || name.startsWith("config.json")
                || name.startsWith("metrics.jsonl") || name.contains(".safetensors"));
    }

    /**
     * The recipe stored in {@code dir}'s {@code config.json}, if it holds one that reads: what a rerun reuses instead
     * of measuring again (the input normalisation measured at the first start).
     */
    public static java.util.Optional<MugsConfig> storedConfig(Path dir) {
        Path file = dir.resolve("config.json");
        if (!Files.isRegularFile(file)) {
            return java.util.Optional.empty();
        }
        try {
            return java.util.Optional.of(MugsConfig.fromJson(Files.readString(file, StandardCharsets.UTF_8)));
        } catch (IOException | IllegalArgumentException e) {
            LOG.warn("{} does not read as a configuration ({}); it is not reused", file, e.getMessage());
            return java.util.Optional.empty();
        }
    }

    /** Writes {@code config.json} atomically. */
    static void writeConfig(Path dir, MugsConfig config) throws IOException {
        writeAtomically(dir.resolve("config.json"), config.toJson());
    }

    /**
     * Keeps the rows of a metrics file that belong to the first {@code iteration} steps (and the evaluations made
     * then), dropping later rows and any line a crash cut short; with {@code iteration} 0 the file is emptied.
     *
     * @return the number of rows dropped
     */
    public static int dropMetricsAfter(Path file, long iteration) throws IOException {
        if (!Files.isRegularFile(file)) {
            return 0;
        }
        List<String> kept = new ArrayList<>();
        List<Integer> damaged = new ArrayList<>();
        int dropped = 0;
        int number = 0;
        for (byte[] raw : lines(Files.readAllBytes(file))) {
            number++;
            String line = utf8(raw);
            if (line == null || (!line.isBlank() && !isJsonObject(line))) {
                damaged.add(number);   // a bad byte or a line cut short: dropped, never fatal
                dropped++;
            } else if (iteration > 0 && keep(line, iteration)) {
                kept.add(line);
            } else if (!line.isBlank()) {
                dropped++;
            }
        }
        if (!damaged.isEmpty()) {
            LOG.warn("{}: dropped {} damaged line(s) (not UTF-8 or not a JSON object), line number(s) {}",
                    LogText.quoted(file), damaged.size(), damaged.size() > 10
                            ? damaged.subList(0, 10) + " ..." : damaged);
        }
        if (dropped > 0) {
            writeAtomically(file, kept.isEmpty() ? "" : String.join("\n", kept) + "\n");
            LOG.info("{}: dropped {} row(s) past iteration {} or damaged (written after the checkpoint being "
                    + "resumed)", LogText.quoted(file), dropped, iteration);
        }
        return dropped;
    }

    private static List<byte[]> lines(byte[] all) {
        List<byte[]> out = new ArrayList<>();
        int start = 0;
        for (int i = 0; i <= all.length; i++) {
            if (i == all.length || all[i] == '\n') {
                if (i > start || i < all.length) {
                    out.add(java.util.Arrays.copyOfRange(all, start, i));
                }
                start = i + 1;
            }
        }
        return out;
    }

    /** The line decoded as strict UTF-8, or null when it holds a byte sequence UTF-8 does not allow. */
    private static String utf8(byte[] raw) {
        try {
            return StandardCharsets.UTF_8.newDecoder().onMalformedInput(java.nio.charset.CodingErrorAction.REPORT)
                    .onUnmappableCharacter(java.nio.charset.CodingErrorAction.REPORT)
                    .decode(java.nio.ByteBuffer.wrap(raw)).toString();
        } catch (java.nio.charset.CharacterCodingException e) {
            return null;
        }
    }

    private static boolean isJsonObject(String line) {
        try {
            JsonNode row = JSON.readTree(line);
            return row != null && row.isObject();
        } catch (IOException e) {
            return false;
        }
    }

    private static boolean keep(String line, long iteration) {
        try {
            JsonNode row = JSON.readTree(line);
            return row != null && row.path("iteration").canConvertToLong() && row.path("iteration").asLong() < iteration;
        } catch (IOException e) {
            return false;   // a line cut short by a crash
        }
    }

    private static void writeAtomically(Path file, String text) throws IOException {
        Path tmp = file.resolveSibling(file.getFileName() + ".tmp");
        Files.writeString(tmp, text, StandardCharsets.UTF_8);
        Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
    }
}
