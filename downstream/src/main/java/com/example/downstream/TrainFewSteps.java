package com.example.downstream;

import io.mugs.core.MugsConfig;
import io.mugs.core.MugsListener;
import io.mugs.core.MugsListeners;
import io.mugs.core.MugsTrainer;
import io.mugs.core.Pretraining;
import io.mugs.core.RunSettings;
import io.mugs.core.StepResult;
import io.mugs.data.IdxImageSource;
import io.mugs.data.MultiCropConfig;
import java.nio.file.Path;
import java.util.List;

/** N steps of a tiny Mugs model on the bundled images, then stop: java ... TrainFewSteps [N] [DIR]. */
public final class TrainFewSteps {

    public static void main(String[] args) throws Exception {
        int steps = args.length > 0 ? Integer.parseInt(args[0]) : 6;
        Path out = Path.of(args.length > 1 ? args[1] : "runs/few-steps");
        MugsConfig fm = MugsConfig.fashionMnistTiny();
        MugsConfig cfg = fm.toBuilder()                                       // a tiny model: a step is 0.1 s
                .vit(fm.vit().toBuilder().embedDim(32).depth(2).numHeads(2).build())
                .crops(MultiCropConfig.builder().channels(1).globalSize(28).localSize(14).localCrops(2)
                        .mean(0.286).std(0.353).build())
                .instanceHidden(32).instanceOut(16).predictorHidden(32).groupHidden(32).groupBottleneck(16)
                .prototypes(64).queueSize(64).memorySize(64).neighbours(4)
                .batchSize(8).epochs(1).warmupEpochs(0).build();
        MugsListener stopAfterN = new MugsListener() {
            @Override
            public void onStep(MugsTrainer trainer, StepResult step) {
                System.out.printf("step %d: loss %.4f %s%n", step.iteration() + 1, step.loss(), step.losses());
                if (trainer.iteration() >= steps) {
                    trainer.requestStop();                                    // fit ends the epoch here and returns
                }
            }
        };
        MugsTrainer trainer = Pretraining.fit(cfg, RunSettings.defaults().withWorkers(1),
                IdxImageSource.bundledFashionMnist(false), out, List.of(MugsListeners.metrics(out.resolve("metrics.jsonl")), stopAfterN));
        if (trainer.iteration() != steps) {
            throw new IllegalStateException("ran " + trainer.iteration() + " steps, not " + steps);
        }
    }
}
