package io.mugs.core;

import com.fasterxml.jackson.databind.ObjectMapper;
import io.mugs.losses.FeatureQueue;
import io.mugs.losses.NeighbourMemory;
import io.mugs.vit.Backend;
import io.mugs.vit.io.InputNormalisation;
import io.mugs.vit.io.SafeTensors;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.stream.Stream;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * Training checkpoints: one safetensors file per checkpoint holding everything needed to continue exactly (student,
 * teacher, AdamW moments and step counts, both queues, both memories with their pointers, the centre, the
 * iteration) plus, as metadata, the {@link MugsConfig} JSON and a run manifest (library, ND4J, JVM, OS, backend,
 * seed). Files are written to a temporary name and renamed, so a crash never leaves a half-written checkpoint; the
 * newest {@code keepLast} are kept. Nothing is Java-serialised.
 *
 * <pre>{@code
 * Path file = Checkpoints.save(outputDir, trainer, 3);
 * Optional<Path> latest = Checkpoints.latest(outputDir);
 * Checkpoints.restore(latest.get(), trainer);
 * }</pre>
 */
public final class Checkpoints {

    private static final ObjectMapper JSON = new ObjectMapper();
    private static final String PREFIX = "checkpoint-";
    private static final String SUFFIX = ".safetensors";

    private Checkpoints() {
    }

    /** Writes {@code checkpoint-<iteration>.safetensors} atomically and deletes all but the newest {@code keepLast}. */
    public static Path save(Path dir, MugsTrainer trainer, int keepLast) throws IOException {
        Map<String, INDArray> tensors = new LinkedHashMap<>();
        trainer.model().studentParameters().forEach((k, v) -> tensors.put("student/" + k, v));
        trainer.model().teacherParameters().forEach((k, v) -> tensors.put("teacher/" + k, v));
        Map<String, Long> steps = new LinkedHashMap<>();
        trainer.optimizer().state().forEach((k, s) -> {
            tensors.put("adam_m/" + k, s.firstMoment());
            tensors.put("adam_v/" + k, s.secondMoment());
            steps.put(k, s.step());
        });
        tensors.put("state/instance_queue", trainer.instanceQueue().contents());
        tensors.put("state/local_group_queue", trainer.localGroupQueue().contents());
        tensors.put("state/student_memory", trainer.studentMemory().contents());
        tensors.put("state/teacher_memory", trainer.teacherMemory().contents());
        tensors.put("state/centre", trainer.centre().contents());
        Map<String, String> meta = new LinkedHashMap<>();
        meta.put("format", "mugs-checkpoint-1");
        meta.put("config", trainer.config().toJson());
        meta.put("iteration", Long.toString(trainer.iteration()));
        meta.put("epoch", Integer.toString(trainer.epoch()));
        meta.put("training_seconds", Double.toString(trainer.trainingSeconds()));
        meta.put("adam_steps", JSON.writeValueAsString(steps));
        meta.put("pointers", JSON.writeValueAsString(Map.of(
                "instance_queue", trainer.instanceQueue().pointer(),
                "local_group_queue", trainer.localGroupQueue().pointer(),
                "student_memory", trainer.studentMemory().pointer(),
                "teacher_memory", trainer.teacherMemory().pointer())));
        meta.put("manifest", JSON.writeValueAsString(manifest(trainer.config())));
        meta.put(InputNormalisation.METADATA_KEY, trainer.config().inputNormalisation().toJson());
        Files.createDirectories(dir);
        Path file = dir.resolve(String.format("%s%09d%s", PREFIX, trainer.iteration(), SUFFIX));
        SafeTensors.write(file, tensors, meta);
        List<Path> all = list(dir);
        for (int i = 0; i < all.size() - keepLast; i++) {
            Files.deleteIfExists(all.get(i));
        }
        return file;
    }

