package io.mugs.data;

import java.awt.image.BufferedImage;
import java.awt.image.ColorModel;
import java.awt.image.ComponentColorModel;
import java.awt.image.IndexColorModel;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Locale;
import javax.imageio.IIOException;
import javax.imageio.ImageIO;
import javax.imageio.ImageReadParam;
import javax.imageio.ImageReader;
import javax.imageio.ImageTypeSpecifier;
import javax.imageio.stream.ImageInputStream;

/**
 * Decodes JPEG, PNG, WebP, BMP, TIFF and GIF files (TwelveMonkeys' plugins for the JPEG variants, WebP, BMP and
 * TIFF; the JDK's GIF reader) to 8-bit {@link Image}s as torchvision's folder loader does, i.e. PIL's
 * {@code Image.open(f).convert("RGB")} (or {@code "L"}): samples are read raw through javax.imageio (with the
 * TwelveMonkeys JPEG plugin for CMYK, YCCK and Adobe JPEGs) and converted with PIL's integer arithmetic
 * ({@code PilColour}); colour profiles are ignored, as PIL's {@code convert} ignores them.
 *
 * <p>What PIL 9.4 does, and so what this does: RGBA and LA lose their alpha (no compositing); palettes are looked
 * up (transparency ignored); 16-bit grey PNGs open as mode I and are <em>clipped</em> to 255 (not scaled); 16-bit
 * RGB, RGBA and LA PNGs keep the high byte; 1-, 2- and 4-bit grey are scaled to 0..255; every 4-component JPEG is
 * read as Adobe (inverted) CMYK and converted by PIL's profile-free formula, after libjpeg's YCC step for YCCK.
 * RGB to L is PIL's ITU-R 601-2 luma. Lossless formats match PIL exactly; JPEGs within a few levels (different
 * IDCTs; measured in {@code docs/reliability.md}).
 *
 * <p>EXIF orientation is ignored by default, as torchvision's loader ignores it (the official Mugs pipeline trains
 * on the pixels as stored); {@link #withExifOrientation()} applies it as {@code ImageOps.exif_transpose}.
 * Images over PIL's decompression-bomb limit (178,956,970 pixels) are refused before their pixels are read; images
 * over the decode budget ({@link #DEFAULT_MAX_DECODE_PIXELS}) are read subsampled; 16-bit grey follows
 * {@link SixteenBit} ({@link #pil()}: PIL's clipping);
 * truncated files are refused as PIL refuses them (libjpeg alone would fill the missing part with grey).
 *
 * <pre>{@code
 * Image rgb = ImageDecoder.pil().decode(Path.of("cat.jpg"), ImageDecoder.Mode.RGB);   // [3, H, W] in 0..255
 * ImageHeader h = ImageDecoder.header(Path.of("cat.jpg"));                             // size only
 * }</pre>
 */
public final class ImageDecoder {

    /** PIL's {@code Image.MAX_IMAGE_PIXELS * 2}, above which PIL raises {@code DecompressionBombError}. */
    public static final long MAX_PIXELS = 178_956_970L;

    /** The target layout. */
    public enum Mode {
        /** One channel, PIL's {@code convert("L")}. */
        L,
        /** Three channels, PIL's {@code convert("RGB")}. */
        RGB,
        /** L for files PIL opens in a grey mode ({@link ImageHeader#grey()}), RGB for all others. */
        NATURAL;

        /** The mode for a channel count: 1 is L, 3 is RGB. */
        public static Mode forChannels(int channels) {
            return switch (channels) {
                case 1 -> L;
                case 3 -> RGB;
                default -> throw new IllegalArgumentException("channels must be 1 (L) or 3 (RGB), got " + channels);
            };
        }
    }

    /** What a 16-bit grey image becomes in 8 bits. */
    public enum SixteenBit {
        /** {@code round(v * 255 / 65535)}: the picture as it looks (what a user means). */
        SCALE,
        /** PIL's {@code convert}: mode I clipped to 255, so most 16-bit images come out white. */
        PIL_CLIP
    }

    /**
     * The default decode budget, 2^24 pixels (4096 x 4096): a larger image is read subsampled by the smallest whole
     * factor that brings it under (javax.imageio's source subsampling: every s-th pixel of every s-th row), so one
     * decode takes at most about 200 MB as RGB floats. A worker decodes one image at a time, so this bounds the
     * loader's decoding memory per worker.
     */
    public static final long DEFAULT_MAX_DECODE_PIXELS = 1L << 24;

