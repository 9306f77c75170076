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
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * Pretrains a tiny Mugs model for a few steps through {@code Pretraining.fit} on the images bundled with mugs-data,
 * using nothing but the library's public API, and checks the outcome: the number of steps, finite losses and one
 * metrics line per step. Exit code 0 when all hold, 1 with a one-line reason otherwise.
 *
 * <pre>{@code
 * java -cp target/classes:$(cat target/classpath.txt) com.example.downstream.TrainFewSteps target/run 6
 * }</pre>
 */
public final class TrainFewSteps {

    private TrainFewSteps() {
    }

    public static void main(String[] args) throws Exception {
        Path out = Path.of(args.length > 0 ? args[0] : "target/run");
        int steps = args.length > 1 ? Integer.parseInt(args[1]) : 6;
        MugsConfig fm = MugsConfig.fashionMnistTiny();
        MugsConfig cfg = fm.toBuilder()
                .vit(fm.vit().toBuilder().embedDim(32).depth(2).numHeads(2).build())
                .crops(MultiCropConfig.builder().channels(1).globalSize(28).localSize(14).localCrops(2).mean(0.286)
                        .std(0.353).build())
                .instanceHidden(32).instanceOut(16).predictorHidden(32).groupHidden(32).groupBottleneck(16)
                .prototypes(64).queueSize(64).memorySize(64).neighbours(4)
                .batchSize(8).epochs(1).warmupEpochs(0).build();

        List<Double> losses = new ArrayList<>();
        MugsListener stopAfter = new MugsListener() {
            @Override
            public void onStep(MugsTrainer trainer, StepResult result) {
                for (Map.Entry<String, Double> loss : result.losses().entrySet()) {
                    if (!Double.isFinite(loss.getValue())) {
                        fail("step " + result.iteration() + ": " + loss.getKey() + " = " + loss.getValue());
                    }
                }
                losses.add(result.loss());
                if (trainer.iteration() >= steps) {
                    trainer.requestStop();
                }
            }
        };
        Path metrics = out.resolve("metrics.jsonl");
        MugsTrainer trainer = Pretraining.fit(cfg, new RunSettings(1, 1), IdxImageSource.bundledFashionMnist(false), out,
                List.of(MugsListeners.metrics(metrics), stopAfter));

        if (trainer.iteration() != steps || losses.size() != steps) {
            fail("expected " + steps + " steps, the trainer ran " + trainer.iteration() + " (" + losses.size()
                    + " step results)");
        }
        long lines = Files.readAllLines(metrics).stream().filter(l -> !l.isBlank()).count();
        if (lines != steps) {
            fail(metrics + " has " + lines + " lines, expected one per step (" + steps + ")");
        }
        System.out.printf("downstream check passed: %d steps through Pretraining.fit, loss %.4f -> %.4f%n", steps,
                losses.get(0), losses.get(losses.size() - 1));
    }

    private static void fail(String reason) {
        System.err.println("downstream check FAILED: " + reason);
        System.exit(1);
    }
}
