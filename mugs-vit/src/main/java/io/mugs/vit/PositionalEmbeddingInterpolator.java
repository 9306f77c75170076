package io.mugs.vit;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * Bicubic resizing of the learned positional grid to another crop size, as a constant matrix.
 *
 * <p>Reproduces DINO/Mugs {@code interpolate_pos_encoding} (reference §5): the {@code g x g} grid of patch
 * embeddings is resized with {@code F.interpolate(mode="bicubic", align_corners=False,
 * scale_factor=((h0 + 0.1) / g, (w0 + 0.1) / g))}, where {@code h0 x w0} is the crop's patch grid. PyTorch then
 * maps output pixel {@code o} to source coordinate {@code (o + 0.5) / scale - 0.5} (the user's scale factor, not
 * {@code h0 / g}), takes the four taps {@code floor(src) - 1 .. floor(src) + 2} clamped to the border, and weighs
 * them with Keys' cubic convolution kernel with {@code A = -0.75}.
 *
 * <p>Because bicubic resizing is linear in the grid values and separable, it is the matrix
 * {@code M = kron(R_h, R_w)} of shape {@code [h0*w0, g*g]}, and the resized grid is {@code M @ pos} with
 * {@code pos [g*g, D]}. In a SameDiff graph that product carries gradients back to the learned grid (ND4J's
 * resize ops have no backward).
 *
 * <pre>{@code
 * INDArray m = PositionalEmbeddingInterpolator.matrix(14, 14, 6, 6, DataType.FLOAT); // [36, 196]: 224 -> 96 px
 * }</pre>
 */
public final class PositionalEmbeddingInterpolator {

    /** Keys' cubic convolution parameter used by PyTorch. */
    public static final double A = -0.75;

    private PositionalEmbeddingInterpolator() {
    }

    /**
     * @param gridH  rows of the learned grid
     * @param gridW  columns of the learned grid
     * @param outH   rows of the crop's patch grid
     * @param outW   columns of the crop's patch grid
     * @return [outH * outW, gridH * gridW], row-major over both grids
     */
    public static INDArray matrix(int gridH, int gridW, int outH, int outW, DataType type) {
        double[][] rh = resize1d(gridH, outH);
        double[][] rw = resize1d(gridW, outW);
        double[][] m = new double[outH * outW][gridH * gridW];
        for (int oy = 0; oy < outH; oy++) {
            for (int ox = 0; ox < outW; ox++) {
                double[] row = m[oy * outW + ox];
                for (int iy = 0; iy < gridH; iy++) {
                    if (rh[oy][iy] == 0) {
                        continue;
                    }
                    for (int ix = 0; ix < gridW; ix++) {
                        row[iy * gridW + ix] = rh[oy][iy] * rw[ox][ix];
                    }
                }
            }
        }
        return Nd4j.create(m).castTo(type);
    }

    /**
     * The 1-D bicubic resize from {@code in} to {@code out} samples with DINO's scale factor
     * {@code (out + 0.1) / in}, as an {@code [out, in]} matrix.
     */
    static double[][] resize1d(int in, int out) {
        double scaleFactor = (out + 0.1) / in;
        int produced = (int) Math.floor(in * scaleFactor);
        if (produced != out) {
            throw new IllegalStateException("bicubic resize " + in + " -> " + out + " produces " + produced + " samples");
        }
        double[][] r = new double[out][in];
        for (int o = 0; o < out; o++) {
            double src = (o + 0.5) / scaleFactor - 0.5;
            int base = (int) Math.floor(src);
            double t = src - base;
            double[] w = {
                cubicFar(t + 1), cubicNear(t), cubicNear(1 - t), cubicFar(2 - t)
            };
            for (int k = 0; k < 4; k++) {
                int idx = Math.min(Math.max(base - 1 + k, 0), in - 1);
                r[o][idx] += w[k];
            }
        }
        return r;
    }

    /** Kernel for |x| <= 1. */
    private static double cubicNear(double x) {
        return ((A + 2) * x - (A + 3)) * x * x + 1;
    }

    /** Kernel for 1 < |x| < 2. */
    private static double cubicFar(double x) {
        return ((A * x - 5 * A) * x + 8 * A) * x - 4 * A;
    }
}
