package io.mugs.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.mugs.data.MultiCropAugmentation;
import io.mugs.data.MultiCropLoader;
import io.mugs.engine.optim.CosineSchedule;
import io.mugs.engine.optim.Schedules;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.function.LongSupplier;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A run with a time budget (RunSettings.budgetMinutes): the step time measured on a fake clock, the schedules laid
 * over exactly the steps that fit, the run ending at their last step, and a resumed run following the same plan.
 */
class BudgetRunTest {

    @TempDir
    Path dir;

    /** 24 images of batch 8: 3 steps per epoch; 2 epochs with a 1-epoch warm-up, stretched by the plan. */
    private static MugsConfig config() {
        return Tiny.config().toBuilder().warmupEpochs(1).warmupTeacherTemp(0.02).teacherTemp(0.05)
                .warmupTeacherTempEpochs(1).build();
    }

    /** A clock that moves {@code seconds} on every reading. */
    private static LongSupplier clock(double seconds, int[] readings) {
        return () -> (long) (++readings[0] * seconds * 1e9);
    }

    /** Records every step's schedule values; optionally stops the fit after {@code stopAfter} steps. */
    private static final class Recorder implements MugsListener {
        final List<StepResult> steps = new ArrayList<>();
        final long stopAfter;

        Recorder(long stopAfter) {
            this.stopAfter = stopAfter;
        }

        @Override
        public void onStep(MugsTrainer t, StepResult r) {
            steps.add(r);
            if (t.iteration() == stopAfter) {
                t.requestStop();
            }
        }
    }

    @Test
    void aSmallBudgetEndsItsCosineSchedulesAtTheLastStepAndAResumeFollowsTheSamePlan() throws IOException {
        MugsConfig cfg = config();
        RunSettings run = new RunSettings(1, 1).withBudgetMinutes(0.03);   // 1.8 s at 0.25 s per step: 7 steps
        int[] readings = {0};
        Recorder first = new Recorder(4);
        MugsTrainer t = Pretraining.fit(cfg, run, Tiny.images(24), dir,
                List.of(first, MugsListeners.checkpoints(dir, 2)), clock(0.25, readings));
        assertEquals(BudgetPlanner.WARMUP_STEPS + BudgetPlanner.MEASURED_STEPS, readings[0]);   // one per step
        BudgetPlan plan = BudgetPlan.read(dir).orElseThrow();
        assertEquals(new BudgetPlan(0.03, 0.25, BudgetPlanner.MEASURED_STEPS, 3, 7), plan);
        assertEquals(4, t.iteration());                                   // stopped, mid-epoch 2
        // The measuring steps were put back: the first step is a fresh trainer's first step on the same batch.
        assertEquals(0, first.steps.get(0).iteration());
        try (MultiCropLoader loader = new MultiCropLoader(Tiny.images(24), new MultiCropAugmentation(cfg.crops()),
                cfg.batchSize(), 1, 1, cfg.seed())) {
            assertEquals(new MugsTrainer(cfg, 3).step(loader.batch(0, 0)).loss(), first.steps.get(0).loss(), 0);
        }

        // Resumed with another budget and a clock that would measure 4x slower: the plan is kept, nothing measured.
        int[] again = {0};
        Recorder second = new Recorder(-1);
        MugsTrainer resumed = Pretraining.fit(cfg, new RunSettings(1, 1).withBudgetMinutes(5), Tiny.images(24), dir,
                List.of(second, MugsListeners.checkpoints(dir, 2)), clock(1.0, again));
        assertEquals(0, again[0]);
        assertEquals(plan, BudgetPlan.read(dir).orElseThrow());
        assertEquals(7, resumed.iteration());                             // ends at the plan's last step
        assertEquals(7, resumed.totalSteps());
        assertEquals(3, resumed.epochs());

        List<StepResult> all = new ArrayList<>(first.steps);
        all.addAll(second.steps);
        assertEquals(7, all.size());
        // The recipe's 6 steps stretched to 7: the warm-up keeps its half (round(3.5) = 4 steps), and every cosine
        // ends at step 6 with the value of the last step of a 7-step schedule.
        double[] lr = Schedules.cosineSteps(cfg.scaledLr(), cfg.minLr(), 7, 4, 0);
        double[] wd = Schedules.cosineSteps(cfg.weightDecay(), cfg.weightDecayEnd(), 7, 0, 0);
        double[] momentum = Schedules.cosineSteps(cfg.momentumTeacher(), 1, 7, 0, 0);
        for (int i = 0; i < 7; i++) {
            StepResult r = all.get(i);
            assertEquals(i, r.iteration());
            assertEquals(lr[i], r.lr(), 0, "lr at step " + i);
            assertEquals(wd[i], r.weightDecay(), 0, "wd at step " + i);
            assertEquals(momentum[i], r.momentum(), 0, "momentum at step " + i);
            // teacher temperature per recipe epoch: steps 0-3 fall in its first half (epoch 0), 4-6 in epoch 1
            assertEquals(i < 4 ? 0.02 : 0.05, r.teacherTemp(), 1e-12, "teacher temperature at step " + i);
        }
        assertEquals(cfg.scaledLr(), all.get(3).lr(), 0);                 // the warm-up's last step is the peak
        assertEquals(cfg.minLr() + 0.5 * (cfg.scaledLr() - cfg.minLr()) * (1 + Math.cos(Math.PI * 2 / 3)),
                all.get(6).lr(), 1e-15);                                  // the last of 3 cosine steps
        assertEquals(cfg.momentumTeacher() + 0.5 * (1 - cfg.momentumTeacher()) * (1 - Math.cos(Math.PI * 6 / 7)),
                all.get(6).momentum(), 1e-15);
    }

