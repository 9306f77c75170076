package io.mugs.core;

import io.mugs.data.IdxImageSource;
import io.mugs.data.MultiCropAugmentation;
import io.mugs.data.MultiCropConfig;
import io.mugs.data.MultiCropLoader;

/** A CI-sized configuration (dim 32, depth 2, batch 8) and loader on the bundled test images. */
final class Tiny {

    private Tiny() {
    }

    static MugsConfig config() {
        MugsConfig fm = MugsConfig.fashionMnistTiny();
        return fm.toBuilder()
                .vit(fm.vit().toBuilder().embedDim(32).depth(2).numHeads(2).patchSize(7).dropPathRate(0.1).build())
                .crops(MultiCropConfig.builder().channels(1).globalSize(28).localSize(14).localCrops(2).mean(0.286)
                        .std(0.353).build())
                .instanceHidden(32).instanceOut(16).predictorHidden(32).groupHidden(32).groupBottleneck(16)
                .prototypes(64).queueSize(64).memorySize(64).neighbours(4).batchSize(8).epochs(2).warmupEpochs(0)
                .build();
    }

    /** The first {@code n} bundled test images. */
    static io.mugs.data.ImageSource images(int n) {
        io.mugs.data.ImageSource all = IdxImageSource.bundledFashionMnist(false);
        return new io.mugs.data.ImageSource() {
            public int size() { return n; }
            public io.mugs.data.Image load(int i) throws java.io.IOException { return all.load(i); }
            public int label(int i) { return all.label(i); }
            public java.util.List<String> classNames() { return all.classNames(); }
            public String describe(int i) { return all.describe(i); }
        };
    }

    static MultiCropLoader loader(MugsConfig cfg) {
        return new MultiCropLoader(IdxImageSource.bundledFashionMnist(false), new MultiCropAugmentation(cfg.crops()),
                cfg.batchSize(), 1, 1, cfg.seed());
    }
}
