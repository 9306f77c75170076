package io.mugs.data.aug;

import io.mugs.data.Image;

/**
 * Gaussian blur with standard deviation {@code radius} (PIL's {@code ImageFilter.GaussianBlur(radius)} takes the
 * radius as the standard deviation). A separable kernel truncated at 3 sigma with clamped borders; PIL
 * approximates the same Gaussian with three box-blur passes, so results agree to within a few 8-bit levels.
 * The reference draws radius ~ U(0.1, 2).
 */
public final class GaussianBlur {

    private GaussianBlur() {
    }

    public static Image apply(Image img, double radius) {
        int r = Math.max(1, (int) Math.ceil(3 * radius));
        double[] k = new double[2 * r + 1];
        double sum = 0;
        for (int i = -r; i <= r; i++) {
            k[i + r] = Math.exp(-0.5 * i * i / (radius * radius));
            sum += k[i + r];
        }
        for (int i = 0; i < k.length; i++) {
            k[i] /= sum;
        }
        int h = img.height();
        int w = img.width();
        float[] s = img.data();
        float[] mid = new float[s.length];
        float[] out = new float[s.length];
        for (int c = 0; c < img.channels(); c++) {
            int base = c * h * w;
            for (int y = 0; y < h; y++) {
                for (int x = 0; x < w; x++) {
                    double v = 0;
                    for (int i = -r; i <= r; i++) {
                        v += k[i + r] * s[base + y * w + Math.min(Math.max(x + i, 0), w - 1)];
                    }
                    mid[base + y * w + x] = (float) v;
                }
            }
            for (int y = 0; y < h; y++) {
                for (int x = 0; x < w; x++) {
                    double v = 0;
                    for (int i = -r; i <= r; i++) {
                        v += k[i + r] * mid[base + Math.min(Math.max(y + i, 0), h - 1) * w + x];
                    }
                    out[base + y * w + x] = Image.clamp8(v);
                }
            }
        }
        return new Image(img.channels(), h, w, out);
    }
}
