package io.mugs.vit;

import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;

/**
 * The primitive layers every graph in the library is built from, written so that their forward
 * matches PyTorch and their backward works in SameDiff 1.0.0-M2.1.
 *
 * <ul>
 *   <li>{@link #linear}: {@code y = x W^T + b} with {@code W} in PyTorch's {@code [out, in]} layout, so
 *       weights map one-to-one to official state dicts.</li>
 *   <li>{@link #layerNorm}: LayerNorm over the last dimension with an explicit epsilon. ND4J's fused
 *       {@code layer_norm} has no epsilon (it divides by the bare standard deviation), so the
 *       reference's {@code eps = 1e-6} is built from primitive ops; with {@code eps == 0} the fused op is used.</li>
 *   <li>{@link #gelu}: the exact GELU {@code x * Phi(x) = x/2 * erfc(-x / sqrt 2)}. ND4J's {@code gelu} is the
 *       sigmoid approximation and {@code preciseGelu} a tanh approximation; both differ from
 *       PyTorch's {@code nn.GELU()} by up to 2e-2.</li>
 * </ul>
 */
public final class Layers {

    private static final double INV_SQRT2 = 1.0 / Math.sqrt(2.0);

    private Layers() {
    }

    /**
     * Affine layer in PyTorch layout.
     *
     * @param x [N, in]
     * @param w [out, in]
     * @param b [out] or {@code null}
     * @return [N, out]
     */
    public static SDVariable linear(SameDiff sd, SDVariable x, SDVariable w, SDVariable b) {
        SDVariable y = sd.mmul(x, w, false, true, false);
        return b == null ? y : y.add(b);
    }

    /**
     * LayerNorm over dimension 1 of a 2-D input: {@code (x - mean) / sqrt(var + eps) * gain + bias}.
     *
     * @param x    [N, D]
     * @param gain [D]
     * @param bias [D]
     */
    public static SDVariable layerNorm(SameDiff sd, SDVariable x, SDVariable gain, SDVariable bias, double eps) {
        if (eps == 0) {
            return sd.nn.layerNorm(x, gain, bias, false, 1);
        }
        SDVariable centred = x.sub(x.mean(true, 1));
        SDVariable variance = centred.mul(centred).mean(true, 1);
        SDVariable inverseStd = sd.math.rsqrt(variance.add(eps));
        return centred.mul(inverseStd).mul(gain).add(bias);
    }

    /** Exact GELU, {@code x/2 * erfc(-x/sqrt(2))}, elementwise. */
    public static SDVariable gelu(SameDiff sd, SDVariable x) {
        return x.mul(sd.math.erfc(x.mul(-INV_SQRT2))).mul(0.5);
    }
}
