package io.mugs.core;

import io.mugs.data.MultiCropBatch;
import io.mugs.data.LogText;
import io.mugs.data.MultiCropLoader;
import io.mugs.io.StateDict;
import java.io.IOException;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.function.LongSupplier;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The {@link BudgetPlan} of a run folder: read back when the folder has one (a resumed run never measures again), or
 * made at the first start of a run with {@link RunSettings#budgetMinutes()}: warm-up steps (graph planning,
 * allocation, the loader's start, the JIT compiling the Java kernels), at least {@value #WARMUP_STEPS} and until
 * {@link #warmupSeconds(double)} have passed since the first step ended, then timed steps (data wait included),
 * at least {@value #MEASURED_STEPS} and {@link #measuredSeconds(double)}, after which the trainer's whole state is
 * put back as it was, so the run proper starts from step 0 with schedules laid over the plan from its first step.
 * The measuring steps are not counted as training time. While they run, a copy of the state (weights, optimiser
 * moments, queues, memories) is held in memory.
 *
 * <p>Why by time and not only by steps: a step of the 192-wide Fashion-MNIST ViT took 0.29-0.52 s over its first 20
 * steps and 0.291 s on average over the whole run; 3 warm-up and 10 timed steps measured 0.401 s, so the plan's
 * 8,974 steps took 43.5 of the 60 minutes. With 15 s of warm-up and 30 s of timing (1.25 % of a 60-minute budget,
 * not counted as training) the early steps no longer count.
 *
 * <pre>{@code
 * Optional<BudgetPlan> plan = BudgetPlanner.plan(run, dir, trainer, loader, resumed, System::nanoTime);
 * plan.ifPresent(trainer::followPlan);
 * }</pre>
 */
final class BudgetPlanner {

    /** Fewest steps run before the timed ones. */
    static final int WARMUP_STEPS = 3;
    /** Fewest steps timed for the plan. */
    static final int MEASURED_STEPS = 10;
    /** Longest warm-up asked for by time, and its share of the budget when the budget is short. */
    static final double WARMUP_SECONDS = 15;
    static final double WARMUP_SHARE = 0.005;
    /** Longest timing asked for, and its share of the budget when the budget is short. */
    static final double MEASURED_SECONDS = 30;
    static final double MEASURED_SHARE = 0.01;

    private static final Logger LOG = LoggerFactory.getLogger(BudgetPlanner.class);

    private BudgetPlanner() {
    }

    /** The plan stored in {@code dir}, checked against the settings and the data; empty when there is none. */
    static Optional<BudgetPlan> stored(Path dir, RunSettings run, int stepsPerEpoch) throws IOException {
        Optional<BudgetPlan> plan = BudgetPlan.read(dir);
        plan.ifPresent(p -> {
            if (p.stepsPerEpoch() != stepsPerEpoch) {
                throw new IllegalArgumentException(dir.resolve(BudgetPlan.FILE) + " was made for " + p.stepsPerEpoch()
                        + " steps per epoch, the data gives " + stepsPerEpoch + ": resume on the same data and batch "
                        + "size, or start a new run folder");
            }
            if (run.budgetMinutes() > 0 && run.budgetMinutes() != p.budgetMinutes()) {
                LOG.warn(String.format(Locale.ROOT, "%s holds a plan for %s minutes; the run keeps it (%d steps) and "
                        + "ignores the budget of %s minutes asked now: a plan never changes within a run folder",
                        dir.resolve(BudgetPlan.FILE), minutes(p.budgetMinutes()), p.totalSteps(),
                        minutes(run.budgetMinutes())));
            }
        });
        return plan;
    }

    /**
     * The plan to follow: {@code stored} when there is one, else (with a budget) a new one measured on
     * {@code trainer} and written to {@code dir}; empty without a budget.
     *
     * @param resumed whether {@code trainer} was loaded from a checkpoint (a run started without a budget cannot
     *                take one half-way)
     * @param clock   nanoseconds, for the measurement ({@code System::nanoTime})
     */
    static Optional<BudgetPlan> plan(Optional<BudgetPlan> stored, RunSettings run, Path dir, MugsTrainer trainer,
                                     MultiCropLoader loader, boolean resumed, LongSupplier clock)
            throws IOException {
        if (stored.isPresent()) {
            BudgetPlan p = stored.get();
            LOG.info(String.format(Locale.ROOT, "following the budget plan in %s: %d steps (%s minutes at %.3f s "
                    + "per step, measured once at the first start)", LogText.quoted(dir.resolve(BudgetPlan.FILE)),
                    p.totalSteps(), minutes(p.budgetMinutes()), p.stepSeconds()));
            return stored;
        }
        if (run.budgetMinutes() == 0) {
            return Optional.empty();
        }
        if (resumed) {
            throw new IllegalArgumentException("run folder " + dir + " was started without a time budget (its "
                    + "schedules span " + trainer.config().epochs() + " epochs) and a budget cannot be laid over a run"
                    + " half-way: resume without --budget-minutes, or start a new run folder");
        }
        BudgetPlan plan = measure(run.budgetMinutes(), trainer, loader, clock);
        plan.write(dir);
        LOG.info(String.format(Locale.ROOT, "budget plan: %.3f s per step (timed over %d steps after the warm-up, "
                + "then the state put back), so %d steps (%.2f epochs of %d) fit %s training minutes; the schedules "
                + "end after step %d; written to %s", plan.stepSeconds(), plan.measuredSteps(), plan.totalSteps(),
                plan.totalSteps() / (double) plan.stepsPerEpoch(), plan.stepsPerEpoch(), minutes(plan.budgetMinutes()),
                plan.totalSteps(), LogText.quoted(dir.resolve(BudgetPlan.FILE))));
        return Optional.of(plan);
    }

    /** Seconds of warm-up for a budget of {@code minutes}: a share of it, at most {@value #WARMUP_SECONDS}. */
    static double warmupSeconds(double minutes) {
        return Math.min(WARMUP_SECONDS, minutes * 60 * WARMUP_SHARE);
    }

    /** Seconds of timed steps for a budget of {@code minutes}: a share of it, at most {@value #MEASURED_SECONDS}. */
    static double measuredSeconds(double minutes) {
        return Math.min(MEASURED_SECONDS, minutes * 60 * MEASURED_SHARE);
    }

    /** Times steps on {@code trainer}, then restores its state; the plan for {@code minutes}. */
    static BudgetPlan measure(double minutes, MugsTrainer trainer, MultiCropLoader loader, LongSupplier clock) {
        StateDict saved = new StateDict();
        trainer.saveState(saved);
        Map<String, INDArray> copies = new LinkedHashMap<>();
        saved.tensors().forEach((name, t) -> copies.put(name, t.dup()));
        StateDict before = new StateDict(copies, saved.counters());
        double warmup = warmupSeconds(minutes);
        double timing = measuredSeconds(minutes);
        LOG.info(String.format(Locale.ROOT, "measuring the step time for the %s-minute budget: warm-up steps (at "
                + "least %d and %.1f s), then timed steps (at least %d and %.1f s); not counted as training, and the "
                + "state is put back after them", minutes(minutes), WARMUP_STEPS, warmup, MEASURED_STEPS, timing));
        int steps = 0;
        int warmSteps = -1;
        long first = 0;
        long start = 0;
        long end = 0;
        measuring:
        for (int epoch = 0; ; epoch++) {
            for (MultiCropBatch batch : loader.epoch(epoch)) {
                trainer.step(batch);
                long now = clock.getAsLong();
                steps++;
                if (steps == 1) {
                    first = now;   // the first step (graph planning) counts neither as warm-up time nor as timed
                }
                if (warmSteps < 0) {
                    if (steps >= WARMUP_STEPS && (now - first) / 1e9 >= warmup) {
                        warmSteps = steps;
                        start = now;   // from the end of the last warm-up step: the next batch's wait counts
                    }
                } else if (steps - warmSteps >= MEASURED_STEPS && (now - start) / 1e9 >= timing) {
                    end = now;
                    break measuring;
                }
            }
        }
        trainer.loadState(before);
        copies.values().forEach(INDArray::close);
        int timed = steps - warmSteps;
        return BudgetPlan.of(minutes, (end - start) / 1e9 / timed, timed, trainer.itersPerEpoch());
    }

    static String minutes(double m) {
        return m == Math.rint(m) ? Long.toString((long) m) : Double.toString(m);
    }
}
