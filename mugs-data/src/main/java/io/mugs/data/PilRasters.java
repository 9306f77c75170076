package io.mugs.data;

import java.awt.color.ColorSpace;
import java.awt.image.BufferedImage;
import java.awt.image.ColorModel;
import java.awt.image.ComponentColorModel;
import java.awt.image.IndexColorModel;
import java.awt.image.Raster;
import java.io.IOException;
import java.nio.file.Path;
import javax.imageio.ImageReadParam;
import javax.imageio.ImageReader;
import javax.imageio.metadata.IIOMetadata;
import org.w3c.dom.Element;
import org.w3c.dom.Node;
import org.w3c.dom.NodeList;

/**
 * Stored image samples to the 8-bit layouts PIL gives ({@link ImageDecoder}'s conversions): JPEG samples by
 * libjpeg's and PIL's rules (grey, YCbCr or RGB by the Adobe marker and component ids, Adobe CMYK and YCCK), other
 * formats by colour model (palettes looked up, 16-bit grey clipped or scaled, 16-bit RGB to its high byte, alpha
 * dropped), and PIL's L/RGB conversion. Every result is an {@link Image} [1 or 3, H, W] with samples 0..255, built one
 * row of samples at a time.
 *
 * <pre>{@code
 * Image rgb = PilRasters.convert(PilRasters.other(bufferedImage, file, ImageDecoder.SixteenBit.PIL_CLIP),
 *         ImageDecoder.Mode.RGB);
 * }</pre>
 */
final class PilRasters {

    private PilRasters() {
    }

    /** A JPEG's stored samples converted by libjpeg's and PIL's rules: [1 or 3, H, W]. */
    static Image jpeg(ImageReader reader, ImageReadParam param) throws IOException {
        Raster r = reader.readRaster(0, param);
        int bands = r.getNumBands();
        if (r.getSampleModel().getSampleSize(0) != 8) {
            throw new IOException("a " + r.getSampleModel().getSampleSize(0) + "-bit JPEG (only 8-bit JPEGs are "
                    + "supported); re-encode it");
        }
        if (bands == 1) {
            return planes(1, r, (v, i, o) -> o[0] = v[i]);
        }
        Element md = jpegMetadata(reader);
        int transform = adobeTransform(md);
        if (bands == 3) {
            boolean rgb = transform == 0 || (transform < 0 && componentIds(md).equals("RGB"));
            return rgb ? planes(3, r, (v, i, o) -> {
                o[0] = v[i];
                o[1] = v[i + 1];
                o[2] = v[i + 2];
            }) : planes(3, r, (v, i, o) -> PilColour.yccToRgb(v[i], v[i + 1], v[i + 2], o));
        }
        if (bands == 4) {
            boolean ycck = transform == 2;
            return planes(3, r, (v, i, o) -> PilColour.jpegCmykToRgb(v[i], v[i + 1], v[i + 2], v[i + 3], ycck, o));
        }
        throw new IOException("a JPEG with " + bands + " components; re-encode it as RGB");
    }

    private static Element jpegMetadata(ImageReader reader) throws IOException {
        IIOMetadata md = reader.getImageMetadata(0);
        return md == null ? null : (Element) md.getAsTree("javax_imageio_jpeg_image_1.0");
    }

    private static int adobeTransform(Element md) {
        NodeList adobe = md == null ? null : md.getElementsByTagName("app14Adobe");
        if (adobe == null || adobe.getLength() == 0) {
            return -1;
        }
        return Integer.parseInt(((Element) adobe.item(0)).getAttribute("transform"));
    }

    private static String componentIds(Element md) {
        StringBuilder ids = new StringBuilder();
        NodeList specs = md == null ? null : md.getElementsByTagName("componentSpec");
        for (int i = 0; specs != null && i < specs.getLength(); i++) {
            Node n = specs.item(i);
            ids.append((char) Integer.parseInt(((Element) n).getAttribute("componentId")));
        }
        return ids.toString();
    }

