package io.mugs.io;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.util.Arrays;

/**
 * How a backbone's input images were prepared in training: channel count, the side the images are resized to for
 * evaluation (the global crop size), and the per-channel mean and std subtracted and divided after scaling pixels to
 * [0, 1]. Stored as JSON under {@link #METADATA_KEY} in every training checkpoint and backbone file, so evaluation
 * prepares images exactly as training did instead of guessing from the channel count.
 *
 * <pre>{@code
 * InputNormalisation n = new InputNormalisation(1, 28, new double[] {0.2860}, new double[] {0.3530});
 * InputNormalisation same = InputNormalisation.fromJson(n.toJson());
 * }</pre>
 *
 * @param channels  1 (grey) or 3 (RGB)
 * @param imageSize side in pixels of the evaluation image (the global crop size)
 * @param mean      per-channel mean, {@code channels} values
 * @param std       per-channel std, {@code channels} positive values
 */
public record InputNormalisation(int channels, int imageSize, double[] mean, double[] std) {

    /** Metadata key of checkpoints and backbone files that holds {@link #toJson()}. */
    public static final String METADATA_KEY = "mugs.input";

    private static final ObjectMapper JSON = new ObjectMapper();

    public InputNormalisation {
        if (channels != 1 && channels != 3) {
            throw new IllegalArgumentException("channels must be 1 or 3, got " + channels);
        }
        if (imageSize <= 0) {
            throw new IllegalArgumentException("imageSize must be positive, got " + imageSize);
        }
        if (mean == null || std == null || mean.length != channels || std.length != channels) {
            throw new IllegalArgumentException("mean and std need " + channels + " values each");
        }
        for (int c = 0; c < channels; c++) {
            if (!Double.isFinite(mean[c]) || !Double.isFinite(std[c]) || std[c] <= 0) {
                throw new IllegalArgumentException("mean must be finite and std finite and positive, got mean "
                        + Arrays.toString(mean) + ", std " + Arrays.toString(std));
            }
        }
        mean = mean.clone();
        std = std.clone();
    }

    @Override
    public double[] mean() {
        return mean.clone();
    }

    @Override
    public double[] std() {
        return std.clone();
    }

    public String toJson() {
        try {
            return JSON.writeValueAsString(this);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }

    /** Parses {@link #toJson()}; a malformed value is an {@link IllegalArgumentException} naming the problem. */
    public static InputNormalisation fromJson(String json) {
        try {
            return JSON.readValue(json, InputNormalisation.class);
        } catch (JsonProcessingException e) {
            throw new IllegalArgumentException("input normalisation is not valid JSON of channels, imageSize, mean "
                    + "and std: " + e.getOriginalMessage());
        }
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof InputNormalisation n && n.channels == channels && n.imageSize == imageSize
                && Arrays.equals(n.mean, mean) && Arrays.equals(n.std, std);
    }

    @Override
    public int hashCode() {
        return 31 * (31 * channels + imageSize) + 7 * Arrays.hashCode(mean) + Arrays.hashCode(std);
    }

    @Override
    public String toString() {
        return "InputNormalisation[channels=" + channels + ", imageSize=" + imageSize + ", mean="
                + Arrays.toString(mean) + ", std=" + Arrays.toString(std) + "]";
    }
}
