package io.mugs.losses;

import io.mugs.vit.Layers;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.SplittableRandom;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.factory.Nd4j;

/**
 * The group-discrimination head of Mugs (DINO head; reference §3.3 and §4):
 * <pre>
 *   z = normalize(Linear(bottleneck) . GELU . Linear(hidden) . GELU . Linear(hidden) (x))   (with biases)
 *   logits = z W^T,   W_j = g_j v_j / ||v_j||   (weight-normalised prototypes, m rows)
 * </pre>
 * The graph computes the same logits as {@code (z v^T) * (g / ||v||)^T}: the scale goes on the [N, m] scores rather
 * than on the [m, bottleneck] prototypes, so W is never made (for m = 65,536 and bottleneck 256, W and v / ||v|| are
 * 64 MB each per graph, kept for the backward pass; the scores of N = 48 views are 12 MB).
 * Defaults hidden 2048, bottleneck 256, m = 65,536. With {@code normLastLayer} the gains g are fixed to 1 (not
 * trainable); otherwise {@code last_layer.weight_g [m, 1]} is a variable initialised to 1. Projector weights are
 * trunc-normal(0.02) with zero biases; {@code last_layer.weight_v [m, bottleneck]} keeps PyTorch's default init.
 *
 * <pre>{@code
 * GroupHead head = new GroupHead(sd, "group_head.", GroupHead.Options.of(384).withNormLastLayer(true),
 *         DataType.FLOAT, seed);
 * SDVariable logits = head.logits(cls);   // [N, 65536]
 * }</pre>
 */
public final class GroupHead {

    /**
     * The head's settings by name, as DINO's {@code DINOHead(in_dim, out_dim, use_bn, norm_last_layer, hidden_dim,
     * bottleneck_dim)}; {@link #of} gives the reference's defaults and each {@code with...} changes one.
     *
     * @param inDim         input width D (the backbone's)
     * @param hidden        projector hidden width (2048)
     * @param bottleneck    bottleneck width (256)
     * @param prototypes    prototypes m, the logits' width (65,536)
     * @param normLastLayer gains fixed to 1 (false: trainable {@code last_layer.weight_g})
     * @param batchNorm     batch norm after the projector's hidden layers (false)
     */
    public record Options(int inDim, int hidden, int bottleneck, int prototypes, boolean normLastLayer,
                          boolean batchNorm) {

        public Options {
            if (inDim < 1 || hidden < 1 || bottleneck < 1 || prototypes < 1) {
                throw new IllegalArgumentException("group head sizes must be positive, got inDim " + inDim
                        + ", hidden " + hidden + ", bottleneck " + bottleneck + ", prototypes " + prototypes);
            }
        }

        /** The reference's head on a backbone of width {@code inDim}: 2048 / 256 / 65,536, trainable gains, no BN. */
        public static Options of(int inDim) {
            return new Options(inDim, 2048, 256, 65_536, false, false);
        }

        public Options withHidden(int v) {
            return new Options(inDim, v, bottleneck, prototypes, normLastLayer, batchNorm);
        }

        public Options withBottleneck(int v) {
            return new Options(inDim, hidden, v, prototypes, normLastLayer, batchNorm);
        }

        public Options withPrototypes(int v) {
            return new Options(inDim, hidden, bottleneck, v, normLastLayer, batchNorm);
        }

        public Options withNormLastLayer(boolean v) {
            return new Options(inDim, hidden, bottleneck, prototypes, v, batchNorm);
        }

        public Options withBatchNorm(boolean v) {
            return new Options(inDim, hidden, bottleneck, prototypes, normLastLayer, v);
        }
    }

    private final SameDiff sd;
    private final boolean useBn;
    private final List<SDVariable> weights = new ArrayList<>();
    private final List<SDVariable> biases = new ArrayList<>();
    private final List<SDVariable> norms = new ArrayList<>();
    private final SDVariable prototypes;
    private final SDVariable gains;
    private final List<String> projectorNames = new ArrayList<>();
    private final List<String> lastLayerNames = new ArrayList<>();

    /** The head's variables in {@code sd}, named under {@code prefix}, drawn from {@code seed}. */
    public GroupHead(SameDiff sd, String prefix, Options options, DataType type, long seed) {
        int inDim = options.inDim();
        int hidden = options.hidden();
        int bottleneck = options.bottleneck();
        int prototypes = options.prototypes();
        boolean normLastLayer = options.normLastLayer();
        boolean useBn = options.batchNorm();
        this.sd = sd;
        this.useBn = useBn;
        SplittableRandom rng = new SplittableRandom(seed);
        int[][] dims = {{hidden, inDim}, {hidden, hidden}, {bottleneck, hidden}};
        int index = 0;
        for (int layer = 0; layer < 3; layer++) {
            int[] d = dims[layer];
            String p = prefix + "projector." + index + ".";
            weights.add(HeadLayers.param(sd, p + "weight", () -> HeadLayers.truncNormal(rng, type, d[0], d[1]),
                    projectorNames));
            biases.add(HeadLayers.param(sd, p + "bias", () -> HeadLayers.zeros(type, d[0]), projectorNames));
            if (layer < 2) {
                if (useBn) {
                    String bn = prefix + "projector." + (index + 1) + ".";
                    norms.add(HeadLayers.param(sd, bn + "weight", () -> Nd4j.ones(type, d[0]), projectorNames));
                    norms.add(HeadLayers.param(sd, bn + "bias", () -> Nd4j.zeros(type, d[0]), projectorNames));
                }
                index += useBn ? 3 : 2;
            }
        }
        this.prototypes = HeadLayers.param(sd, prefix + "last_layer.weight_v",
                () -> HeadLayers.torchDefault(rng, type, prototypes, bottleneck), lastLayerNames);
        this.gains = normLastLayer ? null
                : HeadLayers.param(sd, prefix + "last_layer.weight_g", () -> Nd4j.ones(type, prototypes, 1),
                        lastLayerNames);
    }

    /** The L2-normalised bottleneck feature z: [N, bottleneck]. */
    public SDVariable bottleneck(SDVariable x) {
        SDVariable h = x;
        for (int layer = 0; layer < 3; layer++) {
            h = Layers.linear(sd, h, weights.get(layer), biases.get(layer));
            if (layer < 2) {
                if (useBn) {
                    h = HeadLayers.batchNorm(sd, h, norms.get(2 * layer), norms.get(2 * layer + 1));
                }
                h = Layers.gelu(sd, h);
            }
        }
        return HeadLayers.l2Normalise(sd, h);
    }

    /** Prototype scores [N, m]: {@code z W^T}, computed as {@code (z v^T) * (g / ||v||)^T} (see the class comment). */
    public SDVariable logits(SDVariable x) {
        SDVariable norms = sd.norm2(prototypes, true, 1);                               // [m, 1]
        SDVariable scale = gains == null ? sd.math.pow(norms, -1.0) : gains.div(norms);  // [m, 1]
        SDVariable scores = Layers.linear(sd, bottleneck(x), prototypes, null);         // [N, m]
        return scores.mul(sd.transpose(scale));
    }

    /** Projector variable names. */
    public List<String> projectorParameterNames() {
        return Collections.unmodifiableList(projectorNames);
    }

    /** {@code last_layer.*} variable names: frozen during the first {@code freezeLastLayer} epochs. */
    public List<String> lastLayerParameterNames() {
        return Collections.unmodifiableList(lastLayerNames);
    }

    public List<String> parameterNames() {
        List<String> all = new ArrayList<>(projectorNames);
        all.addAll(lastLayerNames);
        return all;
    }
}
