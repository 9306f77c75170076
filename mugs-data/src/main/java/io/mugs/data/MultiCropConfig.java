package io.mugs.data;

import java.util.Arrays;

/**
 * Settings of Mugs' multi-crop augmentation (reference §7). Build with {@link #builder()}; the defaults are the
 * reference's ImageNet recipe ({@link #imageNet()}); {@link #fashionMnist()} sizes it for 28 px grayscale.
 *
 * @param channels          image channels the pipeline expects (1 or 3)
 * @param globalSize        global crop side (224)
 * @param localSize         local crop side (96)
 * @param localCrops        local crops per image (10; 0 allowed)
 * @param globalScale       RandomResizedCrop area range of global crops ({0.25, 1})
 * @param localScale        area range of local crops ({0.05, 0.25})
 * @param studentStrongProb probability that an image's two student globals are strong (0.5; reference prob = 0.5)
 * @param localStrongProb   probability that a local crop is strong (0.5)
 * @param jitterProb        probability of colour jitter (0.4, 0.4, 0.2, 0.1) in weak views (0.8)
 * @param grayscaleProb     probability of grayscale in weak views (0.2)
 * @param erasingProb       random-erasing probability of strong views (0.25)
 * @param blurSigma         Gaussian-blur standard-deviation range in pixels ({0.1, 2}, tuned for 224 px crops;
 *                          scale it with the crop size)
 * @param mean              per-channel normalisation mean (ImageNet by default)
 * @param std               per-channel normalisation std
 * @param minImageSide      smallest image side accepted (default: the local crop size)
 */
