package io.mugs.core;

import io.mugs.data.ImageSource;
import io.mugs.data.LogText;
import io.mugs.data.MultiCropAugmentation;
import io.mugs.data.MultiCropBatch;
import io.mugs.data.MultiCropLoader;
import io.mugs.engine.Backend;
import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import java.util.function.LongSupplier;
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
     * may differ on every start of the same run folder. With {@code run.budgetMinutes() > 0} at the first start, or
     * whenever the run folder holds a {@link BudgetPlan}, the schedules span the plan's steps instead of
     * {@code config.epochs()} epochs, and the run ends at its last step ({@link BudgetPlanner}, docs/time-budget.md).
     */
    public static MugsTrainer fit(MugsConfig config, RunSettings run, ImageSource data, Path outputDir,
                                  List<MugsListener> listeners) throws IOException {
        return fit(config, run, data, outputDir, listeners, System::nanoTime);
    }

    /** As {@link #fit(MugsConfig, RunSettings, ImageSource, Path, List)}, timing a budget plan with {@code clock}. */
    static MugsTrainer fit(MugsConfig config, RunSettings run, ImageSource data, Path outputDir,
                           List<MugsListener> listeners, LongSupplier clock) throws IOException {
        requireArguments(config, run, data, outputDir, listeners);
        Backend.requireSupported();
        run.requireSplits(config);
        // Before the model is built or anything written. On CUDA the arrays live on the device, which this
        // host-side bound does not describe: the estimate is only logged there.
        MemoryBudget budget = Backend.isCuda() ? MemoryBudget.estimate(config, run)
                : MemoryBudget.requireFits(config, run);
        try (RunLock lock = RunLock.acquire(outputDir)) {
            return fitLocked(config, run, data, outputDir, listeners, budget, clock);
        }
    }

    /** Every argument checked before anything is created, read or written. */
    private static void requireArguments(MugsConfig config, RunSettings run, ImageSource data, Path outputDir,
                                         List<MugsListener> listeners) {
        String missing = config == null ? "config" : run == null ? "run" : data == null ? "data"
                : outputDir == null ? "outputDir" : listeners == null ? "listeners" : null;
        if (missing != null) {
            throw new IllegalArgumentException("Pretraining.fit: " + missing + " is null (pass "
                    + (missing.equals("listeners") ? "List.of() for no listeners" : "a value") + ")");
        }
        for (int i = 0; i < listeners.size(); i++) {
            if (listeners.get(i) == null) {
                throw new IllegalArgumentException("Pretraining.fit: listener " + i + " of " + listeners.size()
                        + " is null");
            }
        }
        if (data.size() < 1) {
            throw new IllegalArgumentException("Pretraining.fit: the data source holds no image");
        }
    }

    private static MugsTrainer fitLocked(MugsConfig config, RunSettings run, ImageSource data, Path outputDir,
                                         List<MugsListener> listeners, MemoryBudget budget, LongSupplier clock)
            throws IOException {
        RunFolder.removeStaleTemporaryFiles(outputDir);
        Optional<RunCheckpoints.Loaded> resume = RunCheckpoints.newestIntact(outputDir);
        try (MultiCropLoader loader = new MultiCropLoader(data, new MultiCropAugmentation(config.crops()),
                config.batchSize(), run.workers(), 2 * run.workers(), config.seed())) {
            Optional<BudgetPlan> stored = BudgetPlanner.stored(outputDir, run, loader.stepsPerEpoch());
            if (resume.isPresent()) {
                ResumePolicy.check("run folder " + outputDir, resume.get().config(), config,
                        RunCheckpoints.iteration(resume.get()), loader.stepsPerEpoch(), stored);
            }
            RunFolder.writeConfig(outputDir, config);   // only after the resume check
            MugsTrainer trainer = new MugsTrainer(config, run, loader.stepsPerEpoch());
            BudgetPlanner.plan(stored, run, outputDir, trainer, loader, resume.isPresent(), clock)
                    .ifPresent(trainer::followPlan);
            if (resume.isPresent()) {
                RunCheckpoints.load(resume.get(), trainer);
                LOG.info("resumed from {} at iteration {}", LogText.quoted(resume.get().file()), trainer.iteration());
            }
            LOG.info("{}: {} images, {} steps/epoch, {}, {}, {} replica(s) of {} images (--set replicas=N); memory {}",
                    LogText.quoted(outputDir), loader.source().size(), loader.stepsPerEpoch(),
                    trainer.plan().isPresent()
                            ? trainer.totalSteps() + " steps (the budget plan)" : config.epochs() + " epochs",
                    Backend.describe(), run.replicas(), config.batchSize() / run.replicas(), budget.describe());
            listeners.forEach(l -> l.onFitStart(trainer));
            if (trainer.stopRequested()) {   // e.g. a spent time budget: not one step
                listeners.forEach(l -> l.onFitEnd(trainer));
                return trainer;
            }
            try (StopSignals signals = StopSignals.install()) {
                boolean stopped = false;
                while (!stopped && trainer.iteration() < trainer.totalSteps()) {
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
                        if (trainer.iteration() >= trainer.totalSteps()) {   // a budget plan ends mid-epoch
                            break;
                        }
                        if (trainer.stopRequested()) {
                            stopped = true;
                            LOG.info("stopping early at iteration {} (epoch {}), as requested by a listener",
                                    trainer.iteration(), epoch + 1);
                            break;
                        }
                    }
                    listeners.forEach(l -> l.onEpochEnd(trainer, epoch));
                    stopOnSignal(signals, trainer, outputDir, loader.stepsPerEpoch());
                }
            }
            trainer.plan().filter(p -> trainer.iteration() >= p.totalSteps()).ifPresent(p -> LOG.info(String.format(
                    Locale.ROOT, "the budget plan's %d steps are done: %.2f training minutes of the %s planned",
                    p.totalSteps(), trainer.trainingSeconds() / 60, BudgetPlanner.minutes(p.budgetMinutes()))));
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
        Optional<Path> newest = RunCheckpoints.latest(dir);
        Path file = newest.isPresent() && RunCheckpoints.iterationOf(newest.get()) == trainer.iteration()
                ? newest.get() : RunCheckpoints.saveInterim(dir, trainer);
        String message = String.format("SIG%s: checkpoint %s written at iteration %d (epoch %d, step %d of %d); "
                + "rerun the same command to resume from it", signal, LogText.quoted(file), trainer.iteration(),
                trainer.epoch() + 1, trainer.iteration() % stepsPerEpoch, stepsPerEpoch);
        LOG.warn(message);
        throw new TrainingInterruptedException(signal, file, message);
    }
}
