package io.mugs.eval;

import io.mugs.io.CheckpointFile;
import io.mugs.io.InputNormalisation;
import io.mugs.io.SafeTensors;
import io.mugs.vit.VisionTransformer;
import io.mugs.vit.VitConfig;
import io.mugs.vit.weights.BackboneFiles;
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
 * A frozen backbone for evaluation, from either kind of file: a backbone file ({@link BackboneFiles}) or a training
 * checkpoint (its teacher, as the reference evaluates; read through {@link CheckpointLayout}), without depending on
 * the trainer module.
 *
 * <pre>{@code
 * VisionTransformer teacher = FrozenBackbone.load(Path.of("runs/fm/checkpoint-000000620.safetensors"));
 * Optional<InputNormalisation> n = FrozenBackbone.normalisation(file);
 * }</pre>
 */
public final class FrozenBackbone {

    private FrozenBackbone() {
    }

    public static VisionTransformer load(Path file) throws IOException {
        if (!Files.isRegularFile(file)) {
            throw new NoSuchFileException(file.toString(), null, "no such checkpoint or backbone file");
        }
        Map<String, String> meta = SafeTensors.metadata(file);
        if (meta.containsKey(BackboneFiles.CONFIG_KEY)) {
            return BackboneFiles.load(file, SameDiff.create(), "", DataType.FLOAT);
        }
        if (!CheckpointLayout.isTrainingCheckpoint(meta)) {
            throw new IOException(file + " is neither a backbone file nor a Mugs training checkpoint");
        }
        CheckpointFile.Content c = CheckpointFile.read(file);
        VitConfig cfg;
        try {
            cfg = CheckpointLayout.backboneConfig(c.metadata(CheckpointLayout.CONFIG, file));
        } catch (IllegalArgumentException e) {
            throw new IOException(file + ": " + e.getMessage(), e);
        }
        Map<String, INDArray> weights = CheckpointLayout.teacherBackbone(c.state());
        BackboneFiles.requireFits(file, cfg, weights);    // before the model is built: the config may be absurd
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
        try {
            return CheckpointLayout.normalisation(SafeTensors.metadata(file));
        } catch (IllegalArgumentException e) {
            throw new IOException(file + ": " + e.getMessage(), e);
        }
    }
}
