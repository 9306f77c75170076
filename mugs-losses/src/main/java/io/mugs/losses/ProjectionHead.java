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
 * The instance and local-group supervision heads of Mugs (reference §4): a projector g and, on the student only,
 * a predictor h.
 * <pre>
 *   g: Linear(D, hidden) [BN] GELU  Linear(hidden, hidden) [BN] GELU  Linear(hidden, out)     (no biases)
 *   h: Linear(out, predHidden) GELU Linear(predHidden, out)                                    (no biases)
 *   teacher target     z = normalize(g(x))
 *   student prediction q = normalize(h(normalize(g(x))))
 * </pre>
 * Defaults 2048 / 256 / 4096. Projector weights are trunc-normal(0.02); predictor weights keep PyTorch's default
 * init, as in the reference. Variable names follow the official state dict under the prefix, e.g.
 * {@code instance_head.projector.0.weight} (with BN: {@code .0 .1(BN) .3 .4(BN) .6}).
 *
 * <pre>{@code
 * ProjectionHead head = new ProjectionHead(sd, "instance_head.", ProjectionHead.Options.of(384), DataType.FLOAT, seed);
 * SDVariable q = head.studentPrediction(cls);   // [N, 256], unit rows
 * var teacher = ProjectionHead.Options.of(384).withPredictorHidden(0).withBatchNorm(true);   // a teacher head, BN
 * }</pre>
 */
public final class ProjectionHead {

    /**
     * The head's sizes by name; {@link #of} gives the reference's defaults and each {@code with...} changes one.
     *
     * @param inDim           input width D (the backbone's)
     * @param hidden          projector hidden width (2048)
     * @param outDim          output width (256)
     * @param predictorHidden predictor hidden width (4096); 0 builds no predictor (a teacher head)
     * @param batchNorm       batch norm after the projector's hidden layers (false)
     */
    public record Options(int inDim, int hidden, int outDim, int predictorHidden, boolean batchNorm) {

        public Options {
            if (inDim < 1 || hidden < 1 || outDim < 1 || predictorHidden < 0) {
                throw new IllegalArgumentException("head sizes must be positive (predictorHidden >= 0), got inDim "
                        + inDim + ", hidden " + hidden + ", outDim " + outDim + ", predictorHidden " + predictorHidden);
            }
        }

        /** The reference's head on a backbone of width {@code inDim}: 2048 / 256 / 4096, no batch norm. */
        public static Options of(int inDim) {
            return new Options(inDim, 2048, 256, 4096, false);
        }

        public Options withHidden(int v) {
            return new Options(inDim, v, outDim, predictorHidden, batchNorm);
        }

        public Options withOutDim(int v) {
            return new Options(inDim, hidden, v, predictorHidden, batchNorm);
        }

        public Options withPredictorHidden(int v) {
            return new Options(inDim, hidden, outDim, v, batchNorm);
        }

        public Options withBatchNorm(boolean v) {
            return new Options(inDim, hidden, outDim, predictorHidden, v);
        }
    }

    private final SameDiff sd;
    private final boolean useBn;
    private final List<SDVariable> projector = new ArrayList<>();
    private final List<SDVariable> norms = new ArrayList<>();
    private final List<SDVariable> predictor = new ArrayList<>();
    private final List<String> projectorNames = new ArrayList<>();
    private final List<String> predictorNames = new ArrayList<>();

    /** The head's variables in {@code sd}, named under {@code prefix}, drawn from {@code seed}. */
    public ProjectionHead(SameDiff sd, String prefix, Options options, DataType type, long seed) {
        int inDim = options.inDim();
        int hidden = options.hidden();
        int outDim = options.outDim();
        int predHidden = options.predictorHidden();
        boolean useBn = options.batchNorm();
        this.sd = sd;
        this.useBn = useBn;
        SplittableRandom rng = new SplittableRandom(seed);
        int[][] dims = {{hidden, inDim}, {hidden, hidden}, {outDim, hidden}};
        int index = 0;
        for (int layer = 0; layer < 3; layer++) {
            int[] d = dims[layer];
            projector.add(HeadLayers.param(sd, prefix + "projector." + index + ".weight",
                    () -> HeadLayers.truncNormal(rng, type, d[0], d[1]), projectorNames));
            if (layer < 2) {
                if (useBn) {
                    int bn = index + 1;
                    norms.add(HeadLayers.param(sd, prefix + "projector." + bn + ".weight",
                            () -> Nd4j.ones(type, d[0]), projectorNames));
                    norms.add(HeadLayers.param(sd, prefix + "projector." + bn + ".bias",
                            () -> Nd4j.zeros(type, d[0]), projectorNames));
                }
                index += useBn ? 3 : 2;
            }
        }
        if (predHidden > 0) {
            predictor.add(HeadLayers.param(sd, prefix + "predictor.0.weight",
                    () -> HeadLayers.torchDefault(rng, type, predHidden, outDim), predictorNames));
            predictor.add(HeadLayers.param(sd, prefix + "predictor.2.weight",
                    () -> HeadLayers.torchDefault(rng, type, outDim, predHidden), predictorNames));
        }
    }

    /** g(x), un-normalised: [N, out]. */
    public SDVariable project(SDVariable x) {
        SDVariable h = x;
        for (int layer = 0; layer < 3; layer++) {
            h = Layers.linear(sd, h, projector.get(layer), null);
            if (layer < 2) {
                if (useBn) {
                    h = HeadLayers.batchNorm(sd, h, norms.get(2 * layer), norms.get(2 * layer + 1));
                }
                h = Layers.gelu(sd, h);
            }
        }
        return h;
    }

    /** Teacher target {@code normalize(g(x))}: [N, out]. */
    public SDVariable teacherTarget(SDVariable x) {
        return HeadLayers.l2Normalise(sd, project(x));
    }

    /** Student prediction {@code normalize(h(normalize(g(x))))}: [N, out]. Needs a predictor. */
    public SDVariable studentPrediction(SDVariable x) {
        if (predictor.isEmpty()) {
            throw new IllegalStateException("this head has no predictor (predHidden = 0): use teacherTarget");
        }
        SDVariable z = teacherTarget(x);
        SDVariable p = Layers.linear(sd, Layers.gelu(sd, Layers.linear(sd, z, predictor.get(0), null)),
                predictor.get(1), null);
        return HeadLayers.l2Normalise(sd, p);
    }

    /** Projector (and BN) variable names: the part the teacher shares and EMA-updates. */
    public List<String> projectorParameterNames() {
        return Collections.unmodifiableList(projectorNames);
    }

    /** Predictor variable names (student only). */
    public List<String> predictorParameterNames() {
        return Collections.unmodifiableList(predictorNames);
    }

    public List<String> parameterNames() {
        List<String> all = new ArrayList<>(projectorNames);
        all.addAll(predictorNames);
        return all;
    }
}