    @Test
    void theStepTimeIsTakenAfterTheSlowFirstSteps() {
        MugsConfig cfg = config();
        // 4 slow steps of 1 s (planning, allocation, the JIT), then 0.25 s per step: reading i follows step i.
        int[] readings = {0};
        LongSupplier clock = () -> {
            int i = ++readings[0];
            return Math.round((i <= 4 ? i : 4 + 0.25 * (i - 4)) * 1e9);
        };
        try (MultiCropLoader loader = new MultiCropLoader(Tiny.images(24), new MultiCropAugmentation(cfg.crops()),
                cfg.batchSize(), 1, 1, cfg.seed())) {
            BudgetPlan plan = BudgetPlanner.measure(10, new MugsTrainer(cfg, 3), loader, clock);
            // A 10-minute budget: 3 s of warm-up after the first step ended (1 s), so up to step 4; then 6 s of
            // timed steps, 24 of them. Three warm-up and ten timed steps would have timed the slow step 4 too
            // (0.325 s per step).
            assertEquals(4 + 24, readings[0]);
            assertEquals(new BudgetPlan(10, 0.25, 24, 3, 2_400), plan);
        }
        // Up to an hour the warm-up and the timing are 0.5 % and 1 % of the budget, then 15 s and 30 s.
        assertEquals(2.0, BudgetPlanner.warmupSeconds(400 / 60.0), 1e-12);
        assertEquals(4.0, BudgetPlanner.measuredSeconds(400 / 60.0), 1e-12);
        assertEquals(15.0, BudgetPlanner.warmupSeconds(600), 0);
        assertEquals(15.0, BudgetPlanner.warmupSeconds(60), 0);
        assertEquals(30.0, BudgetPlanner.measuredSeconds(60), 0);
    }

    @Test
    void theBudgetIsARunSettingThatSurvivesOtherSettingsAndRefusesNonsense() {
        RunSettings run = RunSettings.defaults().withBudgetMinutes(60).with("workers=3", "replicas=2");
        assertEquals(new RunSettings(3, 2, 60), run);
        assertEquals(0, RunSettings.defaults().budgetMinutes());
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> RunSettings.defaults().withBudgetMinutes(-1));
        assertTrue(e.getMessage().contains("the budget must be positive minutes, got -1.0"), e.getMessage());
    }

    @Test
    void aStepsScheduleEqualsTheArrayScheduleBitForBit() {
        CosineSchedule c = CosineSchedule.overSteps(2.0, 0.5, 13, 3, 0.1);
        double[] a = Schedules.cosineSteps(2.0, 0.5, 13, 3, 0.1);
        assertEquals(13, c.length());
        for (int i = 0; i < 13; i++) {
            assertEquals(a[i], c.at(i), 0);
        }
        assertEquals(a[12], c.at(100), 0);
    }

    @Test
    void aRunStartedWithoutABudgetCannotTakeOneHalfWayAndAPlannedRunKeepsItsEpochs() throws IOException {
        MugsConfig cfg = config();
        Recorder stop = new Recorder(2);
        Pretraining.fit(cfg, new RunSettings(1, 1), Tiny.images(24), dir,
                List.of(stop, MugsListeners.checkpoints(dir, 2)));
        IllegalArgumentException late = assertThrows(IllegalArgumentException.class,
                () -> Pretraining.fit(cfg, new RunSettings(1, 1).withBudgetMinutes(1), Tiny.images(24), dir,
                        List.of()));
        assertTrue(late.getMessage().contains("was started without a time budget") && late.getMessage().contains(
                "resume without --budget-minutes, or start a new run folder"), late.getMessage());

        Path planned = dir.resolve("planned");
        new BudgetPlan(1, 0.5, 10, 3, 7).write(java.nio.file.Files.createDirectories(planned));
        Pretraining.fit(cfg, new RunSettings(1, 1), Tiny.images(24), planned,
                List.of(new Recorder(2), MugsListeners.checkpoints(planned, 2)));
        IllegalArgumentException epochs = assertThrows(IllegalArgumentException.class,
                () -> Pretraining.fit(cfg.toBuilder().epochs(4).build(), new RunSettings(1, 1), Tiny.images(24),
                        planned, List.of()));
        assertTrue(epochs.getMessage().contains("follows a budget plan of 7 steps"), epochs.getMessage());
    }
}
