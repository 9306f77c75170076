package io.mugs.data;

import java.util.Arrays;

/**
 * A decoded image: {@code channels x height x width} samples in channel-major order, on PIL's 8-bit scale
 * [0, 255]. Augmentation ops that PIL applies to 8-bit images round and clamp their results ({@link #quantize}),
 * so the pipeline reproduces the reference's uint8 arithmetic.
 *
 * <pre>{@code
 * Image img = new Image(3, 224, 224);
 * img.set(0, y, x, 255f);   // red channel
 * }</pre>
 */
public final class Image {

    private final int channels;
    private final int height;
    private final int width;
    private final float[] data;

    public Image(int channels, int height, int width) {
        this(channels, height, width, new float[channels * height * width]);
    }

    /** Wraps {@code data} (channel-major, length C*H*W) without copying. */
    public Image(int channels, int height, int width, float[] data) {
        if (channels < 1 || height < 1 || width < 1 || data.length != channels * height * width) {
            throw new IllegalArgumentException("image " + channels + "x" + height + "x" + width
                    + " does not fit " + data.length + " samples");
        }
        this.channels = channels;
        this.height = height;
        this.width = width;
        this.data = data;
    }

    public int channels() {
        return channels;
    }

    public int height() {
        return height;
    }

    public int width() {
        return width;
    }

    /** The samples, channel-major; writable. */
    public float[] data() {
        return data;
    }

    public float get(int c, int y, int x) {
        return data[(c * height + y) * width + x];
    }

    public void set(int c, int y, int x, float v) {
        data[(c * height + y) * width + x] = v;
    }

    /** A deep copy. */
    public Image copy() {
        return new Image(channels, height, width, data.clone());
    }

    /** Rounds every sample half-up and clamps to [0, 255], as storing into an 8-bit image does. */
    public Image quantize() {
        for (int i = 0; i < data.length; i++) {
            data[i] = clamp8(data[i]);
        }
        return this;
    }

    /** Round half-up and clamp to [0, 255]. */
    public static float clamp8(double v) {
        double r = Math.floor(v + 0.5);
        return (float) (r < 0 ? 0 : r > 255 ? 255 : r);
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof Image i && i.channels == channels && i.height == height && i.width == width
                && Arrays.equals(i.data, data);
    }

    @Override
    public int hashCode() {
        return Arrays.hashCode(data);
    }

    @Override
    public String toString() {
        return "Image[" + channels + "x" + height + "x" + width + "]";
    }
}
