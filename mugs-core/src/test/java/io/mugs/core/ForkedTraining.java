package io.mugs.core;

import java.nio.file.Path;
import java.util.List;

/**
 * A training process for {@link KillDuringCheckpointTest}: the CI-sized configuration for {@code args[1]} epochs on 24
 * bundled images (3 steps per epoch) in run folder {@code args[0]}, with metrics and a checkpoint every epoch.
 */
public final class ForkedTraining {

    private ForkedTraining() {
    }

    public static void main(String[] args) throws Exception {
        MugsConfig cfg = Tiny.config().toBuilder().epochs(Integer.parseInt(args[1])).build();
        Path dir = Path.of(args[0]);
        MugsTrainer t = Pretraining.fit(cfg, Tiny.images(24), dir,
                List.of(MugsListeners.metrics(dir.resolve("metrics.jsonl")), MugsListeners.checkpoints(dir, 5)));
        System.out.println("finished at iteration " + t.iteration());
    }
}
