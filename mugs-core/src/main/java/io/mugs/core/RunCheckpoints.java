package io.mugs.core;

import com.fasterxml.jackson.databind.ObjectMapper;
import io.mugs.data.LogText;
import io.mugs.engine.Backend;
import io.mugs.eval.CheckpointLayout;
import io.mugs.io.CheckpointFile;
import io.mugs.io.StateDict;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.stream.Stream;
import org.nd4j.linalg.factory.Nd4j;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The checkpoint policy of a run folder: {@code checkpoint-<iteration>.safetensors} files in the {@link
 * CheckpointFile} format holding the whole {@link MugsTrainer} state ({@link MugsTrainer#saveState}) plus, as
 * metadata, the {@link MugsConfig} JSON, the input normalisation, the training time and a run manifest (library,
 * ND4J, JVM, OS, backend, seed); the names are {@link CheckpointLayout}'s. Writes are atomic and checksummed; the
 * newest {@code keepLast} are kept; resuming
 * takes the newest intact checkpoint and says which newer ones it skipped and why. Nothing is Java-serialised.
 *
 * <pre>{@code
 * Path file = RunCheckpoints.save(outputDir, trainer, 3);
 * Optional<RunCheckpoints.Loaded> newest = RunCheckpoints.newestIntact(outputDir);
 * RunCheckpoints.restore(newest.get(), trainer);
 * }</pre>
 */
public final class RunCheckpoints {

    private static final Logger LOG = LoggerFactory.getLogger(RunCheckpoints.class);
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final String PREFIX = "checkpoint-";
    private static final String SUFFIX = ".safetensors";
    private static final String INTERIM = "-interim";

    private RunCheckpoints() {
    }

    /** A checkpoint read and verified: its file, its state and metadata, and the configuration stored in it. */
    public record Loaded(Path file, CheckpointFile.Content content, MugsConfig config) {
    }

    /** Writes {@code checkpoint-<iteration>.safetensors} atomically and deletes all but the newest {@code keepLast}. */
    public static Path save(Path dir, MugsTrainer trainer, int keepLast) throws IOException {
        Path file = save(dir, trainer, trainer.iteration(), "");
        List<Path> epochs = list(dir).stream().filter(p -> !isInterim(p)).toList();
        for (int i = 0; i < epochs.size() - keepLast; i++) {
            Files.deleteIfExists(epochs.get(i));
        }
        removeInterimBefore(dir, trainer.iteration() + 1);   // superseded by this one
        return file;
    }

    /**
     * Writes {@code checkpoint-<iteration>-interim.safetensors}, a mid-epoch checkpoint (periodic, or on SIGINT and
     * SIGTERM), and deletes the older interim ones. Interim checkpoints are kept apart from the epoch checkpoints'
     * keep-last count: only the newest one is kept, and an epoch checkpoint removes those it supersedes. Resuming
     * considers both kinds ({@link #newestIntact}).
     */
    public static Path saveInterim(Path dir, MugsTrainer trainer) throws IOException {
        Path file = save(dir, trainer, trainer.iteration(), INTERIM);
        removeInterimBefore(dir, trainer.iteration());
        return file;
    }

    private static Path save(Path dir, MugsTrainer trainer, long iteration, String kind) throws IOException {
        StateDict state = new StateDict();
        trainer.saveState(state);
        Map<String, String> meta = metadata(trainer);
        Files.createDirectories(dir);
        Path file = dir.resolve(String.format("%s%09d%s%s", PREFIX, iteration, kind, SUFFIX));
        write(dir, file, state, meta);
        return file;
    }

    /** True for {@code checkpoint-*-interim.safetensors}. */
    static boolean isInterim(Path file) {
        return file.getFileName().toString().endsWith(INTERIM + SUFFIX);
    }

    private static void removeInterimBefore(Path dir, long iteration) throws IOException {
        for (Path p : list(dir)) {
            if (isInterim(p) && iterationOf(p) < iteration) {
                Files.deleteIfExists(p);
            }
        }
    }

    /** The iteration in a checkpoint's name ({@code checkpoint-000000042[-interim].safetensors}). */
    static long iterationOf(Path file) {
        String n = file.getFileName().toString();
        String digits = n.substring(PREFIX.length()).replaceAll("\\D.*$", "");
        return digits.isEmpty() ? -1 : Long.parseLong(digits);
    }

    /**
     * One checkpoint write; a failure names the folder, the bytes the file needs and the space left (a full disk
     * says "No space left on device" and nothing else).
     */
    private static void write(Path dir, Path file, StateDict state, Map<String, String> meta) throws IOException {
        try {
            CheckpointFile.write(file, state, meta);
        } catch (IOException e) {
            long need = state.tensors().values().stream().mapToLong(a -> a.length() * a.dataType().width()).sum();
            String free;
            try {
                free = String.format(Locale.ROOT, "%.1f MB free", Files.getFileStore(dir).getUsableSpace() / 1e6);
            } catch (IOException | RuntimeException ignored) {
                free = "free space unknown";
            }
            throw new IOException(String.format(Locale.ROOT, "cannot write checkpoint %s in folder %s (%s): it "
                    + "needs about %.1f MB (%d bytes), %s; free some space or choose another --output, then rerun "
                    + "to resume from the previous checkpoint", file.getFileName(), LogText.quoted(dir),
                    e.getMessage(), need / 1e6, need, free), e);
        }
    }

    private static Map<String, String> metadata(MugsTrainer trainer) throws IOException {
        Map<String, String> meta = new LinkedHashMap<>();
        meta.put(CheckpointLayout.CONFIG, trainer.config().toJson());
        meta.put(CheckpointLayout.EPOCH, Integer.toString(trainer.epoch()));
        meta.put(CheckpointLayout.TRAINING_SECONDS, Double.toString(trainer.trainingSeconds()));
        meta.put(CheckpointLayout.MANIFEST, JSON.writeValueAsString(manifest(trainer.config())));
        meta.put(CheckpointLayout.NORMALISATION, trainer.config().inputNormalisation().toJson());
        return meta;
    }

    /** Library, ND4J, JVM and OS versions, backend and seed. */
    static Map<String, String> manifest(MugsConfig config) {
        Map<String, String> m = new LinkedHashMap<>();
        m.put("library", "mugs-java " + Optional.ofNullable(RunCheckpoints.class.getPackage()
                .getImplementationVersion())
                .orElse("development build"));
        m.put("nd4j", Optional.ofNullable(Nd4j.class.getPackage().getImplementationVersion()).orElse("1.0.0-M2.1"));
        m.put("jvm", System.getProperty("java.vm.name") + " " + System.getProperty("java.version"));
        m.put("os", System.getProperty("os.name") + " " + System.getProperty("os.version") + " "
                + System.getProperty("os.arch"));
        m.put("backend", Backend.describe());
        m.put("seed", Long.toString(config.seed()));
        return m;
    }

    /** Checkpoint files in {@code dir}, oldest first. */
    public static List<Path> list(Path dir) throws IOException {
        if (!Files.isDirectory(dir)) {
            return List.of();
        }
        try (Stream<Path> s = Files.list(dir)) {
            return new ArrayList<>(s.filter(p -> {
                String n = p.getFileName().toString();
                return n.startsWith(PREFIX) && n.endsWith(SUFFIX);
            }).sorted(java.util.Comparator.comparingLong(RunCheckpoints::iterationOf)
                    .thenComparing(p -> isInterim(p) ? 0 : 1).thenComparing(Path::toString)).toList());
        }
    }

    /** The newest checkpoint file in {@code dir}, if any (not read). */
    public static Optional<Path> latest(Path dir) throws IOException {
        List<Path> all = list(dir);
        return all.isEmpty() ? Optional.empty() : Optional.of(all.get(all.size() - 1));
    }

    /**
     * Reads and verifies one checkpoint (structure, checksums, finite values, stored configuration).
     *
     * @throws IOException one line naming the file and the problem
     */
    public static Loaded read(Path file) throws IOException {
        CheckpointFile.Content c = CheckpointFile.read(file);
        try {
            return new Loaded(file, c, MugsConfig.fromJson(c.metadata(CheckpointLayout.CONFIG, file)));
        } catch (IllegalArgumentException e) {
            throw new IOException(file + ": the stored configuration is not valid (" + e.getMessage() + ")", e);
        }
    }

    /**
     * The newest checkpoint of {@code dir} that reads and verifies. Each newer one that does not is logged with the
     * reason and skipped (left in place for inspection); empty when {@code dir} has no checkpoint.
     *
     * @throws IOException when checkpoints exist but none is intact, naming each and why
     */
    public static Optional<Loaded> newestIntact(Path dir) throws IOException {
        List<Path> all = list(dir);
        List<String> problems = new ArrayList<>();
        for (int i = all.size() - 1; i >= 0; i--) {
            Path file = all.get(i);
            try {
                Loaded loaded = read(file);
                if (!problems.isEmpty()) {
                    LOG.warn("resuming from {}, the newest intact checkpoint", LogText.quoted(file.getFileName()));
                }
                return Optional.of(loaded);
            } catch (IOException e) {
                problems.add(e.getMessage());
                LOG.warn("skipped checkpoint {}: {}", LogText.quoted(file.getFileName()), e.getMessage());
            }
        }
        if (!problems.isEmpty()) {
            throw new IOException("no intact checkpoint in " + dir + " (" + String.join("; ", problems) + "): move "
                    + "them away to start over, or restore a copy");
        }
        return Optional.empty();
    }

    /** Reads the config stored in a checkpoint. */
    public static MugsConfig config(Path file) throws IOException {
        return read(file).config();
    }

    /**
     * Loads every array and counter of {@code file} into {@code trainer}, whose recipe must be the one stored in it
     * up to what {@link ResumePolicy} lets change on resume.
     */
    public static void restore(Path file, MugsTrainer trainer) throws IOException {
        restore(read(file), trainer);
    }

    /**
     * Loads a checkpoint already read into {@code trainer}
     * (the recipe as stored, up to what {@link ResumePolicy} allows).
     */
    public static void restore(Loaded checkpoint, MugsTrainer trainer) throws IOException {
        try {
            ResumePolicy.check("checkpoint " + checkpoint.file(), checkpoint.config(), trainer.config(),
                    iteration(checkpoint), trainer.itersPerEpoch());
        } catch (IllegalArgumentException e) {
            throw new IOException(e.getMessage(), e);
        }
        load(checkpoint, trainer);
    }

    /** The step counter stored in {@code checkpoint}. */
    static long iteration(Loaded checkpoint) throws IOException {
        try {
            return checkpoint.content().state().counter("iteration", 0, Long.MAX_VALUE);
        } catch (IllegalArgumentException e) {
            throw new IOException("Checkpoint " + checkpoint.file() + ": " + e.getMessage(), e);
        }
    }

    /** Loads {@code checkpoint} into {@code trainer} once {@link ResumePolicy#check} has accepted it. */
    static void load(Loaded checkpoint, MugsTrainer trainer) throws IOException {
        try {
            trainer.loadState(checkpoint.content().state());
        } catch (IllegalArgumentException e) {
            throw new IOException("Checkpoint " + checkpoint.file() + " does not fit the model: " + e.getMessage(), e);
        }
        String seconds = checkpoint.content().metadata().get(CheckpointLayout.TRAINING_SECONDS);
        try {
            trainer.setTrainingSeconds(seconds == null ? 0 : Double.parseDouble(seconds));   // older files: 0
        } catch (NumberFormatException e) {
            throw new IOException("Checkpoint " + checkpoint.file() + ": training_seconds '" + seconds
                    + "' is not a number", e);
        }
    }
}
