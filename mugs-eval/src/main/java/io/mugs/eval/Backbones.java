package io.mugs.eval;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.mugs.vit.VisionTransformer;
import io.mugs.vit.VitConfig;
import io.mugs.vit.weights.BackboneFiles;
import io.mugs.io.CheckpointFile;
import io.mugs.io.InputNormalisation;
import io.mugs.io.SafeTensors;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.Map;
import java.util.Optional;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * Loads a frozen backbone for evaluation from a backbone file ({@link BackboneFiles}), a training checkpoint (its
 * teacher, as the reference evaluates) or a fine-tuning checkpoint ({@link FineTuneRun}), without depending on the
 * trainer module.
 *
 * <pre>{@code
 * VisionTransformer teacher = Backbones.load(Path.of("runs/fm/checkpoint-000000620.safetensors"));
 * }</pre>
 */
public final class Backbones {

    private static final ObjectMapper JSON = new ObjectMapper();

    private Backbones() {
    }

    public static VisionTransformer load(Path file) throws IOException {
        if (!Files.isRegularFile(file)) {
            throw new NoSuchFileException(file.toString(), null, "no such checkpoint or backbone file");
        }
        Map<String, String> meta = SafeTensors.metadata(file);
        if (meta.containsKey(BackboneFiles.CONFIG_KEY)) {
            return BackboneFiles.load(file, SameDiff.create(), "", DataType.FLOAT);
        }
        if (meta.containsKey(FineTuneRun.VIT_KEY)) {
            return fineTuned(file);
        }
        if (!meta.containsKey("config")) {
            throw new IOException(file + " is neither a backbone file nor a Mugs training or fine-tuning checkpoint");
        }
        CheckpointFile.Content c = CheckpointFile.read(file);
        JsonNode vit = JSON.readTree(c.metadata("config", file)).path("vit");
        VitConfig cfg = JSON.treeToValue(vit, VitConfig.class).toBuilder().dropPathRate(0).build();
        Map<String, INDArray> weights = c.teacherBackbone();
        BackboneFiles.requireFits(file, cfg, weights);    // before the model is built: the config may be absurd
        VisionTransformer backbone = new VisionTransformer(SameDiff.create(), "", cfg, DataType.FLOAT, 0);
        backbone.loadWeights(weights);
        return backbone;
    }

    /** The backbone of a fine-tuning checkpoint ({@link FineTuneRun}). */
    private static VisionTransformer fineTuned(Path file) throws IOException {
        CheckpointFile.Content c = CheckpointFile.read(file);
        VitConfig cfg;
        try {
            cfg = VitConfig.fromJson(c.metadata(FineTuneRun.VIT_KEY, file)).toBuilder().dropPathRate(0).build();
        } catch (IllegalArgumentException e) {
            throw new IOException(file + ": the stored architecture is unusable (" + e.getMessage() + ")", e);
        }
        String prefix = "model/" + FineTuneModel.BACKBONE;
        Map<String, INDArray> weights = new java.util.LinkedHashMap<>();
        c.state().tensors().forEach((k, v) -> {
            if (k.startsWith(prefix)) {
                weights.put(k.substring(prefix.length()), v);
            }
        });
        BackboneFiles.requireFits(file, cfg, weights);
        VisionTransformer backbone = new VisionTransformer(SameDiff.create(), "", cfg, DataType.FLOAT, 0);
        backbone.loadWeights(weights);
        return backbone;
    }

    /**
     * How the images given to the backbone in {@code file} were normalised in training: the {@link
     * InputNormalisation} stored in the file, or for checkpoints written before it was stored, the one implied by the
     * stored configuration's crops. Empty for a backbone file that does not say (then the caller must be told).
     */
    public static Optional<InputNormalisation> normalisation(Path file) throws IOException {
        Map<String, String> meta = SafeTensors.metadata(file);
        String stored = meta.get(InputNormalisation.METADATA_KEY);
        if (stored != null) {
            try {
                return Optional.of(InputNormalisation.fromJson(stored));
            } catch (IllegalArgumentException e) {
                throw new IOException(file + ": " + e.getMessage(), e);
            }
        }
        String config = meta.get("config");
        if (config == null) {
            return Optional.empty();
        }
        JsonNode crops = JSON.readTree(config).path("crops");
        try {
            return Optional.of(new InputNormalisation(crops.path("channels").asInt(),
                    crops.path("globalSize").asInt(), JSON.treeToValue(crops.path("mean"), double[].class),
                    JSON.treeToValue(crops.path("std"), double[].class)));
        } catch (IllegalArgumentException e) {
            throw new IOException(file + ": the stored configuration's crops do not say how inputs were normalised ("
                    + e.getMessage() + ")", e);
        }
    }
}
