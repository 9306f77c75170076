package io.mugs.eval;

import io.mugs.io.CheckpointFile;
import io.mugs.io.InputNormalisation;
import io.mugs.io.SafeTensors;
import io.mugs.vit.VisionTransformer;
import io.mugs.vit.VitConfig;
import io.mugs.vit.weights.BackboneFiles;
import io.mugs.io.PthReader;
import io.mugs.vit.weights.OfficialWeights;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.Map;
import java.util.Optional;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * A frozen backbone for evaluation, from any of four kinds of file: a backbone file ({@link BackboneFiles}), a
 * training checkpoint (its teacher, as the reference evaluates; read through {@link CheckpointLayout}), a fine-tuning
 * checkpoint ({@link FineTuneRun}) or an official PyTorch {@code .pth} checkpoint, without depending on the trainer
 * module.
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
        if (isTorchFile(file)) {
            return loadOfficial(file);
        }
        Map<String, String> meta = SafeTensors.metadata(file);
        if (meta.containsKey(BackboneFiles.CONFIG_KEY)) {
            return BackboneFiles.load(file, SameDiff.create(), "", DataType.FLOAT);
        }
        if (meta.containsKey(FineTuneRun.VIT_KEY)) {
            return fineTuned(file);
        }
        if (!CheckpointLayout.isTrainingCheckpoint(meta)) {
            throw new IOException(file + " is neither a backbone file nor a Mugs training or fine-tuning checkpoint");
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

    /** True for a PyTorch checkpoint ({@code torch.save}'s zip: the file starts with {@code PK\3\4}). */
    public static boolean isTorchFile(Path file) throws IOException {
        try (InputStream in = Files.newInputStream(file)) {
            byte[] head = in.readNBytes(4);
            return head.length == 4 && head[0] == 'P' && head[1] == 'K' && head[2] == 3 && head[3] == 4;
        }
    }

    /**
     * An official checkpoint ({@code .pth}, e.g. {@code vit_small_backbone.pth} or a full training checkpoint whose
     * {@code teacher} is used): read by the bounded {@link PthReader} (no code runs), the architecture
     * inferred from the shapes ({@link OfficialWeights}).
     */
    private static VisionTransformer loadOfficial(Path file) throws IOException {
        Object checkpoint = PthReader.read(file);
        try {
            Map<String, INDArray> sd = OfficialWeights.backboneStateDict(checkpoint);
            return OfficialWeights.load(sd, SameDiff.create(), 0);
        } catch (IllegalArgumentException e) {
            throw new IOException(file + ": not an official ViT checkpoint (" + e.getMessage() + ")", e);
        }
    }

    /**
     * How the images given to the backbone in {@code file} were normalised in training: the {@link
     * InputNormalisation} stored in the file, or for checkpoints written before it was stored, the one implied by the
     * stored configuration's crops. Empty for a backbone file that does not say (then the caller must be told).
     */
    public static Optional<InputNormalisation> normalisation(Path file) throws IOException {
        if (isTorchFile(file)) {
            return Optional.empty();   // official checkpoints do not store it: the caller asks for --mean/--std
        }
        try {
            return CheckpointLayout.normalisation(SafeTensors.metadata(file));
        } catch (IllegalArgumentException e) {
            throw new IOException(file + ": " + e.getMessage(), e);
        }
    }
}
