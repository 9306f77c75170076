package io.mugs.data.aug;

import io.mugs.data.Image;

/**
 * PIL's {@code Image.resize(size, BICUBIC)}: separable convolution with Keys' cubic kernel (a = -0.5, PIL's
 * value), the kernel widened by the scale factor when downsampling (antialiasing), weights normalised per output
 * pixel, and 8-bit rounding after the horizontal and the vertical pass, as PIL does for 8-bit images.
 * torchvision's {@code RandomResizedCrop} on PIL images resizes this way.
 */
public final class Resize {

    private static final double A = -0.5;

    private Resize() {
    }

    /** Resizes the {@code h x w} box at ({@code top}, {@code left}) of {@code src} to {@code outH x outW}. */
    public static Image crop(Image src, int top, int left, int h, int w, int outH, int outW) {
        if (top < 0 || left < 0 || h < 1 || w < 1 || top + h > src.height() || left + w > src.width()) {
            throw new IllegalArgumentException("crop box " + h + "x" + w + " at (" + top + ", " + left
                    + ") lies outside the " + src.height() + "x" + src.width() + " image");
        }
        int c = src.channels();
        Coefficients cx = coefficients(w, outW);
        Coefficients cy = coefficients(h, outH);
        float[] in = src.data();
        // Horizontal pass over the rows of the box: [c][h][outW].
        float[] mid = new float[c * h * outW];
        for (int ch = 0; ch < c; ch++) {
            for (int y = 0; y < h; y++) {
                int rowBase = (ch * src.height() + top + y) * src.width() + left;
                for (int x = 0; x < outW; x++) {
                    double s = 0;
                    int start = cx.start[x];
                    for (int k = 0; k < cx.count[x]; k++) {
                        s += cx.weights[x][k] * in[rowBase + start + k];
                    }
                    mid[(ch * h + y) * outW + x] = Image.clamp8(s);
                }
            }
        }
        float[] out = new float[c * outH * outW];
        for (int ch = 0; ch < c; ch++) {
            for (int y = 0; y < outH; y++) {
                int start = cy.start[y];
                for (int x = 0; x < outW; x++) {
                    double s = 0;
                    for (int k = 0; k < cy.count[y]; k++) {
                        s += cy.weights[y][k] * mid[(ch * h + start + k) * outW + x];
                    }
                    out[(ch * outH + y) * outW + x] = Image.clamp8(s);
                }
            }
        }
        return new Image(c, outH, outW, out);
    }

    /** Resizes the whole image. */
    public static Image resize(Image src, int outH, int outW) {
        return crop(src, 0, 0, src.height(), src.width(), outH, outW);
    }

    private record Coefficients(int[] start, int[] count, double[][] weights) {
    }

    /** PIL's {@code precompute_coeffs} for the bicubic filter (support 2). */
    private static Coefficients coefficients(int inSize, int outSize) {
        double scale = (double) inSize / outSize;
        double filterScale = Math.max(scale, 1.0);
        double support = 2.0 * filterScale;
        int[] start = new int[outSize];
        int[] count = new int[outSize];
        double[][] weights = new double[outSize][];
        for (int x = 0; x < outSize; x++) {
            double centre = (x + 0.5) * scale;
            int xmin = Math.max((int) (centre - support + 0.5), 0);
            int xmax = Math.min((int) (centre + support + 0.5), inSize) - xmin;
            double[] w = new double[xmax];
            double total = 0;
            for (int k = 0; k < xmax; k++) {
                w[k] = cubic((k + xmin - centre + 0.5) / filterScale);
                total += w[k];
            }
            for (int k = 0; k < xmax; k++) {
                w[k] = total == 0 ? 0 : w[k] / total;
            }
            start[x] = xmin;
            count[x] = xmax;
            weights[x] = w;
        }
        return new Coefficients(start, count, weights);
    }

    static double cubic(double x) {
        double t = Math.abs(x);
        if (t < 1) {
            return ((A + 2) * t - (A + 3)) * t * t + 1;
        }
        if (t < 2) {
            return (((t - 5) * t + 8) * t - 4) * A;
        }
        return 0;
    }
}
