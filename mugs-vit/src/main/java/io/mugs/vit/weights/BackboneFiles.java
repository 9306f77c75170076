package io.mugs.vit.weights;

import io.mugs.io.SafeTensors;
import io.mugs.io.InputNormalisation;

import io.mugs.vit.VisionTransformer;
import io.mugs.vit.VitConfig;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * Saves and loads a backbone (weights and {@link VitConfig}) as one safetensors file with the official
 * state-dict key names, so PyTorch ({@code safetensors.torch.load_file}) reads the weights too. The config is
 * stored as JSON in the metadata under {@code mugs.vit_config}; every tensor carries a checksum.
 *
 * <p>Loading is safe on untrusted files: the file is read within its own size ({@link SafeTensors#read}), then
 * the stored config is checked against the tensors present (names, shapes, so the parameter count) and the
 * weights are checked to be finite, and only then is the model built. Every failure is one {@link IOException}
 * line naming the file and the problem.
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

    /**
     * Builds a backbone in {@code sd} under {@code prefix} from a file written by {@link #save}, after checking
     * that the file holds exactly the tensors its stored config implies and that they are finite.
     *
     * @throws IOException naming the file and the problem (damaged, not a backbone file, tensors missing or of
     *                     the wrong shape for the stored config, NaN or infinite weights)
     */
    public static VisionTransformer load(Path path, SameDiff sd, String prefix, DataType type) throws IOException {
        SafeTensors.Content content = SafeTensors.read(path);
        String json = content.metadata().get(CONFIG_KEY);
        if (json == null) {
            throw new IOException(path + " has no '" + CONFIG_KEY + "' metadata: it was not written by BackboneFiles."
                    + " Build a VisionTransformer with the right VitConfig and call loadWeights(...) instead");
        }
        VitConfig config;
        try {
            config = VitConfig.fromJson(json);
        } catch (IllegalArgumentException e) {
            throw new IOException(path + ": the stored '" + CONFIG_KEY + "' is unusable (" + e.getMessage() + ")");
        }
        Map<String, INDArray> weights = content.tensors();
        requireFits(path, config, weights);
        weights.replaceAll((k, v) -> v.castTo(type));
        VisionTransformer vit = new VisionTransformer(sd, prefix, config, type, 0);
        vit.loadWeights(weights);
        return vit;
    }

    /**
     * Checks, before any model is built, that {@code weights} are exactly the tensors a backbone of {@code config}
     * has (names and shapes) and that all are finite.
     *
     * @throws IOException one line naming {@code path} and what does not fit
     */
    public static void requireFits(Path path, VitConfig config, Map<String, INDArray> weights) throws IOException {
        long tensorsImplied = 6 + (long) config.depth() * (config.qkvBias() ? 12 : 11);
        List<String> problems = tensorsImplied != weights.size()
                ? List.of(tensorsImplied + " tensors are needed")     // checked first: depth may be absurd
                : mismatches(parameterShapes(config), weights, true);
        if (!problems.isEmpty()) {
            long present = weights.values().stream().mapToLong(INDArray::length).sum();
            throw new IOException(path + ": its stored VitConfig (width " + config.embedDim() + ", depth "
                    + config.depth() + ") implies " + config.parameterCount() + " parameters but the file holds "
                    + present + " in " + weights.size() + " tensors (" + summary(problems)
                    + "); the file is damaged or its metadata does not belong to these weights");
        }
        var nonFinite = SafeTensors.firstNonFinite(weights);
        if (nonFinite.isPresent()) {
            throw new IOException(path + ": tensor '" + nonFinite.get() + "' holds NaN or infinite values; the weights "
                    + "are damaged (use an earlier checkpoint or export)");
        }
    }

    /**
     * The name and shape of every backbone parameter a {@link VisionTransformer} of {@code config} has, in its
     * order ({@code cls_token [1,1,D]}, {@code pos_embed [1,1+N,D]}, {@code patch_embed.proj.weight [D,C,p,p]},
     * {@code blocks.i.*}, {@code norm.*}), computed without building it. Their sizes sum to
     * {@link VitConfig#parameterCount()}.
     */
    public static Map<String, long[]> parameterShapes(VitConfig config) {
        long d = config.embedDim();
        long h = config.mlpHidden();
        Map<String, long[]> out = new LinkedHashMap<>();
        out.put("cls_token", new long[] {1, 1, d});
        out.put("pos_embed", new long[] {1, config.numPatches() + 1L, d});
        if (config.stemChannels() > 0) {
            out.put("stem.weight", new long[] {config.stemChannels(), config.inChannels(), 3, 3});
            out.put("stem.bias", new long[] {config.stemChannels()});
        }
        out.put("patch_embed.proj.weight",
                new long[] {d, config.patchInChannels(), config.patchSize(), config.patchSize()});
        out.put("patch_embed.proj.bias", new long[] {d});
        for (int i = 0; i < config.depth(); i++) {
            String b = "blocks." + i + ".";
            out.put(b + "norm1.weight", new long[] {d});
            out.put(b + "norm1.bias", new long[] {d});
            out.put(b + "attn.qkv.weight", new long[] {3 * d, d});
            if (config.qkvBias()) {
                out.put(b + "attn.qkv.bias", new long[] {3 * d});
            }
            out.put(b + "attn.proj.weight", new long[] {d, d});
            out.put(b + "attn.proj.bias", new long[] {d});
            out.put(b + "norm2.weight", new long[] {d});
            out.put(b + "norm2.bias", new long[] {d});
            out.put(b + "mlp.fc1.weight", new long[] {h, d});
            out.put(b + "mlp.fc1.bias", new long[] {h});
            out.put(b + "mlp.fc2.weight", new long[] {d, h});
            out.put(b + "mlp.fc2.bias", new long[] {d});
        }
        out.put("norm.weight", new long[] {d});
        out.put("norm.bias", new long[] {d});
        return out;
    }

    /**
     * What differs between the expected shapes and the tensors: missing names, wrong shapes and, when
     * {@code exact}, names not expected. Empty when they match.
     */
    static List<String> mismatches(Map<String, long[]> expected, Map<String, INDArray> tensors, boolean exact) {
        List<String> problems = new ArrayList<>();
        expected.forEach((name, shape) -> {
            INDArray t = tensors.get(name);
            if (t == null) {
                problems.add("missing " + name);
            } else if (!Arrays.equals(shape, t.shape())) {
                problems.add(name + " is " + Arrays.toString(t.shape()) + ", not " + Arrays.toString(shape));
            }
        });
        if (exact) {
            tensors.keySet().stream().filter(k -> !expected.containsKey(k))
                    .forEach(k -> problems.add("unexpected " + k));
        }
        return problems;
    }

    /** The first few problems and how many more. */
    static String summary(List<String> problems) {
        int shown = Math.min(4, problems.size());
        String first = String.join(", ", problems.subList(0, shown));
        return problems.size() > shown ? first + " and " + (problems.size() - shown) + " more" : first;
    }
}
