package io.mugs.core;

import io.mugs.engine.optim.AdamW;

import io.mugs.core.health.TrainingHealth;
import io.mugs.core.parallel.Communicator;
import io.mugs.data.MultiCropBatch;
import io.mugs.losses.FeatureQueue;
import io.mugs.losses.GroupCentre;
import io.mugs.losses.GroupLoss;
import io.mugs.losses.MultiCropPairing;
import io.mugs.losses.NeighbourMemory;
import io.mugs.engine.GraphExecutor;
import io.mugs.io.StateDict;
import io.mugs.io.Stateful;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.OptionalDouble;
import java.util.function.UnaryOperator;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.stream.IntStream;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;

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
    private final Map<String, INDArray> studentParams;
    private final Map<String, INDArray> teacherParams;
    private final Set<String> lastLayer;
    private final FeatureQueue instanceQueue;
    private final FeatureQueue localGroupQueue;
    private final NeighbourMemory studentMemory;
    private final NeighbourMemory teacherMemory;
    private final GroupCentre centre;
    private final MultiCropPairing pairing;
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
        this.studentParams = model.studentParameters();
        this.teacherParams = model.teacherParameters();
        this.lastLayer = new HashSet<>(model.lastLayerParameters());
        if (communicator != null && communicator.size() != run.replicas()) {
            throw new IllegalArgumentException("the communicator joins " + communicator.size() + " processes but "
                    + "replicas is " + run.replicas() + ": set replicas to the world size (WORLD_SIZE)");
        }
        this.replicas = communicator == null ? new Replicas(model, run.replicas(), null)
                : new Replicas(model, 1, List.of(communicator));
        this.studentExecutor = replicas.get(0).student();
        this.optimizer = new AdamW(studentParams, n -> n.contains("patch_embed"), config.patchEmbedLrMult());
        long seed = config.seed();
        DataType f = DataType.FLOAT;
        this.instanceQueue = new FeatureQueue(config.queueSize(), config.instanceOut(), f, seed + 11);
        this.localGroupQueue = new FeatureQueue(config.queueSize(), config.instanceOut(), f, seed + 12);
        int d = config.vit().embedDim();
        this.studentMemory = new NeighbourMemory(config.memorySize(), d, config.neighbours(),
                config.officialPointerQuirk(), f, seed + 13);
        this.teacherMemory = new NeighbourMemory(config.memorySize(), d, config.neighbours(),
                config.officialPointerQuirk(), f, seed + 14);
        this.centre = new GroupCentre(config.prototypes(), config.centreMomentum(), f);
        this.pairing = new MultiCropPairing(config.studentViews(), config.pairing());
        this.schedules = new RunSchedules(config, itersPerEpoch);
        this.health = new HealthReadout(config, instanceQueue, centre);
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
        Gathered all = collectives(teacherShards, studentShards);
        long t3Collectives = System.nanoTime();
        requireFiniteLoss(all.student().losses());
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
            MugsModel.TeacherFeed feed = teacherFeed(replicas.shard(batch, r));
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
            MugsModel.StudentFeed feed = studentFeed(replicas.shard(batch, r), teacher.get(r),
                    masks.shard(replicas, r, config.crops().localCrops()), temperature);
            GraphExecutor.Result s = replica.student().run(feed.placeholders());
            return replica.model().studentOutputs(s.outputs(), s.gradients());
        });
    }

    /** A step's teacher and student outputs for the whole batch, and the arrays the collectives made for them. */
    record Gathered(TeacherOutputs teacher, StudentOutputs student, List<INDArray> gatheredArrays) {
    }

    /**
     * Phase 3, collectives: on every replica at once, gradients and losses averaged over all replicas (in place), and
     * teacher outputs and student patch means all-gathered in single-replica order. Returns replica 0's view (every
     * replica's is the same). With one replica in all, the outputs themselves.
     */
    Gathered collectives(List<TeacherOutputs> teacher, List<StudentOutputs> student) {
        return replicas.run(r -> {
            StudentOutputs s = student.get(r);
            List<String> lossNames = List.copyOf(s.losses().keySet());
            INDArray losses = Nd4j.create(DataType.DOUBLE, lossNames.size());
            for (int i = 0; i < lossNames.size(); i++) {
                losses.putScalar(i, s.losses().get(lossNames.get(i)));
            }
            List<INDArray> reduced = new ArrayList<>(s.gradients().values());
            reduced.add(losses);
            replicas.allReduceMean(r, reduced);
            Map<String, Double> lossValues = new LinkedHashMap<>();
            for (int i = 0; i < lossNames.size(); i++) {
                lossValues.put(lossNames.get(i), losses.getDouble(i));
            }
            List<INDArray> gathered = new ArrayList<>();
            UnaryOperator<INDArray> gather = x -> {
                INDArray g = replicas.gatherViews(r, x);
                gathered.add(g);
                return g;
            };
            TeacherOutputs t = teacher.get(r);
            TeacherOutputs allTeacher = new TeacherOutputs(gather.apply(t.patchMean()), t.instanceKeys().map(gather),
                    t.localGroupKeys().map(gather), t.groupLogits().map(gather));
            StudentOutputs allStudent = new StudentOutputs(lossValues, s.gradients(), gather.apply(s.patchMean()));
            return new Gathered(allTeacher, allStudent, gathered);
        }).get(0);
    }

    /** A non-finite loss stops training before anything changes. */
    private void requireFiniteLoss(Map<String, Double> losses) {
        double loss = losses.get(MugsModel.LOSS);
        if (!Double.isFinite(loss)) {
            throw new NonFiniteLossException("loss is " + loss + " at iteration " + iteration + " (epoch " + epoch()
                    + "; components " + losses + "): training stopped before the update; the last checkpoint is "
                    + "intact. Lower the learning rate or raise the warm-up, and resume.");
        }
    }

    /**
     * Phase 4, update: per-tensor clipping and the AdamW step with this iteration's schedules, the tensors dealt to
     * the local replicas' threads; each thread then checks the tensors it updated for NaN and infinity. Returns how
     * many tensors were clipped.
     */
    public int update(Map<String, INDArray> gradients) {
        long it = schedules.index(iteration);
        boolean freeze = schedules.lastLayerFrozen(iteration);
        List<Map<String, INDArray>> parts = replicas.deal(gradients);
        return replicas.run(r -> {
            List<String> clipped = optimizer.step(parts.get(r), schedules.lr(it), schedules.weightDecay(it),
                    config.clipGrad(),
                    name -> freeze && lastLayer.contains(name));
            requireFiniteParameters(parts.get(r).keySet());
            return clipped.size();
        }).stream().mapToInt(Integer::intValue).sum();
    }

    /** After the update: a NaN or infinite student parameter stops training before the EMA spreads it. */
    private void requireFiniteParameters(Set<String> names) {
        for (String name : names) {
            double sum = studentParams.get(name).sumNumber().doubleValue();   // NaN/Inf iff an element is (or overflow)
            if (!Double.isFinite(sum)) {
                throw new NonFiniteWeightsException("student parameter '" + name + "' became NaN or infinite "
                        + "in the update of iteration " + iteration + " (lr " + schedules.lr(schedules.index(iteration))
                        + ") although the loss was finite: training stopped before the teacher and the state were "
                        + "updated; the newest checkpoint is intact. Lower the learning rate and resume.");
            }
        }
    }

    /** Phase 5, EMA: {@code θt ← m θt + (1 − m) θs}, the teacher's tensors dealt to the local replicas' threads. */
    public void teacherEma(double momentum) {
        List<Map<String, INDArray>> parts = replicas.deal(teacherParams);
        replicas.run(r -> {
            TeacherEma.update(parts.get(r), studentParams, momentum);
            return r;
        });
    }

    /**
     * Phase 6, state: enqueue the teacher keys, write both memories (teacher: view 0 of every image; student: view 0
     * of the weak images), update the centre. {@code teacher} and {@code student} cover the whole batch.
     */
    public void updateState(MultiCropBatch batch, TeacherOutputs teacher, StudentOutputs student) {
        int b = batch.batchSize();
        teacher.instanceKeys().ifPresent(instanceQueue::enqueue);
        teacher.localGroupKeys().ifPresent(keys -> {
            localGroupQueue.enqueue(keys);
            teacherMemory.write(teacher.patchMean().get(NDArrayIndex.interval(0, b), NDArrayIndex.all()));
            int[] weak = IntStream.range(0, b).filter(i -> batch.weakFlags()[i]).toArray();
            if (weak.length > 0) {
                studentMemory.write(Nd4j.pullRows(student.patchMean(), 1, weak));
            }
        });
        teacher.groupLogits().ifPresent(centre::update);
    }

    /** This step's drop-path masks for a batch of {@code b} images (see {@link DropPathMasks}). */
    public DropPathMasks dropPathMasks(int b) {
        return DropPathMasks.draw(model, config.crops().localCrops(), config.seed() * 31 + iteration, b);
    }

    /** The teacher graph's inputs for {@code batch}: its views and, with the local-group loss, the teacher memory. */
    MugsModel.TeacherFeed teacherFeed(MultiCropBatch batch) {
        return new MugsModel.TeacherFeed(batch.teacherGlobals(), config.lossWeights().localGroupEnabled()
                ? Optional.of(memoryFeed(teacherMemory)) : Optional.empty());
    }

    private static MugsModel.MemoryFeed memoryFeed(NeighbourMemory memory) {
        return new MugsModel.MemoryFeed(memory.contents(), memory.normalisedContents());
    }

    /**
     * The student graph's inputs: views, the teacher's keys with their queues, the student memory, the group targets
     * (the centred, sharpened teacher logits at {@code temperature}) and the drop-path masks.
     */
    MugsModel.StudentFeed studentFeed(MultiCropBatch batch, TeacherOutputs teacher, Map<String, INDArray> masks,
                                      double temperature) {
        return new MugsModel.StudentFeed(batch.studentGlobals(), Optional.ofNullable(batch.locals()),
                teacher.instanceKeys().map(k -> new MugsModel.KeysFeed(k, instanceQueue.contents())),
                teacher.localGroupKeys().map(k -> new MugsModel.KeysFeed(k, localGroupQueue.contents())),
                teacher.localGroupKeys().map(k -> memoryFeed(studentMemory)),
                teacher.groupLogits().map(logits -> GroupLoss.targets(centre.targets(logits, temperature), pairing)),
                masks);
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
        instanceQueue.saveState(into.scope("instance_queue"));
        localGroupQueue.saveState(into.scope("local_group_queue"));
        studentMemory.saveState(into.scope("student_memory"));
        teacherMemory.saveState(into.scope("teacher_memory"));
        centre.saveState(into.scope("centre"));
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
        instanceQueue.loadState(from.scope("instance_queue"));
        localGroupQueue.loadState(from.scope("local_group_queue"));
        studentMemory.loadState(from.scope("student_memory"));
        teacherMemory.loadState(from.scope("teacher_memory"));
        centre.loadState(from.scope("centre"));
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
        return instanceQueue;
    }

    public FeatureQueue localGroupQueue() {
        return localGroupQueue;
    }

    public NeighbourMemory studentMemory() {
        return studentMemory;
    }

    public NeighbourMemory teacherMemory() {
        return teacherMemory;
    }

    public GroupCentre centre() {
        return centre;
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
