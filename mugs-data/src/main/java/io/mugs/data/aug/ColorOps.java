package io.mugs.data.aug;

import io.mugs.data.Image;

/**
 * PIL's 8-bit colour and intensity operations ({@code ImageOps}, {@code ImageEnhance}, colour conversions), each
 * returning a new image. On 1-channel (grayscale) images the colour-only operations ({@link #saturation},
 * {@link #hue}, {@link #toGray}) are the identity, and the others act on the intensity.
 */
public final class ColorOps {

    private ColorOps() {
    }

    /** PIL's "L" conversion, {@code (19595 R + 38470 G + 7471 B + 2^15) >> 16} (ITU-R 601-2 luma), [H*W]. */
    static float[] luma(Image img) {
        int plane = img.height() * img.width();
        float[] d = img.data();
        float[] l = new float[plane];
        if (img.channels() == 1) {
            System.arraycopy(d, 0, l, 0, plane);
            return l;
        }
        for (int i = 0; i < plane; i++) {
            int r = (int) d[i];
            int g = (int) d[plane + i];
            int b = (int) d[2 * plane + i];
            l[i] = (r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16;
        }
        return l;
    }

    /** Grayscale with the channel count kept (torchvision {@code RandomGrayscale}: L replicated to RGB). */
    public static Image toGray(Image img) {
        if (img.channels() == 1) {
            return img.copy();
        }
        float[] l = luma(img);
        Image out = new Image(img.channels(), img.height(), img.width());
        for (int c = 0; c < img.channels(); c++) {
            System.arraycopy(l, 0, out.data(), c * l.length, l.length);
        }
        return out;
    }

    /** {@code Image.blend(degenerate, img, factor)}: degenerate + factor (img - degenerate), rounded to 8 bits. */
    static Image blend(Image degenerate, Image img, double factor) {
        float[] a = degenerate.data();
        float[] b = img.data();
        float[] out = new float[b.length];
        for (int i = 0; i < b.length; i++) {
            out[i] = Image.clamp8(a[i] + factor * (b[i] - a[i]));
        }
        return new Image(img.channels(), img.height(), img.width(), out);
    }

    /** {@code ImageEnhance.Brightness}: blend with black. */
    public static Image brightness(Image img, double factor) {
        return blend(new Image(img.channels(), img.height(), img.width()), img, factor);
    }

    /** {@code ImageEnhance.Contrast}: blend with the rounded mean luma. */
    public static Image contrast(Image img, double factor) {
        float[] l = luma(img);
        double sum = 0;
        for (float v : l) {
            sum += v;
        }
        float mean = (float) Math.floor(sum / l.length + 0.5);
        Image degenerate = new Image(img.channels(), img.height(), img.width());
        java.util.Arrays.fill(degenerate.data(), mean);
        return blend(degenerate, img, factor);
    }

    /** {@code ImageEnhance.Color} (saturation): blend with the grayscale image. Identity on 1 channel. */
    public static Image saturation(Image img, double factor) {
        return img.channels() == 1 ? img.copy() : blend(toGray(img), img, factor);
    }

    /** {@code ImageEnhance.Sharpness}: blend with the SMOOTH-filtered image (3x3 kernel 1..5..1 / 13, borders kept). */
    public static Image sharpness(Image img, double factor) {
        Image smooth = img.copy();
        int h = img.height();
        int w = img.width();
        float[] s = img.data();
        float[] d = smooth.data();
        for (int c = 0; c < img.channels(); c++) {
            int base = c * h * w;
            for (int y = 1; y < h - 1; y++) {
                for (int x = 1; x < w - 1; x++) {
                    double sum = 0;
                    for (int dy = -1; dy <= 1; dy++) {
                        for (int dx = -1; dx <= 1; dx++) {
                            sum += s[base + (y + dy) * w + x + dx] * (dx == 0 && dy == 0 ? 5 : 1);
                        }
                    }
                    d[base + y * w + x] = Image.clamp8(sum / 13);
                }
            }
        }
        return blend(smooth, img, factor);
    }

    /**
     * torchvision {@code adjust_hue} on PIL images: to 8-bit HSV, H shifted by {@code round(factor * 255)} modulo
     * 256, back to RGB. {@code factor} in [-0.5, 0.5]. Identity on 1 channel.
     */
    public static Image hue(Image img, double factor) {
        if (img.channels() == 1) {
            return img.copy();
        }
        int plane = img.height() * img.width();
        float[] d = img.data();
        Image out = new Image(3, img.height(), img.width());
        float[] o = out.data();
        int shift = (int) Math.round(factor * 255);
        for (int i = 0; i < plane; i++) {
            int[] hsv = rgbToHsv((int) d[i], (int) d[plane + i], (int) d[2 * plane + i]);
            int[] rgb = hsvToRgb((hsv[0] + shift) & 0xff, hsv[1], hsv[2]);
            o[i] = rgb[0];
            o[plane + i] = rgb[1];
            o[2 * plane + i] = rgb[2];
        }
        return out;
    }

    /** PIL's {@code rgb2hsv} (8-bit H, S, V). */
    static int[] rgbToHsv(int r, int g, int b) {
        int max = Math.max(r, Math.max(g, b));
        int min = Math.min(r, Math.min(g, b));
        if (max == min) {
            return new int[] {0, 0, max};
        }
        double cr = max - min;
        double s = cr / max;
        double rc = (max - r) / cr;
        double gc = (max - g) / cr;
        double bc = (max - b) / cr;
        double h;
        if (r == max) {
            h = bc - gc;
        } else if (g == max) {
            h = 2.0 + rc - bc;
        } else {
            h = 4.0 + gc - rc;
        }
        h = (h / 6.0) % 1.0;
        if (h < 0) {
            h += 1.0;
        }
        return new int[] {clampInt((int) (h * 255.0)), clampInt((int) (s * 255.0)), max};
    }

    /** PIL's {@code hsv2rgb}. */
    static int[] hsvToRgb(int hIn, int sIn, int v) {
        if (sIn == 0) {
            return new int[] {v, v, v};
        }
        double h = hIn / 255.0;
        double s = sIn / 255.0;
        int i = (int) Math.floor(h * 6.0);
        double f = h * 6.0 - i;
        int p = clampInt((int) Math.round(v * (1.0 - s)));
        int q = clampInt((int) Math.round(v * (1.0 - s * f)));
        int t = clampInt((int) Math.round(v * (1.0 - s * (1.0 - f))));
        return switch (i % 6) {
            case 0 -> new int[] {v, t, p};
            case 1 -> new int[] {q, v, p};
            case 2 -> new int[] {p, v, t};
            case 3 -> new int[] {p, q, v};
            case 4 -> new int[] {t, p, v};
            default -> new int[] {v, p, q};
        };
    }

    private static int clampInt(int v) {
        return v < 0 ? 0 : Math.min(v, 255);
    }

    /** Applies an 8-bit lookup table per channel. */
    static Image lut(Image img, int[][] tables) {
        int plane = img.height() * img.width();
        float[] d = img.data();
        float[] out = new float[d.length];
        for (int c = 0; c < img.channels(); c++) {
            int[] t = tables[c];
            for (int i = 0; i < plane; i++) {
                out[c * plane + i] = t[(int) d[c * plane + i]];
            }
        }
        return new Image(img.channels(), img.height(), img.width(), out);
    }

    private static int[][] sameTable(Image img, java.util.function.IntUnaryOperator f) {
        int[] t = new int[256];
        for (int i = 0; i < 256; i++) {
            t[i] = f.applyAsInt(i);
        }
        int[][] all = new int[img.channels()][];
        java.util.Arrays.fill(all, t);
        return all;
    }

    /** {@code ImageOps.solarize}: values >= threshold are inverted. */
    public static Image solarize(Image img, int threshold) {
        return lut(img, sameTable(img, i -> i < threshold ? i : 255 - i));
    }

    /** timm {@code solarize_add}: values below threshold get {@code add} (clipped at 255). */
    public static Image solarizeAdd(Image img, int add, int threshold) {
        return lut(img, sameTable(img, i -> i < threshold ? Math.min(255, i + add) : i));
    }

    /** {@code ImageOps.posterize}: keep the top {@code bits} bits. */
    public static Image posterize(Image img, int bits) {
        int mask = ~((1 << (8 - bits)) - 1) & 0xff;
        return lut(img, sameTable(img, i -> i & mask));
    }

    /** {@code ImageOps.invert}. */
    public static Image invert(Image img) {
        return lut(img, sameTable(img, i -> 255 - i));
    }

    private static int[] histogram(Image img, int c) {
        int plane = img.height() * img.width();
        int[] h = new int[256];
        for (int i = 0; i < plane; i++) {
            h[(int) img.data()[c * plane + i]]++;
        }
        return h;
    }

    /** {@code ImageOps.autocontrast(cutoff=0)}: each channel's [min, max] stretched to [0, 255]. */
    public static Image autoContrast(Image img) {
        int[][] tables = new int[img.channels()][256];
        for (int c = 0; c < img.channels(); c++) {
            int[] h = histogram(img, c);
            int lo = 0;
            while (lo < 256 && h[lo] == 0) {
                lo++;
            }
            int hi = 255;
            while (hi >= 0 && h[hi] == 0) {
                hi--;
            }
            for (int i = 0; i < 256; i++) {
                if (hi <= lo) {
                    tables[c][i] = i;
                } else {
                    double scale = 255.0 / (hi - lo);
                    int v = (int) (i * scale - lo * scale);
                    tables[c][i] = clampInt(v);
                }
            }
        }
        return lut(img, tables);
    }

    /** {@code ImageOps.equalize}: per-channel histogram equalisation with PIL's step rule. */
    public static Image equalize(Image img) {
        int[][] tables = new int[img.channels()][256];
        for (int c = 0; c < img.channels(); c++) {
            int[] h = histogram(img, c);
            int nonZero = 0;
            int last = 0;
            int total = 0;
            for (int v : h) {
                if (v > 0) {
                    nonZero++;
                    last = v;
                    total += v;
                }
            }
            int step = nonZero <= 1 ? 0 : (total - last) / 255;
            int n = step / 2;
            for (int i = 0; i < 256; i++) {
                if (step == 0) {
                    tables[c][i] = i;
                } else {
                    tables[c][i] = Math.min(255, n / step);
                    n += h[i];
                }
            }
        }
        return lut(img, tables);
    }
}
