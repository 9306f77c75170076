package io.mugs.core;

import io.mugs.data.ImageSource;
import io.mugs.data.MultiCropAugmentation;
import io.mugs.data.MultiCropBatch;
import io.mugs.data.MultiCropLoader;
import io.mugs.engine.Backend;
import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/** The loop behind {@link MugsTrainer#fit}: arguments, run lock, resume, data loader, steps, listeners, signals. */
final class FitLoop {

    private static final Logger LOG = LoggerFactory.getLogger(MugsTrainer.class);

    private FitLoop() {
    }

    static MugsTrainer fit(MugsConfig config, ImageSource data, Path outputDir, List<MugsListener> listeners)
            throws IOException {
        requireArguments(config, data, outputDir, listeners);
        Backend.requireSupported();
        // Before the model is built or anything written. On CUDA the arrays live on the device, which this
        // host-side bound does not describe: the estimate is only logged there.
        MemoryBudget budget = Backend.isCuda() ? MemoryBudget.estimate(config) : MemoryBudget.requireFits(config);
        try (RunLock lock = RunLock.acquire(outputDir)) {
            return fitLocked(config, data, outputDir, listeners, budget);
        }
    }

    /** Every argument checked before anything is created, read or written. */
    private static void requireArguments(MugsConfig config, ImageSource data, Path outputDir,
                                         List<MugsListener> listeners) {
        String missing = config == null ? "config" : data == null ? "data" : outputDir == null ? "outputDir"
                : listeners == null ? "listeners" : null;
        if (missing != null) {
            throw new IllegalArgumentException("MugsTrainer.fit: " + missing + " is null (pass "
                    + (missing.equals("listeners") ? "List.of() for no listeners" : "a value") + ")");
        }
        for (int i = 0; i < listeners.size(); i++) {
            if (listeners.get(i) == null) {
                throw new IllegalArgumentException("MugsTrainer.fit: listener " + i + " of " + listeners.size()
                        + " is null");
            }
        }
        if (data.size() < 1) {
            throw new IllegalArgumentException("MugsTrainer.fit: the data source holds no image");
        }
    }

    private static MugsTrainer fitLocked(MugsConfig config, ImageSource data, Path outputDir,
                                         List<MugsListener> listeners, MemoryBudget budget) throws IOException {
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
                LOG.info("resumed from {} at iteration {}", LogText.quoted(resume.get().file()), trainer.iteration());
            }
            LOG.info("{}: {} images, {} steps/epoch, {} epochs, {}; memory {}", LogText.quoted(outputDir),
                    loader.source().size(), loader.stepsPerEpoch(), config.epochs(), Backend.describe(),
                    budget.describe());
            listeners.forEach(l -> l.onFitStart(trainer));
            if (trainer.stopRequested()) {   // e.g. a spent time budget: not one step
                listeners.forEach(l -> l.onFitEnd(trainer));
                return trainer;
            }
            try (StopSignals signals = StopSignals.install()) {
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
                        stopOnSignal(signals, trainer, outputDir, loader.stepsPerEpoch());
                        if (trainer.stopRequested()) {
                            stopped = true;
                            LOG.info("stopping early at iteration {} (epoch {}), as requested by a listener",
                                    trainer.iteration(), epoch);
                            break;
                        }
                    }
                    listeners.forEach(l -> l.onEpochEnd(trainer, epoch));
                    stopOnSignal(signals, trainer, outputDir, loader.stepsPerEpoch());
                }
            }
            listeners.forEach(l -> l.onFitEnd(trainer));
            return trainer;
        }
    }

    /** After SIGINT/SIGTERM: a checkpoint at this step (unless one is there), then the exception that ends the fit. */
    private static void stopOnSignal(StopSignals signals, MugsTrainer trainer, Path dir, int stepsPerEpoch)
            throws IOException {
        String signal = signals.pending();
        if (signal == null) {
            return;
        }
        Optional<Path> newest = Checkpoints.latest(dir);
        Path file = newest.isPresent() && Checkpoints.iterationOf(newest.get()) == trainer.iteration()
                ? newest.get() : Checkpoints.saveInterim(dir, trainer);
        String message = String.format("SIG%s: checkpoint %s written at iteration %d (epoch %d, step %d of %d); "
                + "rerun the same command to resume from it", signal, LogText.quoted(file), trainer.iteration(),
                trainer.epoch(), trainer.iteration() % stepsPerEpoch, stepsPerEpoch);
        LOG.warn(message);
        throw new TrainingInterruptedException(signal, file, message);
    }
}
