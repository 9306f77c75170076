package io.mugs.data;

import io.mugs.data.aug.ColorJitter;
import io.mugs.data.aug.ColorOps;
import io.mugs.data.aug.GaussianBlur;
import io.mugs.data.aug.GeometryOps;
import io.mugs.data.aug.RandAugment;
import io.mugs.data.aug.RandomErasing;
import io.mugs.data.aug.RandomResizedCrop;
import java.util.SplittableRandom;

/**
 * Mugs' per-image multi-crop augmentation (reference §2.1 and §7).
 * <ul>
 *   <li>teacher view 0: weak, Gaussian blur p 1.0; teacher view 1: weak, blur p 0.1, solarise p 0.2;</li>
 *   <li>student globals: one coin per image; with {@code studentStrongProb} two independent strong views,
 *       otherwise the two weak recipes above (new crops) and the image's weak flag set;</li>
 *   <li>local crops: a coin per crop, strong with {@code localStrongProb}, otherwise weak with blur p 0.5.</li>
 * </ul>
 * Weak = RandomResizedCrop (bicubic) -> flip -> colour jitter (p 0.8) -> grayscale (p 0.2) -> blur -> solarise.
 * Strong = flip -> RandAugment rand-m9-mstd0.5-inc1 on the whole image -> RandomResizedCrop -> to [0, 1] ->
 * random erasing (p 0.25) -> normalise. Every view ends normalised with the configured mean and std.
 *
 * <pre>{@code
 * MultiCropAugmentation aug = new MultiCropAugmentation(MultiCropConfig.fashionMnist());
 * MultiCropSample views = aug.apply(image, new SplittableRandom(seed));
 * }</pre>
 */
public final class MultiCropAugmentation {

    private static final ColorJitter JITTER = new ColorJitter(0.4, 0.4, 0.2, 0.1);

    private final MultiCropConfig config;
    private final RandomResizedCrop globalCrop;
    private final RandomResizedCrop localCrop;
    private final RandAugment randAugment = RandAugment.mugsDefault();
    private final RandomErasing erasing;

    public MultiCropAugmentation(MultiCropConfig config) {
        this.config = config;
        this.globalCrop = new RandomResizedCrop(config.globalSize(), config.globalScale()[0], config.globalScale()[1]);
        this.localCrop = new RandomResizedCrop(config.localSize(), config.localScale()[0], config.localScale()[1]);
        this.erasing = new RandomErasing(config.erasingProb());
    }

    public MultiCropConfig config() {
        return config;
    }

    /** All views of one image. */
    public MultiCropSample apply(Image img, SplittableRandom rng) {
        if (img.channels() != config.channels()) {
            throw new IllegalArgumentException("image has " + img.channels() + " channel(s) but the augmentation is "
                    + "configured for " + config.channels() + ": set MultiCropConfig.channels accordingly");
        }
        float[][] teacher = {weak(img, globalCrop, 1.0, 0.0, rng), weak(img, globalCrop, 0.1, 0.2, rng)};
        boolean weakFlag = !(rng.nextDouble() < config.studentStrongProb());
        float[][] student = weakFlag
                ? new float[][] {weak(img, globalCrop, 1.0, 0.0, rng), weak(img, globalCrop, 0.1, 0.2, rng)}
                : new float[][] {strong(img, globalCrop, rng), strong(img, globalCrop, rng)};
        float[][] locals = new float[config.localCrops()][];
        for (int i = 0; i < locals.length; i++) {
            locals[i] = rng.nextDouble() < config.localStrongProb() ? strong(img, localCrop, rng)
                    : weak(img, localCrop, 0.5, 0.0, rng);
        }
        return new MultiCropSample(teacher, student, locals, weakFlag);
    }

    private float[] weak(Image img, RandomResizedCrop crop, double blurProb, double solarizeProb,
                         SplittableRandom rng) {
        Image v = crop.apply(img, rng);
        if (rng.nextDouble() < 0.5) {
            v = GeometryOps.flipHorizontal(v);
        }
        if (rng.nextDouble() < config.jitterProb()) {
            v = JITTER.apply(v, rng);
        }
        if (rng.nextDouble() < config.grayscaleProb()) {
            v = ColorOps.toGray(v);
        }
        if (rng.nextDouble() < blurProb) {
            double[] sigma = config.blurSigma();
            v = GaussianBlur.apply(v, sigma[0] + (sigma[1] - sigma[0]) * rng.nextDouble());
        }
        if (rng.nextDouble() < solarizeProb) {
            v = ColorOps.solarize(v, 128);
        }
        return normalise(toUnit(v));
    }

    private float[] strong(Image img, RandomResizedCrop crop, SplittableRandom rng) {
        Image v = img;
        if (rng.nextDouble() < 0.5) {
            v = GeometryOps.flipHorizontal(v);
        }
        v = randAugment.apply(v, rng);
        v = crop.apply(v, rng);
        float[] t = toUnit(v);
        erasing.apply(t, v.channels(), v.height(), v.width(), rng);
        return normalise(t);
    }

    private static float[] toUnit(Image v) {
        float[] d = v.data();
        float[] t = new float[d.length];
        for (int i = 0; i < d.length; i++) {
            t[i] = d[i] / 255f;
        }
        return t;
    }

    private float[] normalise(float[] t) {
        int plane = t.length / config.channels();
        for (int c = 0; c < config.channels(); c++) {
            float m = (float) config.mean()[c];
            float s = (float) config.std()[c];
            for (int i = c * plane; i < (c + 1) * plane; i++) {
                t[i] = (t[i] - m) / s;
            }
        }
        return t;
    }
}