    /** PNG (and other javax.imageio formats) by colour model, with PIL's rules for 16 bits and palettes. */
    static Image other(BufferedImage img, Path file, ImageDecoder.SixteenBit sixteenBit) throws IOException {
        ColorModel cm = img.getColorModel();
        Raster r = img.getRaster();
        int w = r.getWidth();
        int h = r.getHeight();
        if (cm instanceof IndexColorModel icm) {
            return planes(3, r, (v, i, o) -> {
                o[0] = icm.getRed(v[i]);
                o[1] = icm.getGreen(v[i]);
                o[2] = icm.getBlue(v[i]);
            });
        }
        if (cm instanceof ComponentColorModel) {
            int colours = cm.getNumColorComponents();
            int bits = cm.getComponentSize(0);
            boolean alpha = cm.hasAlpha();
            int type = cm.getColorSpace().getType();
            if (colours == 1 && (bits == 8 || bits == 16)) {
                // PIL: 16-bit grey opens as mode I and convert() clips it; 16-bit grey+alpha keeps the high byte
                int shift = bits == 16 && alpha ? 8 : 0;
                if (bits == 16 && !alpha && sixteenBit == ImageDecoder.SixteenBit.SCALE) {
                    return planes(1, r, (v, i, o) -> o[0] = (int) ((v[i] * 255L + 32767) / 65535));
                }
                return planes(1, r, (v, i, o) -> o[0] = Math.min(v[i] >> shift, 255));
            }
            if (colours == 3 && type == ColorSpace.TYPE_RGB && (bits == 8 || bits == 16)) {
                int shift = bits - 8;   // PIL reads 16-bit RGB(A) PNGs as RGB;16B: the high byte
                return planes(3, r, (v, i, o) -> {
                    o[0] = v[i] >> shift;
                    o[1] = v[i + 1] >> shift;
                    o[2] = v[i + 2] >> shift;
                });
            }
            throw new IOException(describe(file) + "an unsupported layout: " + colours + " colour component(s) of "
                    + bits + " bits" + (alpha ? " with alpha" : "") + "; re-encode it as 8-bit RGB or grey");
        }
        if (cm.getColorSpace().isCS_sRGB()) {   // packed RGB (e.g. BMP): the colour model unpacks it
            Image out = new Image(3, h, w);
            int[] argb = new int[w];
            for (int y = 0; y < h; y++) {
                img.getRGB(0, y, w, 1, argb, 0, w);
                for (int x = 0; x < w; x++) {
                    out.set(0, y, x, (argb[x] >> 16) & 0xff);
                    out.set(1, y, x, (argb[x] >> 8) & 0xff);
                    out.set(2, y, x, argb[x] & 0xff);
                }
            }
            return out;
        }
        throw new IOException(describe(file) + "an unsupported colour model " + cm.getClass().getSimpleName()
                + "; re-encode it as 8-bit RGB or grey");
    }

    private static String describe(Path file) {
        return file == null ? "" : file + ": ";
    }

    /** One pixel's samples, starting at {@code i} in interleaved {@code v}, to 1 or 3 output channels. */
    private interface PixelRule {
        void apply(int[] v, int i, int[] out);
    }

    /** Applies {@code rule} to every pixel of {@code r}, one row of samples at a time (no full-size copy). */
    private static Image planes(int channels, Raster r, PixelRule rule) {
        int w = r.getWidth();
        int h = r.getHeight();
        int bands = r.getNumBands();
        int plane = h * w;
        float[] d = new float[channels * plane];
        int[] row = new int[w * bands];
        int[] o = new int[3];
        for (int y = 0; y < h; y++) {
            r.getPixels(r.getMinX(), r.getMinY() + y, w, 1, row);
            for (int x = 0; x < w; x++) {
                rule.apply(row, x * bands, o);
                for (int c = 0; c < channels; c++) {
                    d[c * plane + y * w + x] = o[c];
                }
            }
        }
        return new Image(channels, h, w, d);
    }

    /** PIL's L/RGB conversion between 8-bit layouts: grey replicated, RGB to luma. */
    static Image convert(Image img, ImageDecoder.Mode mode) {
        int want = mode == ImageDecoder.Mode.L ? 1 : 3;
        if (img.channels() == want) {
            return img;
        }
        int plane = img.height() * img.width();
        float[] s = img.data();
        float[] d = new float[want * plane];
        for (int p = 0; p < plane; p++) {
            if (want == 3) {
                d[p] = s[p];
                d[plane + p] = s[p];
                d[2 * plane + p] = s[p];
            } else {
                d[p] = PilColour.luma((int) s[p], (int) s[plane + p], (int) s[2 * plane + p]);
            }
        }
        return new Image(want, img.height(), img.width(), d);
    }
}
