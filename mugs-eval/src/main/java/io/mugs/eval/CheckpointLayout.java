package io.mugs.eval;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.mugs.io.InputNormalisation;
import io.mugs.io.StateDict;
import io.mugs.vit.VitConfig;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Optional;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * What a Mugs training checkpoint holds, by name: the one place that spells the layout written by the trainer
 * ({@code io.mugs.core.RunCheckpoints}, {@code MugsModel}) and read by evaluation ({@link FrozenBackbone}). The file
 * format itself (safetensors, checksums, counters) is {@link io.mugs.io.CheckpointFile}'s.
 * <pre>
 * metadata  config            the recipe (MugsConfig JSON): "vit" the backbone's VitConfig, "crops" the crops
 *           input_normalisation  how training normalised its inputs ({@link InputNormalisation})
 *           epoch, training_seconds, manifest
 * tensors   student/NAME, teacher/NAME   every variable of the two graphs under its official name; the backbone's
 *                                        under "backbone." (teacher/backbone.blocks.0.attn.qkv.weight, ...), the
 *                                        local-group aggregator's as backbone.relation_blocks.*
 *           adam/..., instance_queue/..., ... the other state, each class naming its own
 * </pre>
 *
 * <pre>{@code
 * VitConfig vit = CheckpointLayout.backboneConfig(content.metadata(CheckpointLayout.CONFIG, file));
 * Map<String, INDArray> weights = CheckpointLayout.teacherBackbone(content.state());
 * }</pre>
 */
public final class CheckpointLayout {

    /** Metadata: the recipe's JSON. */
    public static final String CONFIG = "config";
    /** Metadata: the epoch of the next step. */
    public static final String EPOCH = "epoch";
    /** Metadata: wall-clock training seconds so far. */
    public static final String TRAINING_SECONDS = "training_seconds";
    /** Metadata: library, ND4J, JVM, OS, backend and seed (JSON). */
    public static final String MANIFEST = "manifest";
    /** Metadata: the input normalisation (JSON). */
    public static final String NORMALISATION = InputNormalisation.METADATA_KEY;
    /** State scope of the student graph's variables. */
    public static final String STUDENT = "student";
    /** State scope of the teacher graph's variables. */
    public static final String TEACHER = "teacher";
    /** Name prefix of the backbone's variables inside either graph (the official state dict's). */
    public static final String BACKBONE = "backbone.";

    private static final String TEACHER_BACKBONE = TEACHER + "/" + BACKBONE;
    private static final String AGGREGATOR = "relation_blocks";
    private static final ObjectMapper JSON = new ObjectMapper();

    private CheckpointLayout() {
    }

    /** True when {@code metadata} is a training checkpoint's (it holds the recipe). */
    public static boolean isTrainingCheckpoint(Map<String, String> metadata) {
        return metadata.containsKey(CONFIG);
    }

    /** The teacher backbone's tensors under their official names (the aggregator's relation blocks excluded). */
    public static Map<String, INDArray> teacherBackbone(StateDict state) {
        Map<String, INDArray> weights = new LinkedHashMap<>();
        state.tensors().forEach((k, v) -> {
            if (k.startsWith(TEACHER_BACKBONE) && !k.contains(AGGREGATOR)) {
                weights.put(k.substring(TEACHER_BACKBONE.length()), v);
            }
        });
        return weights;
    }

    /**
     * The backbone configuration inside a stored recipe, without drop-path (evaluation runs the teacher).
     *
     * @throws IllegalArgumentException when the recipe holds no valid backbone configuration
     */
    public static VitConfig backboneConfig(String configJson) {
        try {
            JsonNode vit = JSON.readTree(configJson).path("vit");
            return JSON.treeToValue(vit, VitConfig.class).toBuilder().dropPathRate(0).build();
        } catch (JsonProcessingException e) {
            throw new IllegalArgumentException("the stored configuration holds no valid backbone configuration ("
                    + e.getOriginalMessage() + ")", e);
        }
    }

    /**
     * How training normalised its inputs: the stored {@link #NORMALISATION}, or for checkpoints written before it
     * was stored, the one implied by the stored recipe's crops; empty when {@code metadata} has neither.
     *
     * @throws IllegalArgumentException when what is stored does not say it
     */
    public static Optional<InputNormalisation> normalisation(Map<String, String> metadata) {
        String stored = metadata.get(NORMALISATION);
        if (stored != null) {
            return Optional.of(InputNormalisation.fromJson(stored));
        }
        String config = metadata.get(CONFIG);
        if (config == null) {
            return Optional.empty();
        }
        try {
            JsonNode crops = JSON.readTree(config).path("crops");
            return Optional.of(new InputNormalisation(crops.path("channels").asInt(),
                    crops.path("globalSize").asInt(), JSON.treeToValue(crops.path("mean"), double[].class),
                    JSON.treeToValue(crops.path("std"), double[].class)));
        } catch (JsonProcessingException | IllegalArgumentException e) {
            throw new IllegalArgumentException("the stored configuration's crops do not say how inputs were "
                    + "normalised (" + e.getMessage() + ")", e);
        }
    }
}