    private static final ImageDecoder PIL = new ImageDecoder(false, SixteenBit.PIL_CLIP, DEFAULT_MAX_DECODE_PIXELS);

    private final boolean exifOrientation;
    private final SixteenBit sixteenBit;
    private final long maxDecodePixels;

    private ImageDecoder(boolean exifOrientation, SixteenBit sixteenBit, long maxDecodePixels) {
        this.exifOrientation = exifOrientation;
        this.sixteenBit = sixteenBit;
        this.maxDecodePixels = maxDecodePixels;
    }

    /** Torchvision's behaviour: pixels as stored, EXIF orientation ignored, 16-bit grey clipped as PIL clips it. */
    public static ImageDecoder pil() {
        return PIL;
    }

    /** As {@link #pil()}, then JPEGs are turned upright by their EXIF orientation tag. */
    public static ImageDecoder withExifOrientation() {
        return new ImageDecoder(true, SixteenBit.PIL_CLIP, DEFAULT_MAX_DECODE_PIXELS);
    }

    /** This decoder with 16-bit grey images converted by {@code rule}. */
    public ImageDecoder sixteenBit(SixteenBit rule) {
        return new ImageDecoder(exifOrientation, java.util.Objects.requireNonNull(rule, "rule"), maxDecodePixels);
    }

    /** This decoder with another decode budget in pixels (images above it are read subsampled). */
    public ImageDecoder maxDecodePixels(long pixels) {
        if (pixels < 1) {
            throw new IllegalArgumentException("the decode budget must be >= 1 pixel, got " + pixels);
        }
        return new ImageDecoder(exifOrientation, sixteenBit, pixels);
    }

    public SixteenBit sixteenBitRule() {
        return sixteenBit;
    }

    /** The subsampling factor for a {@code w x h} image under {@code budget} pixels: 1 when it fits. */
    public static int subsampling(int w, int h, long budget) {
        int s = 1;
        while (ceilDiv(w, s) * ceilDiv(h, s) > budget) {
            s++;
        }
        return s;
    }

    private static long ceilDiv(long a, long b) {
        return (a + b - 1) / b;
    }

    public boolean appliesExifOrientation() {
        return exifOrientation;
    }

    /**
     * Reads the size and layout from the header only (no pixel is decoded).
     *
     * @throws IOException naming {@code file} when it is missing, not a JPEG or PNG, damaged, too large or of a
     *                     layout this decoder cannot convert
     */
    public static ImageHeader header(Path file) throws IOException {
        try (ImageInputStream in = open(file)) {
            ImageReader reader = reader(in, file);
            try {
                return header(reader, file);
            } catch (IOException | RuntimeException e) {
                throw failure(file, e);
            } finally {
                reader.dispose();
            }
        }
    }

    /**
     * Decodes {@code file} to {@code mode}: an image [1, H, W] (L) or [3, H, W] (RGB) with samples 0..255.
     *
     * @throws IOException naming {@code file} when it cannot be read or decoded, or its layout is not supported
     */
    public Image decode(Path file, Mode mode) throws IOException {
        try (ImageInputStream in = open(file)) {
            ImageReader reader = reader(in, file);
            try {
                ImageHeader h = header(reader, file);
                List<String> warnings = new ArrayList<>();
                reader.addIIOReadWarningListener((source, warning) -> warnings.add(warning));
                ImageReadParam param = reader.getDefaultReadParam();
                int s = subsampling(h.width(), h.height(), maxDecodePixels);
                if (s > 1) {
                    param.setSourceSubsampling(s, s, 0, 0);
                }
                Image img;
                try {
                    img = jpeg(reader) ? PilRasters.jpeg(reader, param)
                            : PilRasters.other(reader.read(0, param), file, sixteenBit);
                } catch (OutOfMemoryError e) {
                    throw new IOException(file + ": out of memory decoding " + h.width() + "x" + h.height() + " px"
                            + (s > 1 ? " read at 1/" + s : "") + ": lower the decode budget "
                            + "(ImageDecoder.maxDecodePixels) or the number of workers, or give the JVM more heap");
                }
                for (String w : warnings) {   // libjpeg only warns on truncation and fills with grey; PIL refuses
                    String lower = w.toLowerCase(Locale.ROOT);
                    if (lower.contains("truncated") || lower.contains("premature end")) {
                        throw new IOException(file + ": the image data is truncated (" + w + "); re-copy or remove "
                                + "the file");
                    }
                }
                img = PilRasters.convert(img, mode == Mode.NATURAL ? (h.grey() ? Mode.L : Mode.RGB) : mode);
                return exifOrientation && jpeg(reader) ? ExifOrientation.apply(img, ExifOrientation.read(in)) : img;
            } catch (IOException | RuntimeException e) {
                throw failure(file, e);
            } finally {
                reader.dispose();
            }
        }
    }

