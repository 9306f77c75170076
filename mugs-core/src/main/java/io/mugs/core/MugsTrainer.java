package io.mugs.core;

import io.mugs.engine.optim.AdamW;
import io.mugs.engine.optim.Schedules;

import io.mugs.core.parallel.Communicator;
import io.mugs.data.ImageSource;
import io.mugs.data.MultiCropBatch;
import io.mugs.losses.FeatureQueue;
import io.mugs.losses.GroupCentre;
import io.mugs.losses.GroupLoss;
import io.mugs.losses.MultiCropPairing;
import io.mugs.losses.NeighbourMemory;
import io.mugs.losses.TeacherTemperatureSchedule;
import io.mugs.vit.DropPath;
import io.mugs.engine.GraphExecutor;
import io.mugs.io.StateDict;
import io.mugs.io.Stateful;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.stream.IntStream;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Mugs pretraining state and its training step (reference §2, §6): the student and teacher graphs, AdamW, the
 * two InfoNCE queues, the two neighbour memories, the group centre and the schedules.
 *
 * <p>One {@link #step} = teacher forward on its 2 global views (targets) -> student forward + backward on 2 global
 * + N local views -> NaN check -> per-tensor clipping, AdamW (groups, frozen last layer) -> teacher EMA -> enqueue
 * the teacher keys, write the memories (teacher: view 0 of every image; student: view 0 of weak images), update the
 * centre. The gradients, the update and the state changes are separate methods.
 *
 * <p>With {@code config.replicas() = N > 1}, the teacher and student passes run on N replicas at once, each on
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

    private static final Logger LOG = LoggerFactory.getLogger(MugsTrainer.class);

    private final MugsConfig config;
    private final MugsModel model;
    private final Replicas replicas;
    private final GraphExecutor teacherExecutor;
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
    private final TeacherTemperatureSchedule teacherTemperature;
    private final MultiCropPairing pairing;
    private final int itersPerEpoch;
    private final double[] lrSchedule;
    private final double[] wdSchedule;
    private final double[] momentumSchedule;
    private long iteration;
    private double trainingSeconds;
    private volatile boolean stopRequested;

    /** A trainer whose {@code config.replicas()} replicas are threads of this JVM sharing one state. */
    public MugsTrainer(MugsConfig config, int itersPerEpoch) {
        this(config, itersPerEpoch, null);
    }

    /**
     * A trainer that is one replica of a run spanning several processes (one per GPU): {@code communicator} joins
     * them ({@code size() == config.replicas()}); every process feeds the same global batches and takes the shard of
     * its rank, and every process applies the same averaged update to its own copy of the state.
     */
    public MugsTrainer(MugsConfig config, int itersPerEpoch, Communicator communicator) {
        this.config = config;
        this.itersPerEpoch = itersPerEpoch;
        this.model = new MugsModel(config);
        this.studentParams = model.studentParameters();
        this.teacherParams = model.teacherParameters();
        this.lastLayer = new HashSet<>(model.lastLayerParameters());
        if (communicator != null && communicator.size() != config.replicas()) {
            throw new IllegalArgumentException("the communicator joins " + communicator.size() + " processes but "
                    + "replicas is " + config.replicas() + ": set replicas to the world size (WORLD_SIZE)");
        }
        this.replicas = communicator == null ? new Replicas(model, config.replicas(), null)
                : new Replicas(model, 1, List.of(communicator));
        if (config.replicas() > 1 && config.useBnInHead()) {
            LOG.warn("useBnInHead with {} replicas: each replica normalises its heads with the statistics of its own "
                    + "{} images (no synchronised batch norm; see docs/data-parallel.md)", config.replicas(),
                    config.batchSize() / config.replicas());
        }
        this.teacherExecutor = replicas.get(0).teacher();
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
        this.teacherTemperature = new TeacherTemperatureSchedule(config.warmupTeacherTemp(), config.teacherTemp(),
                config.warmupTeacherTempEpochs());
        this.pairing = new MultiCropPairing(config.studentViews(), config.pairing());
        this.lrSchedule = Schedules.cosine(config.scaledLr(), config.minLr(), config.epochs(), itersPerEpoch,
                config.warmupEpochs(), 0);
        this.wdSchedule = Schedules.cosine(config.weightDecay(), config.weightDecayEnd(), config.epochs(),
                itersPerEpoch, 0, 0);
        this.momentumSchedule = Schedules.cosine(config.momentumTeacher(), 1, config.epochs(), itersPerEpoch, 0, 0);
    }

    /**
     * Pretrains on {@code data} for {@code config.epochs()} epochs, continuing from the newest checkpoint in
     * {@code outputDir}: data loader, steps, listeners (progress, metrics, checkpoints, monitors; see
     * {@link MugsListeners#defaults}). A listener may end the run early with {@link #requestStop()}; the partial
     * epoch then ends with the epoch-end listeners, and the next fit resumes mid-epoch.
     *
     * <p>Resuming takes the newest intact checkpoint (damaged newer ones are named in the log and skipped), drops
     * stale temporary files, and requires the same configuration, except {@code epochs}: a larger value extends a
     * run (finished or not) and recomputes the cosine schedules for the new length, so the remaining steps follow the
     * new curves from the current step (the learning rate moves up to the longer schedule's value at this step).
     * {@code config.json} is written only after this check.
     *
     * <pre>{@code
     * MugsTrainer t = MugsTrainer.fit(MugsConfig.fashionMnistTiny(), IdxImageSource.bundledFashionMnist(true),
     *         Path.of("runs/fm"), MugsListeners.defaults(Path.of("runs/fm"), 20, 3, null, null, 1));
     * }</pre>
     */
    public static MugsTrainer fit(MugsConfig config, ImageSource data, Path outputDir, List<MugsListener> listeners)
            throws IOException {
        return FitLoop.fit(config, data, outputDir, listeners);
    }

    /**
     * Loads {@code checkpoint} into this trainer, which must have the configuration stored in it except perhaps
     * {@code epochs} and {@code replicas}: replicas change how a step is computed, not what it computes, so a run
     * written by 2 replicas resumes with 1 or 4.
     */
    public void restore(Checkpoints.Loaded checkpoint) throws IOException {
        Checkpoints.restore(Replicas.withReplicas(checkpoint, config.replicas()), this);
    }

    /** Runs one full training step on {@code batch}. */
    public StepResult step(MultiCropBatch batch) {
        Map<String, Double> millis = new LinkedHashMap<>();
        Map<String, INDArray> globalMasks = globalMasks(batch.batchSize());
        Map<String, INDArray> localMasks = localMasks(batch.batchSize());
        double[] phases = new double[3];
        Replicas.Pass pass = replicas.step(this, batch, globalMasks, localMasks, phases);
        TeacherOutputs teacher = pass.teacher();
        StudentOutputs student = pass.student();
        requireFiniteLoss(student.losses());
        long t2 = System.nanoTime();
        int epoch = epoch();
        int it = scheduleIndex();
        // Per-tensor work, dealt to the replicas' threads: one update and one EMA of the shared parameters.
        List<Map<String, INDArray>> gradients = replicas.deal(student.gradients());
        List<String> clipped = new ArrayList<>();
        replicas.run(r -> {
            List<String> c = update(gradients.get(r));
            requireFiniteParameters(gradients.get(r).keySet());   // each thread checks the tensors it updated
            return c;
        }).forEach(clipped::addAll);
        long t3 = System.nanoTime();
        List<Map<String, INDArray>> teacherParts = replicas.deal(teacherParams);
        replicas.run(r -> {
            TeacherEma.update(teacherParts.get(r), studentParams, momentumSchedule[it]);
            return r;
        });
        long t4 = System.nanoTime();
        updateState(batch, teacher, student);
        replicas.release(teacher, student);
        long t5 = System.nanoTime();
        millis.put("teacher", phases[0]);
        millis.put("student", phases[1]);
        if (replicas.worldSize() > 1) {
            millis.put("collectives", phases[2]);
        }
        millis.put("update", (t3 - t2) / 1e6);
        millis.put("ema", (t4 - t3) / 1e6);
        millis.put("state", (t5 - t4) / 1e6);
        StepResult result = new StepResult(iteration, epoch, student.losses(), lrSchedule[it], wdSchedule[it],
                momentumSchedule[it], teacher.temperature(), batch.weakFraction(), clipped.size(), millis);
        iteration++;
        return result;
    }

    /** After the update: a NaN or infinite student parameter stops training before the EMA spreads it. */
    private void requireFiniteParameters(java.util.Set<String> names) {
        for (String name : names) {
            double sum = studentParams.get(name).sumNumber().doubleValue();   // NaN/Inf iff an element is (or overflow)
            if (!Double.isFinite(sum)) {
                throw new NonFiniteWeightsException("student parameter '" + name + "' became NaN or infinite "
                        + "in the update of iteration " + iteration + " (lr " + lrSchedule[scheduleIndex()]
                        + ") although the loss was finite: training stopped before the teacher and the state were "
                        + "updated; the newest checkpoint is intact. Lower the learning rate and resume.");
            }
        }
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

    /** Teacher forward on the two teacher views: instance and local-group targets, group logits, patch means. */
    public TeacherOutputs teacherForward(MultiCropBatch batch) {
        return teacherOutputs(teacherExecutor.run(teacherFeed(batch)).outputs());
    }

    TeacherOutputs teacherOutputs(Map<String, INDArray> out) {
        return new TeacherOutputs(out.get(MugsModel.PATCH_MEAN), Optional.ofNullable(out.get(MugsModel.INST_TARGET)),
                Optional.ofNullable(out.get(MugsModel.LG_TARGET)), Optional.ofNullable(out.get(MugsModel.GROUP_LOGITS)),
                teacherTemperature.at(epoch()));
    }

    /** The teacher graph's placeholders for {@code batch}. */
    Map<String, INDArray> teacherFeed(MultiCropBatch batch) {
        Map<String, INDArray> feed = new HashMap<>();
        feed.put(MugsModel.GLOBAL, batch.teacherGlobals());
        if (config.lossWeights().localGroupEnabled()) {
            feed.put(MugsModel.MEMORY, teacherMemory.contents());
            feed.put(MugsModel.MEMORY_NORMALISED, teacherMemory.normalisedContents());
        }
        return feed;
    }

    /** Student forward + backward: loss values and the gradient of every student parameter. */
    public StudentOutputs studentGradients(MultiCropBatch batch, TeacherOutputs teacher) {
        GraphExecutor.Result result = studentExecutor.run(studentFeed(batch, teacher));
        Map<String, Double> losses = new LinkedHashMap<>();
        for (String name : model.lossOutputs()) {
            losses.put(name, result.outputs().get(name).getDouble(0));
        }
        requireFiniteLoss(losses);
        return new StudentOutputs(losses, result.gradients(), result.outputs().get(MugsModel.PATCH_MEAN));
    }

    private void requireFiniteLoss(Map<String, Double> losses) {
        double loss = losses.get(MugsModel.LOSS);
        if (!Double.isFinite(loss)) {
            throw new NonFiniteLossException("loss is " + loss + " at iteration " + iteration + " (epoch " + epoch()
                    + "; components " + losses + "): training stopped before the update; the last checkpoint is "
                    + "intact. Lower the learning rate or raise the warm-up, and resume.");
        }
    }

    /** The student graph's placeholders with this step's drop-path masks for {@code batch}. */
    Map<String, INDArray> studentFeed(MultiCropBatch batch, TeacherOutputs teacher) {
        Map<String, INDArray> masks = new HashMap<>(globalMasks(batch.batchSize()));
        masks.putAll(localMasks(batch.batchSize()));
        return studentFeed(batch, teacher, masks);
    }

    /**
     * This step's drop-path masks of the global views for a batch of {@code b} images. The masks of a step are drawn
     * for the whole batch, global views first, and sliced per replica, so N replicas drop what one would.
     */
    private Map<String, INDArray> globalMasks(int b) {
        return DropPath.sample(model.globalDropPath(), 2 * b, model.globalTokens(), maskRandom(), DataType.FLOAT);
    }

    /** This step's drop-path masks of the local views (drawn after the global ones from the same stream). */
    private Map<String, INDArray> localMasks(int b) {
        SplittableRandom rng = maskRandom();
        DropPath.sample(model.globalDropPath(), 2 * b, model.globalTokens(), rng, DataType.FLOAT);
        return DropPath.sample(model.localDropPath(), config.crops().localCrops() * b, model.localTokens(), rng,
                DataType.FLOAT);
    }

    private SplittableRandom maskRandom() {
        return new SplittableRandom(config.seed() * 31 + iteration);
    }

    /** The student graph's placeholders: views, teacher targets, queues, memories and the drop-path masks. */
    Map<String, INDArray> studentFeed(MultiCropBatch batch, TeacherOutputs teacher, Map<String, INDArray> masks) {
        Map<String, INDArray> feed = new HashMap<>();
        feed.put(MugsModel.GLOBAL, batch.studentGlobals());
        if (batch.locals() != null) {
            feed.put(MugsModel.LOCAL, batch.locals());
        }
        teacher.instanceKeys().ifPresent(keys -> {
            feed.put(MugsModel.INST_KEYS, keys);
            feed.put(MugsModel.INST_QUEUE, instanceQueue.contents());
        });
        teacher.localGroupKeys().ifPresent(keys -> {
            feed.put(MugsModel.LG_KEYS, keys);
            feed.put(MugsModel.LG_QUEUE, localGroupQueue.contents());
            feed.put(MugsModel.MEMORY, studentMemory.contents());
            feed.put(MugsModel.MEMORY_NORMALISED, studentMemory.normalisedContents());
        });
        teacher.groupLogits().ifPresent(logits -> feed.put(MugsModel.GROUP_TARGETS,
                GroupLoss.targets(centre.targets(logits, teacher.temperature()), pairing)));
        feed.putAll(masks);
        return feed;
    }

    /** Per-tensor clipping and the AdamW step with this iteration's schedules; returns the clipped names. */
    public List<String> update(Map<String, INDArray> gradients) {
        int it = scheduleIndex();
        boolean freeze = iteration < Math.round(config.freezeLastLayer() * itersPerEpoch);
        return optimizer.step(gradients, lrSchedule[it], wdSchedule[it], config.clipGrad(),
                name -> freeze && lastLayer.contains(name));
    }

    /** After the update: enqueue teacher keys, write both memories, update the centre. */
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

    private int scheduleIndex() {
        return (int) Math.min(iteration, lrSchedule.length - 1);
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
     * Asks {@link #fit} to stop after the current step: it then ends the (partial) epoch with the epoch-end
     * listeners (checkpoint, k-NN) and returns. Used by {@link MugsListeners#timeBudget}.
     */
    public void requestStop() {
        stopRequested = true;
    }

    public boolean stopRequested() {
        return stopRequested;
    }

    /**
     * Wall-clock seconds spent training so far (data, steps and per-step listeners, across resumes), as counted by
     * {@link #fit}; epoch-end work such as checkpoints and k-NN monitors is not included.
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

    public double[] lrSchedule() {
        return lrSchedule;
    }

    public double[] weightDecaySchedule() {
        return wdSchedule;
    }

    public double[] momentumSchedule() {
        return momentumSchedule;
    }
}
