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
 */
public record ImageHeader(String format, int width, int height, boolean grey) {

    /** The shorter side in pixels (unchanged by EXIF rotations). */
    public int minSide() {
        return Math.min(width, height);
    }
}
