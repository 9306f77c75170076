package io.mugs.losses;

import io.mugs.engine.ReplicaMean;
import io.mugs.vit.Initializers;
import java.util.List;
import java.util.SplittableRandom;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/** Variables and small graph pieces shared by the heads: PyTorch-layout linears, L2 normalisation, batch norm. */
final class HeadLayers {

    private HeadLayers() {
    }

    /** Binds to an existing variable of that name or creates it. */
    static SDVariable param(SameDiff sd, String name, java.util.function.Supplier<INDArray> init, List<String> names) {
        SDVariable v = sd.hasVariable(name) ? sd.getVariable(name) : sd.var(name, init.get());
        names.add(name);
        return v;
    }

    /** timm init: trunc-normal(0.02) weight [out, in]. */
    static INDArray truncNormal(SplittableRandom rng, DataType type, int out, int in) {
        return Initializers.truncatedNormal(rng, type, 0.02, out, in);
    }

    /** PyTorch's default Linear init (kaiming-uniform, a = sqrt 5): U(-1/sqrt(in), 1/sqrt(in)). */
    static INDArray torchDefault(SplittableRandom rng, DataType type, int out, int in) {
        return Initializers.uniform(rng, type, 1.0 / Math.sqrt(in), out, in);
    }

    static INDArray zeros(DataType type, int n) {
        return Nd4j.zeros(type, n);
    }

    /** {@code F.normalize(x, dim=1)}: x / max(||x||_2, 1e-12) row-wise, [N, d]. */
    static SDVariable l2Normalise(SameDiff sd, SDVariable x) {
        return x.div(sd.scalarMax(sd.norm2(x, true, 1), 1e-12));
    }

    /**
     * Training-mode BatchNorm1d over the batch dimension (batch statistics, biased variance, eps 1e-5), as the
     * reference uses it (its models never switch to eval mode). Hand-built because ND4J's batchNorm has no
     * backward in 1.0.0-M2.1. Both batch means are {@link ReplicaMean#rows}: with several data-parallel replicas
     * they are the whole batch's statistics, as with the reference's {@code SyncBatchNorm} ({@code main.py} 474-479).
     */
    static SDVariable batchNorm(SameDiff sd, SDVariable x, SDVariable gain, SDVariable bias) {
        SDVariable centred = x.sub(ReplicaMean.rows(sd, x));
        SDVariable variance = ReplicaMean.rows(sd, centred.mul(centred));
        return centred.mul(sd.math.rsqrt(variance.add(1e-5))).mul(gain).add(bias);
    }
}