public record MultiCropConfig(int channels, int globalSize, int localSize, int localCrops, double[] globalScale,
                              double[] localScale, double studentStrongProb, double localStrongProb,
                              double jitterProb, double grayscaleProb, double erasingProb, double[] blurSigma,
                              double[] mean, double[] std, int minImageSide) {

    public MultiCropConfig {
        blurSigma = blurSigma == null ? new double[] {0.1, 2.0} : blurSigma;   // configurations saved before it existed
        check(channels == 1 || channels == 3, "channels must be 1 or 3, got " + channels);
        check(globalSize > 0 && localSize > 0, "crop sizes must be positive, got " + globalSize + ", " + localSize);
        check(localCrops >= 0, "localCrops must be >= 0, got " + localCrops);
        check(mean.length == channels && std.length == channels, "mean and std need " + channels
                + " values (one per channel), got " + mean.length + " and " + std.length);
        check(Arrays.stream(std).allMatch(s -> s > 0 && Double.isFinite(s)), "std values must be finite and positive, "
                + "got " + Arrays.toString(std));
        check(Arrays.stream(mean).allMatch(Double::isFinite), "mean values must be finite, got "
                + Arrays.toString(mean));
        for (double[] s : new double[][] {globalScale, localScale}) {
            check(s.length == 2 && s[0] > 0 && s[0] <= s[1] && s[1] <= 1, "crop scales must be {min, max} with "
                    + "0 < min <= max <= 1, got " + Arrays.toString(s));
        }
        for (double p : new double[] {studentStrongProb, localStrongProb, jitterProb, grayscaleProb, erasingProb}) {
            check(p >= 0 && p <= 1, "probabilities must be in [0, 1], got " + p);
        }
        check(blurSigma.length == 2 && blurSigma[0] > 0 && blurSigma[0] <= blurSigma[1]
                && Double.isFinite(blurSigma[1]), "blurSigma must be {min, max} with 0 < min <= max < infinity, got " + Arrays.toString(blurSigma));
        check(minImageSide >= 1, "minImageSide must be >= 1, got " + minImageSide);
    }

    private static void check(boolean ok, String message) {
        if (!ok) {
            throw new IllegalArgumentException("Invalid MultiCropConfig: " + message);
        }
    }

    /** Student views: 2 globals plus the local crops. */
    public int studentViews() {
        return 2 + localCrops;
    }

    /** The reference recipe: RGB, 224 / 96 px, 10 local crops, ImageNet mean and std. */
    public static MultiCropConfig imageNet() {
        return builder().build();
    }

    /**
     * Fashion-MNIST: 1 channel, 28 px globals with area 0.4-1, 4 local crops of 14 px with area 0.1-0.4 (the
     * reference's 0.05-0.25 leaves 6 px fragments of a 28 px garment), blur sigma scaled by 28/224 to 0.0125-0.25 px,
     * the dataset's mean 0.2860 / std 0.3530. Local crops of 14 px suit patch 7 (and 2, 14).
     */
    public static MultiCropConfig fashionMnist() {
        return builder().channels(1).globalSize(28).localSize(14).localCrops(4).globalScale(0.4, 1.0)
                .localScale(0.1, 0.4).blurSigma(0.1 * 28 / 224, 2.0 * 28 / 224).mean(0.2860).std(0.3530).build();
    }

    public static Builder builder() {
        return new Builder();
    }

    /** A builder starting from this configuration. */
    public Builder toBuilder() {
        Builder b = new Builder();
        b.channels = channels; b.globalSize = globalSize; b.localSize = localSize; b.localCrops = localCrops;
        b.globalScale = globalScale.clone(); b.localScale = localScale.clone();
        b.studentStrongProb = studentStrongProb; b.localStrongProb = localStrongProb; b.jitterProb = jitterProb;
        b.grayscaleProb = grayscaleProb; b.erasingProb = erasingProb; b.blurSigma = blurSigma.clone();
        b.mean = mean.clone(); b.std = std.clone();
        b.minImageSide = minImageSide == localSize ? null : minImageSide;   // keep following the local size
        return b;
    }

    /** Builder with the reference defaults. */
    public static final class Builder {
        private int channels = 3;
        private int globalSize = 224;
        private int localSize = 96;
        private int localCrops = 10;
        private double[] globalScale = {0.25, 1.0};
        private double[] localScale = {0.05, 0.25};
        private double studentStrongProb = 0.5;
        private double localStrongProb = 0.5;
        private double jitterProb = 0.8;
        private double grayscaleProb = 0.2;
        private double erasingProb = 0.25;
        private double[] blurSigma = {0.1, 2.0};
        private double[] mean = {0.485, 0.456, 0.406};
        private double[] std = {0.229, 0.224, 0.225};
        private Integer minImageSide;

        public Builder channels(int v) { channels = v; return this; }
        public Builder globalSize(int v) { globalSize = v; return this; }
        public Builder localSize(int v) { localSize = v; return this; }
        public Builder localCrops(int v) { localCrops = v; return this; }
        public Builder globalScale(double min, double max) { globalScale = new double[] {min, max}; return this; }
        public Builder localScale(double min, double max) { localScale = new double[] {min, max}; return this; }
        public Builder studentStrongProb(double v) { studentStrongProb = v; return this; }
        public Builder localStrongProb(double v) { localStrongProb = v; return this; }
        public Builder jitterProb(double v) { jitterProb = v; return this; }
        public Builder grayscaleProb(double v) { grayscaleProb = v; return this; }
        public Builder erasingProb(double v) { erasingProb = v; return this; }
        public Builder blurSigma(double min, double max) { blurSigma = new double[] {min, max}; return this; }
        public Builder mean(double... v) { mean = v.clone(); return this; }
        public Builder std(double... v) { std = v.clone(); return this; }
        public Builder minImageSide(int v) { minImageSide = v; return this; }

        public MultiCropConfig build() {
            return new MultiCropConfig(channels, globalSize, localSize, localCrops, globalScale, localScale,
                    studentStrongProb, localStrongProb, jitterProb, grayscaleProb, erasingProb, blurSigma, mean, std,
                    minImageSide == null ? localSize : minImageSide);
        }
    }
}
