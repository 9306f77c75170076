package io.mugs.data.aug;

import java.util.SplittableRandom;

/**
 * timm 0.4.5's {@code RandomErasing(probability, mode="pixel", max_count=1)}: with the given probability, one
 * rectangle of area fraction ~ U(0.02, 1/3) and log aspect ratio ~ U(log 0.3, log 1/0.3) (10 attempts to fit) is
 * filled with per-pixel N(0, 1) noise. It acts on a [C, H, W] tensor in [0, 1] before normalisation, as the
 * reference's prefetcher order does (reference §7.2). Probability 0.25 in the reference.
 */
public record RandomErasing(double probability) {

    private static final double MIN_AREA = 0.02;
    private static final double MAX_AREA = 1.0 / 3;
    private static final double LOG_MIN_RATIO = Math.log(0.3);
    private static final double LOG_MAX_RATIO = Math.log(1 / 0.3);

    /**
     * Erases in place.
     *
     * @param data channel-major samples of a {@code channels x height x width} tensor
     * @return the erased box {@code {top, left, h, w}}, or null when nothing was erased
     */
    public int[] apply(float[] data, int channels, int height, int width, SplittableRandom rng) {
        if (rng.nextDouble() > probability) {
            return null;
        }
        double area = (double) height * width;
        for (int attempt = 0; attempt < 10; attempt++) {
            double target = area * (MIN_AREA + (MAX_AREA - MIN_AREA) * rng.nextDouble());
            double ratio = Math.exp(LOG_MIN_RATIO + (LOG_MAX_RATIO - LOG_MIN_RATIO) * rng.nextDouble());
            int h = (int) Math.round(Math.sqrt(target * ratio));
            int w = (int) Math.round(Math.sqrt(target / ratio));
            if (w < width && h < height) {
                int top = rng.nextInt(height - h + 1);
                int left = rng.nextInt(width - w + 1);
                for (int c = 0; c < channels; c++) {
                    for (int y = top; y < top + h; y++) {
                        for (int x = left; x < left + w; x++) {
                            data[(c * height + y) * width + x] = (float) rng.nextGaussian();
                        }
                    }
                }
                return new int[] {top, left, h, w};
            }
        }
        return null;
    }
}
