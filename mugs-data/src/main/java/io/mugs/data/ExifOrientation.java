package io.mugs.data;

import com.twelvemonkeys.imageio.metadata.Directory;
import com.twelvemonkeys.imageio.metadata.Entry;
import com.twelvemonkeys.imageio.metadata.jpeg.JPEG;
import com.twelvemonkeys.imageio.metadata.jpeg.JPEGSegment;
import com.twelvemonkeys.imageio.metadata.jpeg.JPEGSegmentUtil;
import com.twelvemonkeys.imageio.metadata.tiff.TIFF;
import com.twelvemonkeys.imageio.metadata.tiff.TIFFReader;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.util.List;
import javax.imageio.stream.ImageInputStream;
import javax.imageio.stream.MemoryCacheImageInputStream;

/**
 * The EXIF orientation tag (274) of a JPEG and the transposition that shows the image upright, as PIL's
 * {@code ImageOps.exif_transpose} does: 2 mirror, 3 rotate 180, 4 flip, 5 transpose, 6 rotate 90 clockwise,
 * 7 transverse, 8 rotate 90 counter-clockwise; 1, a missing tag or any other value leave the image as stored.
 *
 * <pre>{@code
 * Image upright = ExifOrientation.apply(img, ExifOrientation.read(stream));
 * }</pre>
 */
public final class ExifOrientation {

    private ExifOrientation() {
    }

    /** The orientation recorded in the APP1 EXIF segment of the JPEG {@code in} (from its start), or 1. */
    public static int read(ImageInputStream in) throws IOException {
        in.seek(0);
        List<JPEGSegment> exif = JPEGSegmentUtil.readSegments(in, JPEG.APP1, "Exif");
        if (exif.isEmpty()) {
            return 1;
        }
        byte[] tiff = exif.get(0).data().readAllBytes();   // at most 64 KB, the size of a JPEG segment
        int start = tiff.length > 0 && tiff[0] == 0 ? 1 : 0;   // the zero that pads "Exif\0" before the TIFF header
        try (ImageInputStream data = new MemoryCacheImageInputStream(
                new ByteArrayInputStream(tiff, start, tiff.length - start))) {
            Directory dir = new TIFFReader().read(data);
            Entry e = dir.getEntryById(TIFF.TAG_ORIENTATION);
            return e != null && e.getValue() instanceof Number n ? n.intValue() : 1;
        } catch (IOException | RuntimeException e) {
            return 1;   // damaged EXIF: show the pixels as stored, as a viewer would
        }
    }

    /** {@code img} transposed for {@code orientation} (a new image; {@code img} itself for 1 or unknown values). */
    public static Image apply(Image img, int orientation) {
        if (orientation < 2 || orientation > 8) {
            return img;
        }
        int h = img.height();
        int w = img.width();
        boolean swap = orientation >= 5;
        int oh = swap ? w : h;
        int ow = swap ? h : w;
        Image out = new Image(img.channels(), oh, ow);
        for (int c = 0; c < img.channels(); c++) {
            for (int y = 0; y < oh; y++) {
                for (int x = 0; x < ow; x++) {
                    float v = switch (orientation) {
                        case 2 -> img.get(c, y, w - 1 - x);
                        case 3 -> img.get(c, h - 1 - y, w - 1 - x);
                        case 4 -> img.get(c, h - 1 - y, x);
                        case 5 -> img.get(c, x, y);
                        case 6 -> img.get(c, h - 1 - x, y);
                        case 7 -> img.get(c, h - 1 - x, w - 1 - y);
                        default -> img.get(c, x, w - 1 - y);
                    };
                    out.set(c, y, x, v);
                }
            }
        }
        return out;
    }
}
