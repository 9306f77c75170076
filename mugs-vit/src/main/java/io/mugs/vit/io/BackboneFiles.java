package io.mugs.vit.io;

import io.mugs.vit.VisionTransformer;
import io.mugs.vit.VitConfig;
import java.io.IOException;
import java.nio.file.Path;
import java.util.Map;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * Saves and loads a backbone (weights and {@link VitConfig}) as one safetensors file with the official
 * state-dict key names, so PyTorch ({@code safetensors.torch.load_file}) reads the weights too. The config is
 * stored as JSON in the metadata under {@code mugs.vit_config}.
 *
 * <pre>{@code
 * BackboneFiles.save(Path.of("vit.safetensors"), vit);
 * VisionTransformer copy = BackboneFiles.load(Path.of("vit.safetensors"), SameDiff.create(), "", DataType.FLOAT);
 * }</pre>
 */
public final class BackboneFiles {

    /** Metadata key holding the backbone's {@link VitConfig} as JSON. */
    public static final String CONFIG_KEY = "mugs.vit_config";

    private BackboneFiles() {
    }

    /** Writes the backbone without its input normalisation (evaluation then has to be told mean and std). */
    public static void save(Path path, VisionTransformer vit) throws IOException {
        SafeTensors.write(path, vit.weights(), Map.of(CONFIG_KEY, vit.config().toJson(), "format", "pt"));
    }

    /** Writes the backbone and how its inputs were normalised in training ({@link InputNormalisation}). */
    public static void save(Path path, VisionTransformer vit, InputNormalisation input) throws IOException {
        SafeTensors.write(path, vit.weights(), Map.of(CONFIG_KEY, vit.config().toJson(), "format", "pt",
                InputNormalisation.METADATA_KEY, input.toJson()));
    }

    /** Builds a backbone in {@code sd} under {@code prefix} from a file written by {@link #save}. */
    public static VisionTransformer load(Path path, SameDiff sd, String prefix, DataType type) throws IOException {
        SafeTensors.Content content = SafeTensors.read(path);
        String json = content.metadata().get(CONFIG_KEY);
        if (json == null) {
            throw new IOException(path + " has no '" + CONFIG_KEY + "' metadata: it was not written by BackboneFiles."
                    + " Build a VisionTransformer with the right VitConfig and call loadWeights(...) instead");
        }
        VitConfig config = VitConfig.fromJson(json);
        VisionTransformer vit = new VisionTransformer(sd, prefix, config, type, 0);
        Map<String, INDArray> weights = content.tensors();
        weights.replaceAll((k, v) -> v.castTo(type));
        vit.loadWeights(weights);
        return vit;
    }
}
