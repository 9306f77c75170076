package io.mugs.data.aug;

import io.mugs.data.Image;
import java.util.SplittableRandom;

/**
 * torchvision's {@code RandomResizedCrop(size, scale, ratio=(3/4, 4/3), BICUBIC)}: up to 10 attempts to draw a
 * box with area fraction ~ U(scale) and log aspect ratio ~ U(log ratio) that fits, then a fallback to the
 * largest centred box with the aspect ratio clamped to the range; the box is resized with PIL bicubic
 * ({@link Resize}). Reference values: scale (0.25, 1) for global and (0.05, 0.25) for local crops.
 *
 * @param size     output side in pixels
 * @param minScale smallest area fraction
 * @param maxScale largest area fraction
 */
public record RandomResizedCrop(int size, double minScale, double maxScale) {

    private static final double MIN_RATIO = 3.0 / 4;
    private static final double MAX_RATIO = 4.0 / 3;

    public RandomResizedCrop {
        if (size < 1 || minScale <= 0 || maxScale > 1 || minScale > maxScale) {
            throw new IllegalArgumentException("crop size must be positive and 0 < minScale <= maxScale <= 1, got "
                    + size + ", " + minScale + ", " + maxScale);
        }
    }

    /** The crop box {@code {top, left, height, width}} drawn as torchvision's {@code get_params}. */
    public int[] sampleBox(int height, int width, SplittableRandom rng) {
        double area = (double) height * width;
        double logLo = Math.log(MIN_RATIO);
        double logHi = Math.log(MAX_RATIO);
        for (int attempt = 0; attempt < 10; attempt++) {
            double target = area * (minScale + (maxScale - minScale) * rng.nextDouble());
            double ratio = Math.exp(logLo + (logHi - logLo) * rng.nextDouble());
            int w = (int) Math.round(Math.sqrt(target * ratio));
            int h = (int) Math.round(Math.sqrt(target / ratio));
            if (w > 0 && h > 0 && w <= width && h <= height) {
                int top = rng.nextInt(height - h + 1);
                int left = rng.nextInt(width - w + 1);
                return new int[] {top, left, h, w};
            }
        }
        double inRatio = (double) width / height;
        int w;
        int h;
        if (inRatio < MIN_RATIO) {
            w = width;
            h = (int) Math.round(w / MIN_RATIO);
        } else if (inRatio > MAX_RATIO) {
            h = height;
            w = (int) Math.round(h * MAX_RATIO);
        } else {
            w = width;
            h = height;
        }
        return new int[] {(height - h) / 2, (width - w) / 2, h, w};
    }

    public Image apply(Image img, SplittableRandom rng) {
        int[] box = sampleBox(img.height(), img.width(), rng);
        return Resize.crop(img, box[0], box[1], box[2], box[3], size, size);
    }
}
