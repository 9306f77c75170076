package com.example.downstream;

import io.mugs.data.IdxImageSource;
import io.mugs.data.MultiCropAugmentation;
import io.mugs.data.MultiCropBatch;
import io.mugs.data.MultiCropConfig;
import io.mugs.data.MultiCropLoader;
import java.util.Arrays;

/** The multi-crop views of one epoch of the bundled images, as the trainer receives them. */
public final class MultiCropBatches {

    public static void main(String[] args) throws Exception {
        MultiCropConfig cfg = MultiCropConfig.fashionMnist();        // 2+2 globals of 28 px, 4 locals of 14 px
        try (MultiCropLoader loader = new MultiCropLoader(IdxImageSource.bundledFashionMnist(true),
                new MultiCropAugmentation(cfg), 64, 2, 4, 42)) {    // batch, workers, prefetch, seed
            for (MultiCropBatch b : loader.epoch(0)) {
                b.teacherGlobals();   // [2B, 1, 28, 28]  teacher views 0 then 1
                b.locals();           // [4B, 1, 14, 14]  local views, view-major
                b.weakFlags();        // [B] student globals weak?
                System.out.println(Arrays.toString(b.locals().shape()));
                break;                // one batch is enough to look at
            }
        }
    }
}