    /** Library, ND4J, JVM and OS versions, backend and seed. */
    static Map<String, String> manifest(MugsConfig config) {
        Map<String, String> m = new LinkedHashMap<>();
        m.put("library", "mugs-java " + Optional.ofNullable(Checkpoints.class.getPackage().getImplementationVersion())
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
            }).sorted().toList());
        }
    }

    /** The newest checkpoint in {@code dir}, if any. */
    public static Optional<Path> latest(Path dir) throws IOException {
        List<Path> all = list(dir);
        return all.isEmpty() ? Optional.empty() : Optional.of(all.get(all.size() - 1));
    }

    /** Reads the config stored in a checkpoint. */
    public static MugsConfig config(Path file) throws IOException {
        return MugsConfig.fromJson(meta(read(file), "config", file));
    }

    private static SafeTensors.Content read(Path file) throws IOException {
        try {
            return SafeTensors.read(file);
        } catch (IOException e) {
            throw new IOException("Checkpoint " + file + " is damaged (" + e.getMessage() + "). Delete it to resume "
                    + "from the previous checkpoint, or start a new output directory.", e);
        }
    }

    private static String meta(SafeTensors.Content c, String key, Path file) throws IOException {
        String v = c.metadata().get(key);
        if (v == null) {
            throw new IOException("Checkpoint " + file + " has no '" + key + "' entry: it was not written by Mugs for "
                    + "Java or is damaged");
        }
        return v;
    }

    /**
     * Loads every array and counter of {@code file} into {@code trainer}, which must have been built with the same
     * config.
     */
    @SuppressWarnings("unchecked")
    public static void restore(Path file, MugsTrainer trainer) throws IOException {
        SafeTensors.Content c = read(file);
        MugsConfig stored = MugsConfig.fromJson(meta(c, "config", file));
        if (!stored.toJson().equals(trainer.config().toJson())) {
            throw new IOException("Checkpoint " + file + " was written with a different configuration; resume with "
                    + "the configuration stored in it (Checkpoints.config(file)) or use a new output directory");
        }
        Map<String, INDArray> t = c.tensors();
        copy(t, "student/", trainer.model().studentParameters(), file);
        copy(t, "teacher/", trainer.model().teacherParameters(), file);
        Map<String, Number> steps = JSON.readValue(meta(c, "adam_steps", file), HashMap.class);
        for (String name : trainer.optimizer().state().keySet()) {
            trainer.optimizer().restore(name, need(t, "adam_m/" + name, file), need(t, "adam_v/" + name, file),
                    steps.get(name).longValue());
        }
        Map<String, Number> ptr = JSON.readValue(meta(c, "pointers", file), HashMap.class);
        restoreQueue(trainer.instanceQueue(), need(t, "state/instance_queue", file), ptr.get("instance_queue"));
        restoreQueue(trainer.localGroupQueue(), need(t, "state/local_group_queue", file),
                ptr.get("local_group_queue"));
        restoreMemory(trainer.studentMemory(), need(t, "state/student_memory", file), ptr.get("student_memory"));
        restoreMemory(trainer.teacherMemory(), need(t, "state/teacher_memory", file), ptr.get("teacher_memory"));
        trainer.centre().contents().assign(need(t, "state/centre", file));
        trainer.setIteration(Long.parseLong(meta(c, "iteration", file)));
        String seconds = c.metadata().get("training_seconds");
        trainer.setTrainingSeconds(seconds == null ? 0 : Double.parseDouble(seconds));   // older checkpoints: 0
    }

    private static void restoreQueue(FeatureQueue q, INDArray rows, Number pointer) {
        q.restore(rows, pointer.intValue());
    }

    private static void restoreMemory(NeighbourMemory m, INDArray rows, Number pointer) {
        m.restore(rows, pointer.intValue());
    }

    private static INDArray need(Map<String, INDArray> t, String key, Path file) throws IOException {
        INDArray a = t.get(key);
        if (a == null) {
            throw new IOException("Checkpoint " + file + " lacks '" + key + "'");
        }
        return a;
    }

    private static void copy(Map<String, INDArray> t, String prefix, Map<String, INDArray> into, Path file)
            throws IOException {
        for (Map.Entry<String, INDArray> e : into.entrySet()) {
            INDArray src = need(t, prefix + e.getKey(), file);
            if (!java.util.Arrays.equals(src.shape(), e.getValue().shape())) {
                throw new IOException("Checkpoint " + file + ": " + prefix + e.getKey() + " has shape "
                        + java.util.Arrays.toString(src.shape()) + ", the model expects "
                        + java.util.Arrays.toString(e.getValue().shape()));
            }
            e.getValue().assign(src);
        }
    }
}
