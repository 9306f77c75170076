package io.mugs.core;

import io.mugs.data.ImageSource;
import io.mugs.data.MultiCropAugmentation;
import io.mugs.data.MultiCropBatch;
import io.mugs.data.MultiCropLoader;
import io.mugs.vit.Backend;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The pretraining loop: data loader, {@link MugsTrainer}, listeners, automatic resume from the newest checkpoint in
 * the output directory. The whole loop fits on a screen.
 *
 * <pre>{@code
 * MugsTrainer t = MugsFit.fit(MugsConfig.fashionMnistTiny(), IdxImageSource.bundledFashionMnist(true),
 *         Path.of("runs/fm"), MugsListeners.defaults(Path.of("runs/fm"), 20, 3, null, null, 1));
 * }</pre>
 */
public final class MugsFit {

    private static final Logger LOG = LoggerFactory.getLogger(MugsFit.class);

    private MugsFit() {
    }

    /** Trains for {@code config.epochs()} epochs (continuing from the newest checkpoint in {@code outputDir}). */
    public static MugsTrainer fit(MugsConfig config, ImageSource data, Path outputDir, List<MugsListener> listeners)
            throws IOException {
        Backend.requireSupported();
        Files.createDirectories(outputDir);
        Files.writeString(outputDir.resolve("config.json"), config.toJson());
        try (MultiCropLoader loader = new MultiCropLoader(data, new MultiCropAugmentation(config.crops()),
                config.batchSize(), config.workers(), 2 * config.workers(), config.seed())) {
            MugsTrainer trainer = new MugsTrainer(config, loader.stepsPerEpoch());
            Optional<Path> latest = Checkpoints.latest(outputDir);
            if (latest.isPresent()) {
                Checkpoints.restore(latest.get(), trainer);
                LOG.info("resumed from {} at iteration {}", latest.get(), trainer.iteration());
            }
            LOG.info("{}: {} images, {} steps/epoch, {} epochs, {}", outputDir, data.size(), loader.stepsPerEpoch(),
                    config.epochs(), Backend.describe());
            listeners.forEach(l -> l.onFitStart(trainer));
            boolean stopped = false;
            while (!stopped && trainer.epoch() < config.epochs()) {
                int epoch = trainer.epoch();
                int from = (int) (trainer.iteration() % loader.stepsPerEpoch());
                long mark = System.nanoTime();
                for (MultiCropBatch batch : loader.epoch(epoch, from)) {
                    StepResult r = trainer.step(batch);
                    // Data wait, the step, and the previous step's listeners and GC: everything but epoch-end work.
                    long now = System.nanoTime();
                    trainer.addTrainingSeconds((now - mark) / 1e9);
                    mark = now;
                    listeners.forEach(l -> l.onStep(trainer, r));
                    // ND4J frees native arrays only when their Java owners are collected: keep RSS flat.
                    System.gc();
                    if (trainer.stopRequested()) {
                        stopped = true;
                        LOG.info("stopping early at iteration {} (epoch {}), as requested by a listener",
                                trainer.iteration(), epoch);
                        break;
                    }
                }
                // After a stop this ends the partial epoch: checkpoint and monitors run, a new fit resumes mid-epoch.
                listeners.forEach(l -> l.onEpochEnd(trainer, epoch));
            }
            listeners.forEach(l -> l.onFitEnd(trainer));
            return trainer;
        }
    }
}
