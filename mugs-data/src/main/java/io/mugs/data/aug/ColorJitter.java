package io.mugs.data.aug;

import io.mugs.data.Image;
import java.util.SplittableRandom;

/**
 * torchvision's {@code ColorJitter(brightness, contrast, saturation, hue)} on PIL images: the four adjustments in
 * a random order, factors ~ U(max(0, 1 - x), 1 + x) and hue ~ U(-hue, hue). The reference uses (0.4, 0.4, 0.2, 0.1)
 * with probability 0.8. On grayscale images saturation and hue are no-ops.
 */
public record ColorJitter(double brightness, double contrast, double saturation, double hue) {

    public Image apply(Image img, SplittableRandom rng) {
        int[] order = {0, 1, 2, 3};
        for (int i = 3; i > 0; i--) {
            int j = rng.nextInt(i + 1);
            int t = order[i];
            order[i] = order[j];
            order[j] = t;
        }
        double b = factor(brightness, rng);
        double c = factor(contrast, rng);
        double s = factor(saturation, rng);
        double h = (2 * rng.nextDouble() - 1) * hue;
        Image out = img;
        for (int op : order) {
            out = switch (op) {
                case 0 -> ColorOps.brightness(out, b);
                case 1 -> ColorOps.contrast(out, c);
                case 2 -> ColorOps.saturation(out, s);
                default -> ColorOps.hue(out, h);
            };
        }
        return out;
    }

    private static double factor(double x, SplittableRandom rng) {
        double lo = Math.max(0, 1 - x);
        return lo + (1 + x - lo) * rng.nextDouble();
    }
}
