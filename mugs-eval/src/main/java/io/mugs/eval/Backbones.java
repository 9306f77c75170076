package io.mugs.eval;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.mugs.vit.VisionTransformer;
import io.mugs.vit.VitConfig;
import io.mugs.vit.io.BackboneFiles;
import io.mugs.vit.io.SafeTensors;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * Loads a frozen backbone for evaluation from either a backbone file ({@link BackboneFiles}) or a training
 * checkpoint (its teacher, as the reference evaluates), without depending on the trainer module.
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
        SafeTensors.Content c = SafeTensors.read(file);
        if (c.metadata().containsKey(BackboneFiles.CONFIG_KEY)) {
            return BackboneFiles.load(file, SameDiff.create(), "", DataType.FLOAT);
        }
        String config = c.metadata().get("config");
        if (config == null) {
            throw new IOException(file + " is neither a backbone file nor a Mugs training checkpoint");
        }
        JsonNode vit = JSON.readTree(config).path("vit");
        VitConfig cfg = JSON.treeToValue(vit, VitConfig.class).toBuilder().dropPathRate(0).build();
        Map<String, INDArray> weights = new LinkedHashMap<>();
        String prefix = "teacher/backbone.";
        c.tensors().forEach((k, v) -> {
            if (k.startsWith(prefix) && !k.contains("relation_blocks")) {
                weights.put(k.substring(prefix.length()), v);
            }
        });
        VisionTransformer backbone = new VisionTransformer(SameDiff.create(), "", cfg, DataType.FLOAT, 0);
        backbone.loadWeights(weights);
        return backbone;
    }
}
