package com.example.downstream;

import io.mugs.core.MugsConfig;
import io.mugs.core.MugsListeners;
import io.mugs.core.MugsTrainer;
import io.mugs.core.Pretraining;
import io.mugs.data.IdxImageSource;
import io.mugs.vit.weights.BackboneFiles;
import java.nio.file.Path;

/** Pretrains on the bundled Fashion-MNIST subset: java ... Pretrain [EPOCHS] [DIR]. */
public final class Pretrain {

    public static void main(String[] args) throws Exception {
        int epochs = args.length > 0 ? Integer.parseInt(args[0]) : 5;
        Path out = Path.of(args.length > 1 ? args[1] : "runs/fm");
        MugsConfig cfg = MugsConfig.fashionMnistTiny().toBuilder().epochs(epochs).build();
        MugsTrainer trainer = Pretraining.fit(cfg, IdxImageSource.bundledFashionMnist(true), out,
                MugsListeners.defaults(out));                                 // progress, metrics.jsonl, checkpoints
        BackboneFiles.save(out.resolve("teacher.safetensors"), trainer.model().teacherBackbone(),
                cfg.inputNormalisation());                                    // the teacher and how to feed it
    }
}
