package io.mugs.core;

import io.mugs.engine.optim.AdamW;

import io.mugs.core.health.TrainingHealth;
import io.mugs.core.parallel.Communicator;
import io.mugs.data.MultiCropBatch;
import io.mugs.losses.FeatureQueue;
import io.mugs.losses.GroupCentre;
import io.mugs.losses.NeighbourMemory;
import io.mugs.engine.GraphExecutor;
import io.mugs.engine.Kernels;
import io.mugs.io.StateDict;
import io.mugs.io.Stateful;
import java.util.HashSet;
import java.util.List;
import java.util.OptionalDouble;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * Mugs pretraining state and its training step (reference §2, §6): the student and teacher graphs, AdamW, the
 * two InfoNCE queues, the two neighbour memories, the group centre and the schedules.
 *
 * <p>One {@link #step} = teacher forward on its 2 global views (targets) -> student forward + backward on 2 global
 * + N local views -> NaN check -> per-tensor clipping, AdamW (groups, frozen last layer) -> teacher EMA -> enqueue
 * the teacher keys, write the memories (teacher: view 0 of every image; student: view 0 of weak images), update the
 * centre. The gradients, the update and the state changes are separate methods.
 *
 * <p>With {@code run.replicas() = N > 1} ({@link RunSettings}), the teacher and student passes run on N replicas at once, each on
 * {@code batchSize / N} images of every view in its own thread; gradients are averaged and teacher outputs gathered
 * across them, and the update and state changes then run once (docs/data-parallel.md). One replica is the same path
 * with collectives that do nothing.
 *
 * <pre>{@code
 * MugsTrainer trainer = new MugsTrainer(MugsConfig.fashionMnistTiny(), loader.stepsPerEpoch());
 * for (MultiCropBatch b : loader.epoch(0)) { StepResult r = trainer.step(b); }
 * }</pre>
 */
public final class MugsTrainer implements Stateful {

    /** The training health is read every this many steps by default (the progress log's cadence). */
    public static final int HEALTH_EVERY = 10;

    private final MugsConfig config;
    private final MugsModel model;
    private final Replicas replicas;
    private final GraphExecutor studentExecutor;
    private final AdamW optimizer;
    private final ParameterUpdates parameterUpdates;
    private final LossState lossState;
    private final int itersPerEpoch;
    private final RunSchedules schedules;
    private final HealthReadout health;
    private long iteration;
    private double trainingSeconds;
    private volatile boolean stopRequested;

    /** A trainer with one replica ({@link RunSettings#defaults()}). */
    public MugsTrainer(MugsConfig config, int itersPerEpoch) {
        this(config, RunSettings.defaults(), itersPerEpoch);
    }

    /** A trainer whose {@code run.replicas()} replicas are threads of this JVM sharing one state. */
    public MugsTrainer(MugsConfig config, RunSettings run, int itersPerEpoch) {
        this(config, run, itersPerEpoch, null);
    }

    /**
     * A trainer that is one replica of a run spanning several processes (one per GPU): {@code communicator} joins
     * them ({@code size() == run.replicas()}); every process feeds the same global batches and takes the shard of
     * its rank, and every process applies the same averaged update to its own copy of the state.
     */
    public MugsTrainer(MugsConfig config, RunSettings run, int itersPerEpoch, Communicator communicator) {
        run.requireSplits(config);
        this.config = config;
        this.itersPerEpoch = itersPerEpoch;
        this.model = new MugsModel(config);
        Map<String, INDArray> studentParams = model.studentParameters();
        Map<String, INDArray> teacherParams = model.teacherParameters();
        Set<String> lastLayer = new HashSet<>(model.lastLayerParameters());
        if (communicator != null && communicator.size() != run.replicas()) {
            throw new IllegalArgumentException("the communicator joins " + communicator.size() + " processes but "
                    + "replicas is " + run.replicas() + ": set replicas to the world size (WORLD_SIZE)");
        }
        // The replicas build their plans side by side in the first step: compile the Java kernels before, one by one.
        Kernels.warmUp();
        this.replicas = communicator == null ? new Replicas(model, run.replicas(), null)
                : new Replicas(model, 1, List.of(communicator));
        this.studentExecutor = replicas.get(0).student();
        this.optimizer = new AdamW(studentParams, n -> n.contains("patch_embed"), config.patchEmbedLrMult());
        this.parameterUpdates = new ParameterUpdates(replicas, optimizer, config.clipGrad(), studentParams,
                teacherParams, lastLayer);
        this.lossState = new LossState(config);
        this.schedules = new RunSchedules(config, itersPerEpoch);
        this.health = new HealthReadout(config, lossState.instanceQueue(), lossState.centre());
    }

    /**
     * Lays every schedule over the steps of a time budget ({@link BudgetPlan}) instead of {@code config.epochs()}
     * epochs: the run then ends after {@code plan.totalSteps()} steps, mid-epoch if need be. The recipe's curves keep
     * their shape and are stretched or squeezed to the plan: the learning-rate warm-up, the teacher-temperature
     * warm-up and the frozen last layer keep their fraction of {@code epochs}; the cosines of the learning rate,
     * weight decay and teacher momentum end at the plan's last step. Call it before the first step of a start.
     *
     * @throws IllegalArgumentException when the plan was made for another number of steps per epoch
     */
    public void followPlan(BudgetPlan plan) {
        schedules.follow(plan);
    }

    /** The budget plan the schedules follow ({@link #followPlan}), if any. */
    public Optional<BudgetPlan> plan() {
        return schedules.plan();
    }

    /** Steps of the whole run: {@code epochs x itersPerEpoch}, or the budget plan's. */
    public long totalSteps() {
        return schedules.totalSteps();
    }

    /** Epochs the run touches: {@code config.epochs()}, or with a budget plan its whole and partial epochs. */
    public int epochs() {
        return schedules.epochs();
    }

    /** The training health is read on every {@code n}-th step ({@link #HEALTH_EVERY} by default). */
    public void setHealthEvery(int n) {
        health.every(n);
    }

    public int healthEvery() {
        return health.every();
    }

    /**
     * Runs one full training step on {@code batch}: the phases below, top to bottom. A phase that runs per replica
     * spreads itself over the replicas (each on its shard of the batch, on its own thread); the update, the EMA and
     * the state changes run once on the shared state.
     */
    public StepResult step(MultiCropBatch batch) {
        long it = schedules.index(iteration);
        int recipeEpoch = schedules.recipeEpoch(iteration);
        double temperature = schedules.teacherTemperature(recipeEpoch);
        DropPathMasks masks = dropPathMasks(batch.batchSize());
        long t0 = System.nanoTime();
        List<TeacherOutputs> teacherShards = teacherForward(batch);
        long t1 = System.nanoTime();
        List<StudentOutputs> studentShards = studentGradients(batch, teacherShards, masks, temperature);
        long t2 = System.nanoTime();
        StepCollectives.Gathered all = collectives(teacherShards, studentShards);
        long t3Collectives = System.nanoTime();
        NonFiniteChecks.requireFiniteLoss(all.student().losses(), iteration, epoch());
        Optional<TrainingHealth> reading = health.due(iteration)
                ? Optional.of(health.measure(teacherShards.get(0), studentShards.get(0), temperature, iteration,
                        recipeEpoch >= config.warmupTeacherTempEpochs()))
                : Optional.empty();
        long t3 = System.nanoTime();   // the health read-out is in no phase
        int clipped = update(all.student().gradients());
        long t4 = System.nanoTime();
        teacherEma(schedules.momentum(it));
        long t5 = System.nanoTime();
        updateState(batch, all.teacher(), all.student());
        replicas.release(all.gatheredArrays());
        long t6 = System.nanoTime();
        PhaseTimes times = new PhaseTimes(ms(t0, t1), ms(t1, t2),
                replicas.worldSize() > 1 ? OptionalDouble.of(ms(t2, t3Collectives)) : OptionalDouble.empty(),
                ms(t3, t4), ms(t4, t5), ms(t5, t6));
        StepResult result = new StepResult(iteration, epoch(), all.student().losses(), schedules.lr(it),
                schedules.weightDecay(it), schedules.momentum(it), temperature, batch.weakFraction(), clipped, times,
                reading);
        iteration++;
        return result;
    }

    private static double ms(long from, long to) {
        return (to - from) / 1e6;
    }

    /**
     * Phase 1, teacher: the teacher graph on each local replica's shard of the two teacher views; one
     * {@link TeacherOutputs} per local replica, in replica order (one replica: the whole batch).
     */
    public List<TeacherOutputs> teacherForward(MultiCropBatch batch) {
        return replicas.run(r -> {
            Replicas.Replica replica = replicas.get(r);
            MugsModel.TeacherFeed feed = lossState.teacherFeed(replicas.shard(batch, r));
            return replica.model().teacherOutputs(replica.teacher().run(feed.placeholders()).outputs());
        });
    }

    /**
     * Phase 2, student: forward and backward of the student graph on each local replica's shard (its globals and
     * locals, its slice of the drop-path masks, its teacher's targets); one {@link StudentOutputs} per local
     * replica, not yet averaged.
     *
     * @param teacher     {@link #teacherForward} of the same batch
     * @param masks       this step's drop-path masks for the whole batch ({@link #dropPathMasks})
     * @param temperature the teacher temperature of the group targets at this step's epoch
     */
    public List<StudentOutputs> studentGradients(MultiCropBatch batch, List<TeacherOutputs> teacher,
                                                 DropPathMasks masks, double temperature) {
        return replicas.run(r -> {
            Replicas.Replica replica = replicas.get(r);
            MugsModel.StudentFeed feed = lossState.studentFeed(replicas.shard(batch, r), teacher.get(r),
                    masks.shard(replicas, r, config.crops().localCrops()), temperature);
            GraphExecutor.Result s = replica.student().run(feed.placeholders());
            return replica.model().studentOutputs(s.outputs(), s.gradients());
        });
    }

    /**
     * Phase 3, collectives: gradients and losses averaged, outputs gathered over every replica ({@link
     * StepCollectives}). Returns replica 0's view (every replica's is the same).
     */
    StepCollectives.Gathered collectives(List<TeacherOutputs> teacher, List<StudentOutputs> student) {
        return StepCollectives.run(replicas, teacher, student);
    }

    /**
     * Phase 4, update: per-tensor clipping and the AdamW step with this iteration's schedules, the tensors dealt to
     * the local replicas' threads; each thread then checks the tensors it updated for NaN and infinity. Returns how
     * many tensors were clipped.
     */
    public int update(Map<String, INDArray> gradients) {
        long it = schedules.index(iteration);
        return parameterUpdates.student(gradients, schedules.lr(it), schedules.weightDecay(it),
                schedules.lastLayerFrozen(iteration), iteration);
    }

    /** Phase 5, EMA: {@code θt ← m θt + (1 − m) θs}, the teacher's tensors dealt to the local replicas' threads. */
    public void teacherEma(double momentum) {
        parameterUpdates.teacherEma(momentum);
    }

    /**
     * Phase 6, state: enqueue the teacher keys, write both memories (teacher: view 0 of every image; student: view 0
     * of the weak images), update the centre. {@code teacher} and {@code student} cover the whole batch.
     */
    public void updateState(MultiCropBatch batch, TeacherOutputs teacher, StudentOutputs student) {
        lossState.update(batch, teacher, student);
    }

    /** This step's drop-path masks for a batch of {@code b} images (see {@link DropPathMasks}). */
    public DropPathMasks dropPathMasks(int b) {
        return DropPathMasks.draw(model, config.crops().localCrops(), config.seed() * 31 + iteration, b);
    }

    /** The teacher temperature of the group targets at {@code epoch} (the schedule's warm-up, then constant). */
    public double teacherTemperature(int epoch) {
        return schedules.teacherTemperature(epoch);
    }

    /**
     * The whole training state: the model, the optimiser ({@code adam/}), both queues, both memories, the centre and
     * the iteration counter.
     */
    @Override
    public void saveState(StateDict into) {
        model.saveState(into);
        optimizer.saveState(into.scope("adam"));
        lossState.saveState(into);
        into.putCounter("iteration", iteration);
    }

    /** Loads a state written by {@link #saveState}; every name and shape is checked before anything changes. */
    @Override
    public void loadState(StateDict from) {
        StateDict expected = new StateDict();
        saveState(expected);
        from.requireLike(expected);
        model.loadState(from);
        optimizer.loadState(from.scope("adam"));
        lossState.loadState(from);
        iteration = from.counter("iteration", 0, Long.MAX_VALUE);
    }

    /** Bytes of the engine's buffers for the teacher and student graphs (intermediates, outputs, gradients). */
    public long engineBytes() {
        return replicas.engineBytes();
    }

    /**
     * Floating-point operations of the matrix products of one step in this JVM (teacher forward, student forward and
     * backward, over every local replica; from the engine's latest plans, 0 before the first step).
     */
    public double matmulFlopsPerStep() {
        return replicas.matmulFlops();
    }

    /** Replicas of this trainer in this JVM (1 for a process of a multi-process run). */
    public int localReplicas() {
        return replicas.size();
    }

    /** Replica r's model: its variables are replica 0's arrays (the trainer's {@link #model()}). */
    public MugsModel replicaModel(int r) {
        return replicas.get(r).model();
    }

    /** Largest bytes of student-graph intermediates alive at one time (what an ideal allocator would need). */
    public long studentPeakLiveBytes() {
        return studentExecutor.peakLiveBytes();
    }

    /** Epoch of the next step. */
    public int epoch() {
        return (int) (iteration / itersPerEpoch);
    }

    /** Steps taken so far. */
    public long iteration() {
        return iteration;
    }

    /** The queues, memories and centre, and the graphs' feeds made from them. */
    LossState lossState() {
        return lossState;
    }

    void setIteration(long iteration) {
        this.iteration = iteration;
    }

    /**
     * Asks the training loop that runs this trainer to stop after the current step: it then ends the (partial)
     * epoch with the epoch-end listeners (checkpoint, k-NN) and returns. A listener's call.
     */
    public void requestStop() {
        stopRequested = true;
    }

    public boolean stopRequested() {
        return stopRequested;
    }

    /**
     * Wall-clock seconds spent training so far (data, steps and per-step listeners, across resumes), as counted by
     * the training loop; epoch-end work such as checkpoints and k-NN monitors is not included.
     */
    public double trainingSeconds() {
        return trainingSeconds;
    }

    void setTrainingSeconds(double seconds) {
        trainingSeconds = seconds;
    }

    public int itersPerEpoch() {
        return itersPerEpoch;
    }

    public MugsConfig config() {
        return config;
    }

    public MugsModel model() {
        return model;
    }

    public AdamW optimizer() {
        return optimizer;
    }

    public FeatureQueue instanceQueue() {
        return lossState.instanceQueue();
    }

    public FeatureQueue localGroupQueue() {
        return lossState.localGroupQueue();
    }

    public NeighbourMemory studentMemory() {
        return lossState.studentMemory();
    }

    public NeighbourMemory teacherMemory() {
        return lossState.teacherMemory();
    }

    public GroupCentre centre() {
        return lossState.centre();
    }

    /** Every learning rate of the run (materialised on request; the trainer computes them per step). */
    public double[] lrSchedule() {
        return schedules.lrValues();
    }

    public double[] weightDecaySchedule() {
        return schedules.weightDecayValues();
    }

    public double[] momentumSchedule() {
        return schedules.momentumValues();
    }
}
