package io.mugs.cli;

import io.mugs.data.Image;
import io.mugs.data.ImageSource;
import java.io.IOException;

/**
 * Per-channel mean and standard deviation of pixels scaled to [0, 1], measured on up to {@code sample} images
 * spread evenly over a source: the input normalisation of a new image folder, instead of a guess. The channel count
 * is the first image's; images with another count are left out of the sums.
 *
 * <pre>{@code
 * ImageStatistics s = ImageStatistics.measure(ImageFolderSource.scan(dir), 256);   // s.mean(), s.std()
 * }</pre>
 *
 * @param channels the first image's channel count (1 or 3)
 * @param mean     per-channel mean
 * @param std      per-channel standard deviation (at least 1e-3, so a blank folder still normalises)
 * @param images   images measured
 * @param minSide  the smallest height or width among them, px
 * @param maxSide  the largest height or width among them, px
 */
record ImageStatistics(int channels, double[] mean, double[] std, int images, int minSide, int maxSide) {

    static ImageStatistics measure(ImageSource source, int sample) throws IOException {
        int n = Math.min(sample, source.size());
        int channels = source.load(0).channels();
        double[] sum = new double[channels];
        double[] sumSq = new double[channels];
        long pixels = 0;
        int used = 0;
        int minSide = Integer.MAX_VALUE;
        int maxSide = 0;
        for (int k = 0; k < n; k++) {
            Image img = source.load((int) ((long) k * source.size() / n));
            if (img.channels() != channels) {
                continue;
            }
            float[] d = img.data();
            int plane = img.height() * img.width();
            for (int c = 0; c < channels; c++) {
                for (int i = c * plane; i < (c + 1) * plane; i++) {
                    double v = d[i] / 255.0;
                    sum[c] += v;
                    sumSq[c] += v * v;
                }
            }
            pixels += plane;
            used++;
            minSide = Math.min(minSide, Math.min(img.height(), img.width()));
            maxSide = Math.max(maxSide, Math.max(img.height(), img.width()));
        }
        double[] mean = new double[channels];
        double[] std = new double[channels];
        for (int c = 0; c < channels; c++) {
            mean[c] = sum[c] / pixels;
            std[c] = Math.max(1e-3, Math.sqrt(Math.max(0, sumSq[c] / pixels - mean[c] * mean[c])));
        }
        return new ImageStatistics(channels, mean, std, used, used == 0 ? 0 : minSide, maxSide);
    }
}
