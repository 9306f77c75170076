package io.mugs.core;

import io.mugs.data.ImageSource;
import io.mugs.data.MultiCropAugmentation;
import io.mugs.data.MultiCropBatch;
import io.mugs.data.MultiCropLoader;
import io.mugs.engine.Backend;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/** The loop behind {@link MugsTrainer#fit}: resume, data loader, steps, listeners. */
final class FitLoop {

    private static final Logger LOG = LoggerFactory.getLogger(MugsTrainer.class);

    private FitLoop() {
    }

    static MugsTrainer fit(MugsConfig config, ImageSource data, Path outputDir, List<MugsListener> listeners)
            throws IOException {
        Backend.requireSupported();
        Files.createDirectories(outputDir);
        RunFolder.removeStaleTemporaryFiles(outputDir);
        Optional<Checkpoints.Loaded> resume = Checkpoints.newestIntact(outputDir)
                .map(c -> Replicas.withReplicas(c, config.replicas()));
        if (resume.isPresent()) {
            RunFolder.requireResumable(outputDir, resume.get(), config);
        }
        RunFolder.writeConfig(outputDir, config);
        try (MultiCropLoader loader = new MultiCropLoader(data, new MultiCropAugmentation(config.crops()),
                config.batchSize(), config.workers(), 2 * config.workers(), config.seed())) {
            MugsTrainer trainer = new MugsTrainer(config, loader.stepsPerEpoch());
            if (resume.isPresent()) {
                Checkpoints.restore(resume.get(), trainer);
                LOG.info("resumed from {} at iteration {}", resume.get().file(), trainer.iteration());
            }
            LOG.info("{}: {} images, {} steps/epoch, {} epochs, {}", outputDir, loader.source().size(),
                    loader.stepsPerEpoch(),
                    config.epochs(), Backend.describe());
            listeners.forEach(l -> l.onFitStart(trainer));
            boolean stopped = false;
            while (!stopped && trainer.epoch() < config.epochs()) {
                int epoch = trainer.epoch();
                int from = (int) (trainer.iteration() % loader.stepsPerEpoch());
                long mark = System.nanoTime();
                for (MultiCropBatch batch : loader.epoch(epoch, from)) {
                    StepResult r = trainer.step(batch);
                    // Data wait, the step, and the previous step's listeners: everything but epoch-end work.
                    long now = System.nanoTime();
                    trainer.setTrainingSeconds(trainer.trainingSeconds() + (now - mark) / 1e9);
                    mark = now;
                    listeners.forEach(l -> l.onStep(trainer, r));
                    if (trainer.stopRequested()) {
                        stopped = true;
                        LOG.info("stopping early at iteration {} (epoch {}), as requested by a listener",
                                trainer.iteration(), epoch + 1);
                        break;
                    }
                }
                listeners.forEach(l -> l.onEpochEnd(trainer, epoch));
            }
            listeners.forEach(l -> l.onFitEnd(trainer));
            return trainer;
        }
    }
}