    /** Converts a decoded PNG-like image (grey, grey+alpha, palette, RGB, RGBA; 8 or 16 bits) as PIL would. */
    public static Image fromBufferedImage(BufferedImage img, Mode mode) throws IOException {
        boolean grey = isGrey(img.getColorModel());
        return PilRasters.convert(PilRasters.other(img, null, SixteenBit.PIL_CLIP), mode == Mode.NATURAL ? (grey ? Mode.L : Mode.RGB)
                : mode);
    }

    private static ImageInputStream open(Path file) throws IOException {
        if (!Files.isRegularFile(file)) {
            throw new NoSuchFileException(file.toString(), null, "no such image file (was it moved or deleted?)");
        }
        ImageInputStream in;
        try {
            in = ImageIO.createImageInputStream(file.toFile());
        } catch (IOException | RuntimeException e) {
            in = null;
        }
        if (in == null) {
            throw new IOException(file + ": cannot open the file for reading (check its permissions)");
        }
        return in;
    }

    private static ImageReader reader(ImageInputStream in, Path file) throws IOException {
        Iterator<ImageReader> readers = ImageIO.getImageReaders(in);
        if (!readers.hasNext()) {
            in.close();
            throw new IOException(file + ": not an image this decoder reads (JPEG, PNG, WebP, BMP, TIFF, GIF: "
                    + "none recognises its first bytes); remove it or convert it");
        }
        ImageReader reader = readers.next();
        reader.setInput(in, false, false);   // not forward-only: EXIF is read after the pixels
        return reader;
    }

    private static IOException failure(Path file, Exception e) {
        if (e instanceof IOException io && io.getMessage() != null && io.getMessage().startsWith(file.toString())) {
            return io;
        }
        String why = e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage();
        return new IOException(file + ": cannot decode the image (" + why + "); remove or re-encode the file", e);
    }

    private static boolean jpeg(ImageReader reader) throws IOException {
        return reader.getFormatName().toLowerCase(Locale.ROOT).contains("jp");
    }

    private static ImageHeader header(ImageReader reader, Path file) throws IOException {
        int w = reader.getWidth(0);
        int h = reader.getHeight(0);
        if (w < 1 || h < 1) {
            throw new IIOException("the header declares " + w + "x" + h + " px");
        }
        if ((long) w * h > MAX_PIXELS) {
            throw new IOException(file + ": " + w + "x" + h + " px is over " + MAX_PIXELS + " pixels (PIL's "
                    + "decompression-bomb limit); downscale the file");
        }
        ImageTypeSpecifier raw = reader.getRawImageType(0);
        ColorModel cm = raw == null ? null : raw.getColorModel();
        if (jpeg(reader)) {
            int n = cm == null ? 3 : cm.getNumComponents();
            if (n != 1 && n != 3 && n != 4) {
                throw new IOException(file + ": a JPEG with " + n + " components (only 1, 3 or 4 are images PIL "
                        + "opens); re-encode it as RGB");
            }
        }
        boolean grey16 = cm instanceof ComponentColorModel && cm.getNumColorComponents() == 1 && !cm.hasAlpha()
                && cm.getComponentSize(0) == 16;
        return new ImageHeader(reader.getFormatName().toLowerCase(Locale.ROOT), w, h, cm != null && isGrey(cm),
                grey16);
    }

    private static boolean isGrey(ColorModel cm) {
        if (cm instanceof IndexColorModel icm) {   // 1-, 2- and 4-bit grey PNGs come with a grey palette
            for (int i = 0; i < icm.getMapSize(); i++) {
                if (icm.getRed(i) != icm.getGreen(i) || icm.getGreen(i) != icm.getBlue(i)) {
                    return false;
                }
            }
            return true;
        }
        return cm.getNumColorComponents() == 1;
    }
}
