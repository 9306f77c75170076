package io.mugs.plots;

import io.mugs.data.Image;
import java.awt.Color;
import java.awt.Graphics2D;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Path;
import java.util.Arrays;
import javax.imageio.ImageIO;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * Pictures of the last block's self-attention (DINO Fig. 1 style): for each image a row with the image, then per
 * head the CLS-to-patch attention upsampled over the image as a heat map (stretched from its minimum to its
 * maximum), then the thresholded overlay that keeps
 * the patches holding the top {@code massFraction} of the attention mass (DINO uses 0.6), averaged over heads.
 *
 * <pre>{@code
 * INDArray attn = outputs.lastAttention() ... ;                  // [B, H, T, T]
 * AttentionMaps.write(Path.of("attention.png"), images, attn, 7, 0.6, 4);
 * }</pre>
 */
public final class AttentionMaps {

    private AttentionMaps() {
    }

    /**
     * CLS-to-patch attention of image b and head h: [gridH * gridW], normalised to sum 1.
     *
     * @param attention [B, H, T, T] with T = 1 + gridH * gridW
     */
    public static double[] clsAttention(INDArray attention, int b, int h) {
        int t = (int) attention.size(3);
        double[] a = new double[t - 1];
        double sum = 0;
        for (int j = 1; j < t; j++) {
            a[j - 1] = attention.getDouble(b, h, 0, j);
            sum += a[j - 1];
        }
        for (int j = 0; j < a.length; j++) {
            a[j] /= sum;
        }
        return a;
    }

    /** Mask of the patches that together hold the top {@code fraction} of the attention mass (DINO's threshold). */
    public static boolean[] topMass(double[] attention, double fraction) {
        Integer[] order = new Integer[attention.length];
        for (int i = 0; i < order.length; i++) {
            order[i] = i;
        }
        Arrays.sort(order, (x, y) -> Double.compare(attention[y], attention[x]));
        boolean[] keep = new boolean[attention.length];
        double cumulative = 0;
        for (Integer i : order) {
            if (cumulative >= fraction) {
                break;
            }
            keep[i] = true;
            cumulative += attention[i];
        }
        return keep;
    }

    /**
     * Writes the grid PNG: one row per image, columns image | head 1 .. head H | overlay; each cell
     * {@code width * scale} pixels wide.
     *
     * @param images    the images as shown (8-bit), [B] of equal size
     * @param attention [B, H, T, T]
     * @param grid      patches per side of the crop
     */
    public static BufferedImage render(Image[] images, INDArray attention, int grid, double massFraction, int scale) {
        if (attention.rank() != 4 || attention.size(0) != images.length || attention.size(3) != grid * grid + 1) {
            throw new IllegalArgumentException("attention must be [" + images.length + ", H, T, T] with T = "
                    + (grid * grid + 1) + ", got " + Arrays.toString(attention.shape()));
        }
        int heads = (int) attention.size(1);
        int h = images[0].height() * scale;
        int w = images[0].width() * scale;
        BufferedImage out = new BufferedImage((heads + 2) * w, images.length * h, BufferedImage.TYPE_INT_RGB);
        Graphics2D g = out.createGraphics();
        g.setColor(Color.WHITE);
        g.fillRect(0, 0, out.getWidth(), out.getHeight());
        for (int b = 0; b < images.length; b++) {
            Image img = images[b];
            double[] mean = new double[grid * grid];
            for (int y = 0; y < h; y++) {
                for (int x = 0; x < w; x++) {
                    out.setRGB(x, b * h + y, gray(img, y / scale, x / scale));
                }
            }
            for (int head = 0; head < heads; head++) {
                double[] a = clsAttention(attention, b, head);
                double max = Arrays.stream(a).max().orElse(1);
                double min = Arrays.stream(a).min().orElse(0);
                double range = max > min ? max - min : 1;
                for (int j = 0; j < a.length; j++) {
                    mean[j] += a[j] / heads;
                }
                for (int y = 0; y < h; y++) {
                    for (int x = 0; x < w; x++) {
                        int patch = (y * grid / h) * grid + x * grid / w;
                        out.setRGB((head + 1) * w + x, b * h + y, heat((a[patch] - min) / range));
                    }
                }
            }
            boolean[] keep = topMass(mean, massFraction);
            for (int y = 0; y < h; y++) {
                for (int x = 0; x < w; x++) {
                    int patch = (y * grid / h) * grid + x * grid / w;
                    int v = gray(img, y / scale, x / scale) & 0xff;
                    int rgb = keep[patch] ? (Math.min(255, v / 2 + 128) << 16) | (v / 2 << 8) | (v / 2) : (v / 4) * 0x010101;
                    out.setRGB((heads + 1) * w + x, b * h + y, rgb);
                }
            }
        }
        g.dispose();
        return out;
    }

    /** {@link #render} to a PNG file. */
    public static void write(Path file, Image[] images, INDArray attention, int grid, double massFraction, int scale)
            throws IOException {
        ImageIO.write(render(images, attention, grid, massFraction, scale), "png", file.toFile());
    }

    private static int gray(Image img, int y, int x) {
        int v;
        if (img.channels() == 1) {
            v = (int) img.get(0, y, x);
            return v * 0x010101;
        }
        return ((int) img.get(0, y, x) << 16) | ((int) img.get(1, y, x) << 8) | (int) img.get(2, y, x);
    }

    /** A black-red-yellow-white heat colour for t in [0, 1]. */
    static int heat(double t) {
        double c = Math.max(0, Math.min(1, t));
        int r = (int) Math.round(255 * Math.min(1, 3 * c));
        int gr = (int) Math.round(255 * Math.max(0, Math.min(1, 3 * c - 1)));
        int bl = (int) Math.round(255 * Math.max(0, 3 * c - 2));
        return (r << 16) | (gr << 8) | bl;
    }
}
