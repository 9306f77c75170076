package io.mugs.data;

import io.mugs.data.aug.Resize;

/**
 * The evaluation view of an image (DINO's k-NN / linear-probe transform): the shorter side resized to
 * {@code size * 256 / 224} with PIL bicubic, a centred {@code size x size} crop, scaling to [0, 1] and
 * normalisation. Images already {@code size x size} are only normalised (Fashion-MNIST at 28 px).
 */
public final class EvalPreprocessing {

    private EvalPreprocessing() {
    }

    /** Writes the normalised {@code C x size x size} view of {@code img} into {@code out} at {@code offset}. */
    public static void apply(Image img, int size, double[] mean, double[] std, float[] out, int offset) {
        Image v = img;
        if (img.height() != size || img.width() != size) {
            int shorter = (int) Math.round(size * 256.0 / 224.0);
            double scale = (double) shorter / Math.min(img.height(), img.width());
            int h = Math.max(size, (int) Math.round(img.height() * scale));
            int w = Math.max(size, (int) Math.round(img.width() * scale));
            Image resized = Resize.resize(img, h, w);
            v = Resize.crop(resized, (h - size) / 2, (w - size) / 2, size, size, size, size);
        }
        int plane = size * size;
        float[] d = v.data();
        for (int c = 0; c < v.channels(); c++) {
            for (int i = 0; i < plane; i++) {
                out[offset + c * plane + i] = (float) ((d[c * plane + i] / 255.0 - mean[c]) / std[c]);
            }
        }
    }
}
