package io.mugs.data.aug;

import io.mugs.data.Image;
import java.util.List;
import java.util.SplittableRandom;

/**
 * timm's RandAugment {@code rand-m9-mstd0.5-inc1} as Mugs uses it (reference §7.3): two of the 15 "increasing"
 * ops, chosen uniformly without replacement; each fires with probability 0.5 with a magnitude ~ N(9, 0.5)
 * clipped to [0, 10]; signed ops take a random sign; affine ops resample bilinear or bicubic at random and fill
 * with (124, 116, 104) (the rounded mean, 115, on grayscale images).
 *
 * <p>Magnitudes (m in [0, 10]): rotate 30 m/10 degrees; shear 0.3 m/10; translate 0.45 m/10 of the size;
 * colour/contrast/brightness/sharpness factor 1 +- 0.9 m/10; posterize 4 - int(4 m/10) bits; solarize threshold
 * 256 - int(256 m/10); solarize-add int(110 m/10).
 */
public final class RandAugment {

    /** The 15 ops of timm's {@code _RAND_INCREASING_TRANSFORMS}. */
    public enum Op {
        AUTO_CONTRAST, EQUALIZE, INVERT, ROTATE, POSTERIZE_INCREASING, SOLARIZE_INCREASING, SOLARIZE_ADD,
        COLOR_INCREASING, CONTRAST_INCREASING, BRIGHTNESS_INCREASING, SHARPNESS_INCREASING, SHEAR_X, SHEAR_Y,
        TRANSLATE_X_REL, TRANSLATE_Y_REL
    }

    private static final float[] FILL_RGB = {124, 116, 104};
    private static final float[] FILL_GRAY = {115};

    private final int numOps;
    private final double magnitude;
    private final double magnitudeStd;
    private final double probability;

    /** {@code rand-m9-mstd0.5-inc1}: 2 ops, magnitude 9, std 0.5, probability 0.5. */
    public static RandAugment mugsDefault() {
        return new RandAugment(2, 9, 0.5, 0.5);
    }

    public RandAugment(int numOps, double magnitude, double magnitudeStd, double probability) {
        if (numOps < 0 || numOps > Op.values().length) {
            throw new IllegalArgumentException("numOps must be in [0, 15], got " + numOps);
        }
        this.numOps = numOps;
        this.magnitude = magnitude;
        this.magnitudeStd = magnitudeStd;
        this.probability = probability;
    }

    public Image apply(Image img, SplittableRandom rng) {
        Op[] ops = Op.values().clone();
        Image out = img;
        for (int i = 0; i < numOps; i++) {
            int j = i + rng.nextInt(ops.length - i);      // partial Fisher-Yates: without replacement
            Op t = ops[i];
            ops[i] = ops[j];
            ops[j] = t;
            if (rng.nextDouble() > probability) {
                continue;
            }
            double m = magnitude;
            if (magnitudeStd > 0) {
                m = m + magnitudeStd * rng.nextGaussian();
            }
            m = Math.min(10, Math.max(0, m));
            out = apply(ops[i], out, m, rng);
        }
        return out;
    }

    /** Applies one op at magnitude {@code m} in [0, 10] (the sign and the resampling filter drawn from rng). */
    public static Image apply(Op op, Image img, double m, SplittableRandom rng) {
        double level = m / 10.0;
        float[] fill = img.channels() == 1 ? FILL_GRAY : FILL_RGB;
        return switch (op) {
            case AUTO_CONTRAST -> ColorOps.autoContrast(img);
            case EQUALIZE -> ColorOps.equalize(img);
            case INVERT -> ColorOps.invert(img);
            case ROTATE -> GeometryOps.rotate(img, signed(30 * level, rng), filter(rng), fill);
            case POSTERIZE_INCREASING -> {
                int bits = 4 - (int) (level * 4);
                yield bits >= 8 ? img : ColorOps.posterize(img, bits);
            }
            case SOLARIZE_INCREASING -> ColorOps.solarize(img, 256 - (int) (level * 256));
            case SOLARIZE_ADD -> ColorOps.solarizeAdd(img, (int) (level * 110), 128);
            case COLOR_INCREASING -> ColorOps.saturation(img, 1 + signed(0.9 * level, rng));
            case CONTRAST_INCREASING -> ColorOps.contrast(img, 1 + signed(0.9 * level, rng));
            case BRIGHTNESS_INCREASING -> ColorOps.brightness(img, 1 + signed(0.9 * level, rng));
            case SHARPNESS_INCREASING -> ColorOps.sharpness(img, 1 + signed(0.9 * level, rng));
            case SHEAR_X -> GeometryOps.affine(img, new double[] {1, signed(0.3 * level, rng), 0, 0, 1, 0},
                    filter(rng), fill);
            case SHEAR_Y -> GeometryOps.affine(img, new double[] {1, 0, 0, signed(0.3 * level, rng), 1, 0},
                    filter(rng), fill);
            case TRANSLATE_X_REL -> GeometryOps.affine(img,
                    new double[] {1, 0, signed(0.45 * level, rng) * img.width(), 0, 1, 0}, filter(rng), fill);
            case TRANSLATE_Y_REL -> GeometryOps.affine(img,
                    new double[] {1, 0, 0, 0, 1, signed(0.45 * level, rng) * img.height()}, filter(rng), fill);
        };
    }

    private static double signed(double v, SplittableRandom rng) {
        return rng.nextBoolean() ? -v : v;
    }

    private static GeometryOps.Filter filter(SplittableRandom rng) {
        return rng.nextBoolean() ? GeometryOps.Filter.BILINEAR : GeometryOps.Filter.BICUBIC;
    }

    /** The op list, in timm's order. */
    public static List<Op> ops() {
        return List.of(Op.values());
    }
}
