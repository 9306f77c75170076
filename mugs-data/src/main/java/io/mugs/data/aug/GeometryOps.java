package io.mugs.data.aug;

import io.mugs.data.Image;

/** Flips and PIL-style affine warps ({@code Image.transform(AFFINE)}, {@code Image.rotate}) with a fill colour. */
public final class GeometryOps {

    /** Resampling filters of an affine warp. */
    public enum Filter { BILINEAR, BICUBIC }

    private GeometryOps() {
    }

    /** Mirror left-right. */
    public static Image flipHorizontal(Image img) {
        int h = img.height();
        int w = img.width();
        Image out = new Image(img.channels(), h, w);
        float[] s = img.data();
        float[] d = out.data();
        for (int c = 0; c < img.channels(); c++) {
            for (int y = 0; y < h; y++) {
                int row = (c * h + y) * w;
                for (int x = 0; x < w; x++) {
                    d[row + x] = s[row + w - 1 - x];
                }
            }
        }
        return out;
    }

    /**
     * PIL's {@code transform(size, AFFINE, (a, b, c, d, e, f))}: output pixel (x, y) samples the input at
     * {@code (a x' + b y' + c, d x' + e y' + f)} with {@code x' = x + 0.5}, {@code y' = y + 0.5}; samples outside the
     * image take {@code fill} (one value per channel).
     */
    public static Image affine(Image img, double[] m, Filter filter, float[] fill) {
        int h = img.height();
        int w = img.width();
        int ch = img.channels();
        Image out = new Image(ch, h, w);
        float[] s = img.data();
        float[] d = out.data();
        for (int y = 0; y < h; y++) {
            for (int x = 0; x < w; x++) {
                double xin = m[0] * (x + 0.5) + m[1] * (y + 0.5) + m[2];
                double yin = m[3] * (x + 0.5) + m[4] * (y + 0.5) + m[5];
                boolean inside = xin >= 0 && yin >= 0 && xin < w && yin < h;
                for (int c = 0; c < ch; c++) {
                    float v;
                    if (!inside) {
                        v = fill[c];
                    } else if (filter == Filter.BILINEAR) {
                        v = Image.clamp8(bilinear(s, c, h, w, xin - 0.5, yin - 0.5));
                    } else {
                        v = Image.clamp8(bicubic(s, c, h, w, xin - 0.5, yin - 0.5));
                    }
                    d[(c * h + y) * w + x] = v;
                }
            }
        }
        return out;
    }

    /** PIL's {@code rotate(degrees, resample, expand=False, fillcolor)}: counter-clockwise about the centre. */
    public static Image rotate(Image img, double degrees, Filter filter, float[] fill) {
        double angle = -Math.toRadians(degrees % 360.0);
        double cos = Math.cos(angle);
        double sin = Math.sin(angle);
        double cx = img.width() / 2.0;
        double cy = img.height() / 2.0;
        double[] m = {cos, sin, 0, -sin, cos, 0};
        m[2] = m[0] * -cx + m[1] * -cy + cx;
        m[5] = m[3] * -cx + m[4] * -cy + cy;
        return affine(img, m, filter, fill);
    }

    private static float sample(float[] s, int c, int h, int w, int x, int y) {
        x = Math.min(Math.max(x, 0), w - 1);
        y = Math.min(Math.max(y, 0), h - 1);
        return s[(c * h + y) * w + x];
    }

    private static double bilinear(float[] s, int c, int h, int w, double x, double y) {
        int x0 = (int) Math.floor(x);
        int y0 = (int) Math.floor(y);
        double fx = x - x0;
        double fy = y - y0;
        double top = sample(s, c, h, w, x0, y0) * (1 - fx) + sample(s, c, h, w, x0 + 1, y0) * fx;
        double bottom = sample(s, c, h, w, x0, y0 + 1) * (1 - fx) + sample(s, c, h, w, x0 + 1, y0 + 1) * fx;
        return top * (1 - fy) + bottom * fy;
    }

    private static double bicubic(float[] s, int c, int h, int w, double x, double y) {
        int x0 = (int) Math.floor(x);
        int y0 = (int) Math.floor(y);
        double fx = x - x0;
        double fy = y - y0;
        double sum = 0;
        for (int j = -1; j <= 2; j++) {
            double wy = Resize.cubic(j - fy);
            double row = 0;
            for (int i = -1; i <= 2; i++) {
                row += Resize.cubic(i - fx) * sample(s, c, h, w, x0 + i, y0 + j);
            }
            sum += wy * row;
        }
        return sum;
    }
}
