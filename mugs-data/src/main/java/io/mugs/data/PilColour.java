package io.mugs.data;

/**
 * The integer colour arithmetic of PIL 9.4 ({@code libImaging/Convert.c}) and of libjpeg's colour conversion
 * ({@code jdcolor.c}), so that decoded pixels equal {@code Image.open(f).convert("L" or "RGB")} sample for sample.
 * Every method works on 8-bit samples held in ints.
 */
final class PilColour {

    private static final int SCALEBITS = 16;
    private static final int ONE_HALF = 1 << (SCALEBITS - 1);
    private static final int[] CR_R = new int[256];
    private static final int[] CB_B = new int[256];
    private static final int[] CR_G = new int[256];
    private static final int[] CB_G = new int[256];

    static {
        for (int i = 0; i < 256; i++) {
            int x = i - 128;
            CR_R[i] = (fix(1.40200) * x + ONE_HALF) >> SCALEBITS;
            CB_B[i] = (fix(1.77200) * x + ONE_HALF) >> SCALEBITS;
            CR_G[i] = -fix(0.71414) * x;
            CB_G[i] = -fix(0.34414) * x + ONE_HALF;
        }
    }

    private PilColour() {
    }

    private static int fix(double v) {
        return (int) (v * (1 << SCALEBITS) + 0.5);
    }

    static int clip8(int v) {
        return v < 0 ? 0 : Math.min(v, 255);
    }

    /** PIL's RGB to L: {@code (r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16} (ITU-R 601-2 luma). */
    static int luma(int r, int g, int b) {
        return (r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16;
    }

    /** libjpeg's YCbCr to RGB for one sample: writes R, G, B into {@code out}. */
    static void yccToRgb(int y, int cb, int cr, int[] out) {
        out[0] = clip8(y + CR_R[cr]);
        out[1] = clip8(y + ((CB_G[cb] + CR_G[cr]) >> SCALEBITS));
        out[2] = clip8(y + CB_B[cb]);
    }

    /** PIL's {@code a * b / 255} rounded ({@code MULDIV255}). */
    private static int mulDiv255(int a, int b) {
        int t = a * b + 128;
        return ((t >> 8) + t) >> 8;
    }

    /**
     * PIL's CMYK to RGB ({@code cmyk2rgb}) for one sample given in PIL's CMYK convention (0 = no ink): each channel
     * is {@code (255 - k) - ink * (255 - k) / 255}, no colour profile.
     */
    static void cmykToRgb(int c, int m, int y, int k, int[] out) {
        int nk = 255 - k;
        out[0] = clip8(nk - mulDiv255(c, nk));
        out[1] = clip8(nk - mulDiv255(m, nk));
        out[2] = clip8(nk - mulDiv255(y, nk));
    }

    /**
     * The RGB PIL gives for one 4-component JPEG sample as stored: PIL assumes Adobe's inverted CMYK for every
     * 4-component JPEG; a YCCK file (Adobe transform 2) first goes through libjpeg's YCC to (inverted) CMY.
     */
    static void jpegCmykToRgb(int s0, int s1, int s2, int s3, boolean ycck, int[] out) {
        int c;
        int m;
        int y;
        if (ycck) {
            yccToRgb(s0, s1, s2, out);   // libjpeg stores 255 - R; PIL's inversion gives R back
            c = out[0];
            m = out[1];
            y = out[2];
        } else {
            c = 255 - s0;
            m = 255 - s1;
            y = 255 - s2;
        }
        cmykToRgb(c, m, y, 255 - s3, out);
    }
}
