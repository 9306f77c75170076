package io.mugs.eval;

import static io.mugs.eval.FineTuneRun.CLASSES_KEY;
import static io.mugs.eval.FineTuneRun.CONFIG_KEY;
import static io.mugs.eval.FineTuneRun.VIT_KEY;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.mugs.io.CheckpointFile;
import io.mugs.io.InputNormalisation;
import io.mugs.io.StateDict;
import io.mugs.vit.VitConfig;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.stream.Stream;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The checkpoints of a fine-tuning run folder ({@link FineTuneRun}): {@code checkpoint-ITERATION.safetensors} in the
 * {@link CheckpointFile} format (written atomically; the newest {@code keepLast} kept), holding the {@link FineTuner}
 * state (model, AdamW moments, step counter) and the metadata {@code finetune.config}, {@code finetune.vit}, {@code
 * finetune.classes}, the input normalisation, the training seconds and the epoch. A restart restores the newest intact
 * one after checking that the recipe, the architecture and the classes are the ones stored. {@code mugs-eval} cannot
 * see {@code mugs-core}, so this small policy stands in for {@code RunCheckpoints}; {@link FrozenBackbone#load} reads
 * these files too.
 *
 * <pre>{@code
 * Optional<Path> resumed = FineTuneCheckpoints.restoreNewest(out, tuner, start.vit(), classes);
 * Path file = FineTuneCheckpoints.save(out, tuner, start, classes, 2);
 * }</pre>
 */
final class FineTuneCheckpoints {

    private static final Logger LOG = LoggerFactory.getLogger(FineTuneCheckpoints.class);
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final String PREFIX = "checkpoint-";
    private static final String SUFFIX = ".safetensors";

    private FineTuneCheckpoints() {
    }

    /** Writes {@code checkpoint-<iteration>.safetensors} atomically and keeps the newest {@code keepLast}. */
    static Path save(Path out, FineTuner tuner, FineTuneRun.Start start, int classes, int keepLast)
            throws IOException {
        StateDict state = new StateDict();
        tuner.saveState(state);
        Map<String, String> meta = new LinkedHashMap<>();
        meta.put(CONFIG_KEY, tuner.config().toJson());
        meta.put(VIT_KEY, start.vit().toJson());
        meta.put(CLASSES_KEY, Integer.toString(classes));
        meta.put(InputNormalisation.METADATA_KEY, start.input().toJson());
        meta.put("training_seconds", Double.toString(tuner.trainingSeconds()));
        meta.put("epoch", Integer.toString(tuner.epoch()));
        Path file = out.resolve(String.format("%s%09d%s", PREFIX, tuner.iteration(), SUFFIX));
        CheckpointFile.write(file, state, meta);
        List<Path> all = list(out);
        for (int i = 0; i < all.size() - keepLast; i++) {
            Files.deleteIfExists(all.get(i));
        }
        return file;
    }

    /** Loads the newest intact checkpoint of {@code out} into {@code tuner}, after checking it fits. */
    static Optional<Path> restoreNewest(Path out, FineTuner tuner, VitConfig vit, int classes)
            throws IOException {
        List<Path> all = list(out);
        for (int i = all.size() - 1; i >= 0; i--) {
            Path file = all.get(i);
            CheckpointFile.Content c;
            try {
                c = CheckpointFile.read(file);
            } catch (IOException e) {
                LOG.warn("skipped checkpoint {}: {}", file.getFileName(), e.getMessage());
                continue;
            }
            List<String> diff = new ArrayList<>();
            diff(CONFIG_KEY.substring("finetune.".length()), JSON.readTree(c.metadata(CONFIG_KEY, file)),
                    JSON.readTree(tuner.config().toJson()), diff);
            diff("vit", JSON.readTree(c.metadata(VIT_KEY, file)), JSON.readTree(vit.toJson()), diff);
            if (!c.metadata(CLASSES_KEY, file).equals(Integer.toString(classes))) {
                diff.add("classes");
            }
            if (!diff.isEmpty()) {
                throw new IllegalArgumentException("run folder " + out + " holds a fine-tuning run with other settings ("
                        + "it differs in " + String.join(", ", diff) + "): use a new output folder or the stored "
                        + "settings (config.json)");
            }
            try {
                tuner.loadState(c.state());
            } catch (IllegalArgumentException e) {
                throw new IOException(file + " does not fit the model: " + e.getMessage(), e);
            }
            tuner.setTrainingSeconds(Double.parseDouble(c.metadata().getOrDefault("training_seconds", "0")));
            return Optional.of(file);
        }
        if (!all.isEmpty()) {
            throw new IOException("no intact checkpoint in " + out + ": move the damaged ones away to start over");
        }
        return Optional.empty();
    }

    private static void diff(String path, JsonNode a, JsonNode b, List<String> out) {
        if (a.isObject() && b.isObject()) {
            for (Iterator<String> it = a.fieldNames(); it.hasNext(); ) {
                String f = it.next();
                diff(path + "." + f, a.get(f), b.path(f), out);
            }
        } else if (!a.equals(b)) {
            out.add(path);
        }
    }

    /** Checkpoint files of {@code dir}, oldest first. */
    static List<Path> list(Path dir) throws IOException {
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
}
