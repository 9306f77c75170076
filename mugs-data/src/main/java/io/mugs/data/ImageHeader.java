package io.mugs.data;

/**
 * What an image file's header says, read without decoding pixels ({@link ImageDecoder#header}).
 *
 * <pre>{@code
 * ImageHeader h = ImageDecoder.header(Path.of("cat.jpg"));
 * boolean fits = h.minSide() >= 96;
 * }</pre>
 *
 * @param format the decoder's format name ("jpeg", "png", ...)
 * @param width  pixels per row as stored (before any EXIF orientation)
 * @param height rows as stored
 * @param grey   true when PIL opens it as a grey mode (1, L, LA, I): it decodes to one channel in
 *               {@link ImageDecoder.Mode#NATURAL}
 * @param sixteenBitGrey true for 16-bit grey without alpha (PIL's mode I), which {@link ImageDecoder.SixteenBit}
 *               converts
 */
public record ImageHeader(String format, int width, int height, boolean grey, boolean sixteenBitGrey) {

    /** A header of an 8-bit (or colour) image. */
    public ImageHeader(String format, int width, int height, boolean grey) {
        this(format, width, height, grey, false);
    }

    /** The shorter side in pixels (unchanged by EXIF rotations). */
    public int minSide() {
        return Math.min(width, height);
    }
}
