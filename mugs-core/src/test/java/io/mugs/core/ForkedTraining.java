package io.mugs.core;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * A training process for the forked-JVM tests ({@link KillDuringCheckpointTest}, {@link StopSignalsTest}): the
 * CI-sized configuration for {@code args[1]} epochs on 24 bundled images (3 steps per epoch) in run folder
 * {@code args[0]}, with metrics and a checkpoint every epoch. Optional: {@code args[2]} a periodic checkpoint interval
 * in minutes, {@code args[3]} milliseconds to wait after each step (so a signal lands mid-epoch). Prints {@code step N}
 * after each step; on SIGINT/SIGTERM it exits with the code of {@link TrainingInterruptedException}.
 */
public final class ForkedTraining {

    private ForkedTraining() {
    }

    public static void main(String[] args) throws Exception {
        MugsConfig cfg = Tiny.config().toBuilder().epochs(Integer.parseInt(args[1])).build();
        Path dir = Path.of(args[0]);
        List<MugsListener> listeners = new ArrayList<>(List.of(MugsListeners.metrics(dir.resolve("metrics.jsonl")),
                MugsListeners.checkpoints(dir, 5)));
        if (args.length > 2 && !args[2].equals("-")) {
            listeners.add(MugsListeners.periodicCheckpoints(dir, Double.parseDouble(args[2])));
        }
        long pause = args.length > 3 ? Long.parseLong(args[3]) : 0;
        listeners.add(new MugsListener() {
            @Override
            public void onStep(MugsTrainer t, StepResult r) {
                System.out.println("step " + r.iteration());
                System.out.flush();
                if (pause > 0) {
                    try {
                        Thread.sleep(pause);
                    } catch (InterruptedException e) {
                        Thread.currentThread().interrupt();
                    }
                }
            }
        });
        try {
            MugsTrainer t = Pretraining.fit(cfg, Tiny.images(24), dir, listeners);
            System.out.println("finished at iteration " + t.iteration());
        } catch (TrainingInterruptedException e) {
            System.out.println("interrupted: " + e.getMessage());
            System.out.flush();
            System.exit(e.exitCode());
        }
    }
}
