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

/**
 * Pretraining from the first step or the newest checkpoint to the last epoch: the loop over a {@link MugsTrainer}
 * (resume, data loader, steps, listeners), which fits on a screen.
 *
 * <pre>{@code
 * MugsTrainer t = Pretraining.fit(MugsConfig.fashionMnistTiny(), IdxImageSource.bundledFashionMnist(true),
 *         Path.of("runs/fm"), MugsListeners.defaults(Path.of("runs/fm")));
 * }</pre>
 */
public final class Pretraining {

    private static final Logger LOG = LoggerFactory.getLogger(Pretraining.class);

    private Pretraining() {
    }

    /**
     * Pretrains on {@code data} for {@code config.epochs()} epochs, continuing from the newest checkpoint in
     * {@code outputDir}, with {@link RunSettings#defaults()}: data loader, steps, listeners (progress, metrics,
     * checkpoints, monitors; see {@link MugsListeners#defaults}). A listener may end the run early with
     * {@link MugsTrainer#requestStop()}; the partial epoch then ends with the epoch-end listeners, and the next fit
     * resumes mid-epoch.
     *
     * <p>Resuming takes the newest intact checkpoint (damaged newer ones are named in the log and skipped), drops
     * stale temporary files, and requires the recipe stored there up to what {@link ResumePolicy} lets change: a
     * larger {@code epochs} extends a run (finished or not) and recomputes the cosine schedules for the new length,
     * so the remaining steps follow the new curves from the current step; the learning rate, weight decay and
     * clipping may change with a warning. {@code config.json} is written only after this check.
     *
     * @return the trainer, after the last step
     */
    public static MugsTrainer fit(MugsConfig config, ImageSource data, Path outputDir, List<MugsListener> listeners)
            throws IOException {
        return fit(config, RunSettings.defaults(), data, outputDir, listeners);
    }

    /**
     * As {@link #fit(MugsConfig, ImageSource, Path, List)}, with loader threads and replicas from {@code run}, which
     * may differ on every start of the same run folder.
     */
    public static MugsTrainer fit(MugsConfig config, RunSettings run, ImageSource data, Path outputDir,
                                  List<MugsListener> listeners) throws IOException {
        Backend.requireSupported();
        run.requireSplits(config);
        Files.createDirectories(outputDir);
        RunFolder.removeStaleTemporaryFiles(outputDir);
        Optional<RunCheckpoints.Loaded> resume = RunCheckpoints.newestIntact(outputDir);
        try (MultiCropLoader loader = new MultiCropLoader(data, new MultiCropAugmentation(config.crops()),
                config.batchSize(), run.workers(), 2 * run.workers(), config.seed())) {
            if (resume.isPresent()) {
                ResumePolicy.check("run folder " + outputDir, resume.get().config(), config,
                        RunCheckpoints.iteration(resume.get()), loader.stepsPerEpoch());
            }
            RunFolder.writeConfig(outputDir, config);   // only after the resume check
            MugsTrainer trainer = new MugsTrainer(config, run, loader.stepsPerEpoch());
            if (resume.isPresent()) {
                RunCheckpoints.load(resume.get(), trainer);
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
                                trainer.iteration(), epoch);
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
