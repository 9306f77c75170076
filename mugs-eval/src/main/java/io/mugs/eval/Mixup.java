package io.mugs.eval;

import java.util.SplittableRandom;

/**
 * timm's {@code Mixup} in batch mode, as DeiT and BEiT fine-tune with it, plus label smoothing: each batch is mixed
 * with itself reversed (image i with image B-1-i). With probability {@code switchProb} (when both are on) the batch
 * uses cutmix, otherwise mixup; lambda ~ Beta(alpha, alpha) of the chosen one.
 * <pre>
 *   mixup:  x_i <- lam x_i + (1 - lam) x_(B-1-i)
 *   cutmix: a box of side sqrt(1 - lam) x (H, W) at a uniform centre, clipped to the image, is copied from
 *           x_(B-1-i) into x_i; lam <- 1 - box area / (H W)            (timm's correct_lam)
 *   target: y_i = lam s(label_i) + (1 - lam) s(label_(B-1-i)),   s(c) = one-hot(c) (1 - eps) + eps / K
 * </pre>
 * Images are {@code [B, C, H, W]} floats in row-major order, already normalised (timm mixes after normalisation).
 *
 * <pre>{@code
 * Mixup mix = new Mixup(0.8, 1.0, 0.5, 0.1, 10);
 * float[] targets = new float[batch * 10];
 * Mixup.Mixed how = mix.apply(images, batch, 1, 28, 28, labels, targets, rng);
 * }</pre>
 *
 * @param mixupAlpha Beta parameter of mixup (0: off)
 * @param cutmixAlpha Beta parameter of cutmix (0: off)
 * @param switchProb chance of cutmix when both are on
 * @param smoothing  label smoothing eps
 * @param classes    K
 */
public record Mixup(double mixupAlpha, double cutmixAlpha, double switchProb, double smoothing, int classes) {

    /**
     * How a batch was mixed.
     *
     * @param lam    weight of the image's own label
     * @param cutmix whether cutmix was used
     * @param box    {@code {top, bottom, left, right}} (exclusive ends) of the cutmix box, or null
     */
    public record Mixed(double lam, boolean cutmix, int[] box) {
    }

    public Mixup {
        if (mixupAlpha < 0 || cutmixAlpha < 0 || switchProb < 0 || switchProb > 1 || smoothing < 0 || smoothing >= 1
                || classes < 1) {
            throw new IllegalArgumentException("mixup needs alphas >= 0, switchProb in [0, 1], smoothing in [0, 1) "
                    + "and classes >= 1");
        }
    }

    /**
     * Mixes {@code images} in place and writes the soft targets {@code [B, K]} into {@code targets}.
     *
     * @param labels class of each of the B images
     */
    public Mixed apply(float[] images, int batch, int channels, int height, int width, int[] labels, float[] targets,
                       SplittableRandom rng) {
        double lam = 1;
        boolean useCutmix = false;
        if (mixupAlpha > 0 && cutmixAlpha > 0) {
            useCutmix = rng.nextDouble() < switchProb;
            lam = beta(useCutmix ? cutmixAlpha : mixupAlpha, rng);
        } else if (mixupAlpha > 0) {
            lam = beta(mixupAlpha, rng);
        } else if (cutmixAlpha > 0) {
            useCutmix = true;
            lam = beta(cutmixAlpha, rng);
        }
        int[] box = null;
        int plane = height * width;
        int per = channels * plane;
        if (lam < 1 && useCutmix) {
            double ratio = Math.sqrt(1 - lam);
            int cutH = (int) (height * ratio);
            int cutW = (int) (width * ratio);
            int cy = rng.nextInt(height);
            int cx = rng.nextInt(width);
            box = new int[] {clip(cy - cutH / 2, height), clip(cy + cutH / 2, height), clip(cx - cutW / 2, width),
                clip(cx + cutW / 2, width)};
            lam = 1 - (double) (box[1] - box[0]) * (box[3] - box[2]) / plane;
            float[] source = images.clone();
            for (int i = 0; i < batch; i++) {
                int j = batch - 1 - i;
                for (int c = 0; c < channels; c++) {
                    for (int y = box[0]; y < box[1]; y++) {
                        int row = c * plane + y * width;
                        System.arraycopy(source, j * per + row + box[2], images, i * per + row + box[2],
                                box[3] - box[2]);
                    }
                }
            }
        } else if (lam < 1) {
            float[] source = images.clone();
            for (int i = 0; i < batch; i++) {
                int j = batch - 1 - i;
                for (int k = 0; k < per; k++) {
                    images[i * per + k] = (float) (lam * source[i * per + k] + (1 - lam) * source[j * per + k]);
                }
            }
        }
        targets(labels, classes, smoothing, lam, targets);
        return new Mixed(lam, useCutmix && box != null, box);
    }

    /** Soft targets {@code [B, K]}: lam s(label_i) + (1 - lam) s(label_(B-1-i)) with smoothing eps. */
    public static void targets(int[] labels, int classes, double smoothing, double lam, float[] out) {
        int b = labels.length;
        double off = smoothing / classes;
        double on = 1 - smoothing + off;
        for (int i = 0; i < b; i++) {
            for (int k = 0; k < classes; k++) {
                double own = labels[i] == k ? on : off;
                double other = labels[b - 1 - i] == k ? on : off;
                out[i * classes + k] = (float) (lam * own + (1 - lam) * other);
            }
        }
    }

    private static int clip(int v, int hi) {
        return Math.max(0, Math.min(hi, v));
    }

    /** A Beta(a, a) sample: X / (X + Y) with X, Y ~ Gamma(a). */
    public static double beta(double a, SplittableRandom rng) {
        double x = gamma(a, rng);
        double y = gamma(a, rng);
        return x + y == 0 ? 0.5 : x / (x + y);
    }

    /** Gamma(shape, 1) by Marsaglia and Tsang (2000); shapes below 1 through Gamma(shape + 1) U^(1 / shape). */
    static double gamma(double shape, SplittableRandom rng) {
        if (shape < 1) {
            return gamma(shape + 1, rng) * Math.pow(rng.nextDouble(), 1 / shape);
        }
        double d = shape - 1.0 / 3;
        double c = 1 / Math.sqrt(9 * d);
        while (true) {
            double x;
            double v;
            do {
                x = gaussian(rng);
                v = 1 + c * x;
            } while (v <= 0);
            v = v * v * v;
            double u = rng.nextDouble();
            if (u < 1 - 0.0331 * x * x * x * x || Math.log(u) < 0.5 * x * x + d * (1 - v + Math.log(v))) {
                return d * v;
            }
        }
    }

    private static double gaussian(SplittableRandom rng) {
        double u1 = rng.nextDouble();
        double u2 = rng.nextDouble();
        return Math.sqrt(-2 * Math.log(1 - u1)) * Math.cos(2 * Math.PI * u2);
    }
}
