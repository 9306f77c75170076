package io.mugs.vit.weights;

import io.mugs.io.SafeTensors;

import io.mugs.vit.VisionTransformer;
import io.mugs.vit.VitConfig;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * Maps the official Mugs / DINO / timm ViT state dicts to this library's backbone. The Java variables carry the
 * official names and layouts ({@code cls_token [1,1,D]}, {@code pos_embed [1,1+N,D]},
 * {@code patch_embed.proj.weight [D,C,p,p]}, {@code blocks.i.attn.qkv.weight [3D,D]}, ...), so the mapping only
 * picks the right sub-dict ({@code teacher}, then {@code state_dict}, {@code model}, {@code student}, or the root),
 * strips {@code module.}, {@code backbone.} and {@code encoder.} prefixes, and reports unused and missing keys.
 * The architecture is inferred from the shapes (heads from the official width presets unless given).
 *
 * <pre>{@code
 * Object ckpt = PthReader.read(Path.of("vit_small_backbone.pth"));
 * Map<String, INDArray> sd = OfficialWeights.backboneStateDict(ckpt);
 * VisionTransformer vit = OfficialWeights.load(sd, SameDiff.create(), 0);   // heads inferred (384 -> 6)
 * }</pre>
 */
public final class OfficialWeights {

    private static final List<String> PREFIXES = List.of("module.", "backbone.", "encoder.");

    private OfficialWeights() {
    }

    /** The backbone tensors of a checkpoint object with prefixes stripped (relation blocks and heads dropped). */
    @SuppressWarnings("unchecked")
    public static Map<String, INDArray> backboneStateDict(Object checkpoint) {
        if (!(checkpoint instanceof Map<?, ?> root)) {
            throw new IllegalArgumentException("the checkpoint is not a dict but " + checkpoint);
        }
        Map<?, ?> dict = root;
        for (String key : List.of("teacher", "state_dict", "model", "student")) {
            if (root.get(key) instanceof Map<?, ?> m) {
                dict = m;
                break;
            }
        }
        Map<String, INDArray> out = new LinkedHashMap<>();
        for (Map.Entry<?, ?> e : dict.entrySet()) {
            if (!(e.getValue() instanceof INDArray a)) {
                continue;
            }
            String k = String.valueOf(e.getKey());
            boolean stripped = true;
            while (stripped) {
                stripped = false;
                for (String p : PREFIXES) {
                    if (k.startsWith(p)) {
                        k = k.substring(p.length());
                        stripped = true;
                    }
                }
            }
            String first = String.valueOf(e.getKey());
            if (first.contains("_head.") || first.startsWith("head.")) {
                continue;
            }
            out.put(k, a);
        }
        if (!out.containsKey("cls_token")) {
            throw new IllegalArgumentException("no cls_token among the checkpoint keys " + new TreeSet<>(out.keySet())
                    + ": not a ViT backbone state dict");
        }
        return out;
    }

    /**
     * Infers the ViT configuration from the tensor shapes; {@code heads <= 0} picks the official preset's.
     *
     * @throws IllegalArgumentException naming the tensor that is missing or has an impossible shape
     */
    public static VitConfig inferConfig(Map<String, INDArray> sd, int heads) {
        int d = dim(sd, "cls_token", 3, 2);
        int p = dim(sd, "patch_embed.proj.weight", 4, 2);
        int c = dim(sd, "patch_embed.proj.weight", 4, 1);
        long tokens = dim(sd, "pos_embed", 3, 1);
        int grid = (int) Math.round(Math.sqrt(tokens - 1));
        if ((long) grid * grid != tokens - 1) {
            throw new IllegalArgumentException("pos_embed has " + tokens + " tokens, not 1 + a square grid of patches");
        }
        int depth = 0;
        while (sd.containsKey("blocks." + depth + ".norm1.weight")) {
            depth++;
        }
        if (depth == 0) {
            throw new IllegalArgumentException("no blocks.0.norm1.weight among the checkpoint keys: "
                    + "not a ViT backbone");
        }
        int h = heads > 0 ? heads : switch (d) {
            case 192 -> 3;
            case 384 -> 6;
            case 768 -> 12;
            case 1024 -> 16;
            default -> throw new IllegalArgumentException("cannot infer the number of heads for width " + d
                    + ": pass it explicitly");
        };
        long hidden = dim(sd, "blocks.0.mlp.fc1.weight", 2, 0);
        if ((long) grid * p > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("pos_embed and patch_embed.proj.weight imply an image of "
                    + (long) grid * p + " pixels: not a ViT backbone state dict");
        }
        return VitConfig.builder().imageSize(grid * p).inChannels(c).patchSize(p).embedDim(d)
                .depth(depth).numHeads(h).mlpRatio((double) hidden / d)
                .qkvBias(sd.containsKey("blocks.0.attn.qkv.bias")).build();
    }

    /** Size {@code axis} of tensor {@code key}, which must exist with {@code rank} dimensions. */
    private static int dim(Map<String, INDArray> sd, String key, int rank, int axis) {
        INDArray t = sd.get(key);
        if (t == null || t.rank() != rank || t.size(axis) < 1 || t.size(axis) > Integer.MAX_VALUE / 4) {
            throw new IllegalArgumentException(key + (t == null ? " is missing" : " has the impossible shape "
                    + java.util.Arrays.toString(t.shape())) + ": not a ViT backbone state dict");
        }
        return (int) t.size(axis);
    }

    /** Keys of {@code sd} the backbone does not use (e.g. relation blocks), for a load report. */
    public static List<String> unusedKeys(Map<String, INDArray> sd, VisionTransformer vit) {
        List<String> used = new ArrayList<>(vit.weights().keySet());
        List<String> unused = new ArrayList<>();
        for (String k : sd.keySet()) {
            if (!used.contains(k)) {
                unused.add(k);
            }
        }
        return unused;
    }

    /**
     * Builds a backbone with the inferred configuration and loads the weights. Every tensor the configuration
     * needs is checked (present, right shape, finite) before the model is built.
     *
     * @throws IllegalArgumentException naming missing keys, wrong shapes or a tensor with NaN or infinite values
     */
    public static VisionTransformer load(Map<String, INDArray> sd, org.nd4j.autodiff.samediff.SameDiff sameDiff,
                                         int heads) {
        VitConfig config = inferConfig(sd, heads);
        List<String> problems = BackboneFiles.mismatches(BackboneFiles.parameterShapes(config), sd, false);
        if (!problems.isEmpty()) {
            throw new IllegalArgumentException("the checkpoint does not hold the backbone its shapes suggest (" + config
                    + "): " + BackboneFiles.summary(problems));
        }
        Map<String, INDArray> used = new LinkedHashMap<>();
        BackboneFiles.parameterShapes(config).keySet().forEach(k -> used.put(k, sd.get(k)));
        SafeTensors.firstNonFinite(used).ifPresent(name -> {
            throw new IllegalArgumentException("checkpoint tensor '" + name + "' holds NaN or infinite values: the "
                    + "weights are damaged");
        });
        VisionTransformer vit = new VisionTransformer(sameDiff, "", config,
                org.nd4j.linalg.api.buffer.DataType.FLOAT, 0);
        vit.loadWeights(sd);
        return vit;
    }
}
