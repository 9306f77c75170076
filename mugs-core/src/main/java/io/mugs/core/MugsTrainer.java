package io.mugs.core;

import io.mugs.data.MultiCropBatch;
import io.mugs.losses.FeatureQueue;
import io.mugs.losses.GroupCentre;
import io.mugs.losses.GroupLoss;
import io.mugs.losses.MultiCropPairing;
import io.mugs.losses.NeighbourMemory;
import io.mugs.losses.TeacherTemperatureSchedule;
import io.mugs.vit.DropPath;
import io.mugs.vit.Gradients;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.SplittableRandom;
import org.nd4j.autodiff.samediff.SameDiff;
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
 * centre. The gradients, the update and the state changes are separate methods so that a data-parallel runner can
 * insert a gradient all-reduce between them.
 *
 * <pre>{@code
 * MugsTrainer trainer = new MugsTrainer(MugsConfig.fashionMnistTiny(), loader.stepsPerEpoch());
 * for (MultiCropBatch b : loader.epoch(0)) { StepResult r = trainer.step(b); }
 * }</pre>
 */
public final class MugsTrainer {

    private final MugsConfig config;
    private final MugsModel model;
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

    public MugsTrainer(MugsConfig config, int itersPerEpoch) {
        this.config = config;
        this.itersPerEpoch = itersPerEpoch;
        this.model = new MugsModel(config);
        this.studentParams = model.studentParameters();
        this.teacherParams = model.teacherParameters();
        this.lastLayer = new HashSet<>(model.lastLayerParameters());
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
     * Pretrains on {@code data} for {@code config.epochs()} epochs, resuming from the newest checkpoint in
     * {@code outputDir}; see {@link MugsFit}.
     */
    public static MugsTrainer fit(MugsConfig config, io.mugs.data.ImageSource data, java.nio.file.Path outputDir,
                                  List<MugsListener> listeners) throws java.io.IOException {
        return MugsFit.fit(config, data, outputDir, listeners);
    }

    /** Teacher outputs of one step: the loss targets and the values the state updates need. */
    public record TeacherOutputs(Map<String, INDArray> values, double temperature) {
    }

    /** Student loss values and gradients of one step. */
    public record StudentOutputs(Map<String, Double> losses, Map<String, INDArray> gradients, INDArray patchMean) {
    }

    /** Runs one full training step on {@code batch}. */
    public StepResult step(MultiCropBatch batch) {
        Map<String, Double> millis = new LinkedHashMap<>();
        long t0 = System.nanoTime();
        TeacherOutputs teacher = teacherForward(batch);
        long t1 = System.nanoTime();
        StudentOutputs student = studentGradients(batch, teacher);
        long t2 = System.nanoTime();
        int epoch = epoch();
        int it = scheduleIndex();
        List<String> clipped = update(student.gradients());
        long t3 = System.nanoTime();
        TeacherEma.update(teacherParams, studentParams, momentumSchedule[it]);
        long t4 = System.nanoTime();
        updateState(batch, teacher, student);
        long t5 = System.nanoTime();
        millis.put("teacher", (t1 - t0) / 1e6);
        millis.put("student", (t2 - t1) / 1e6);
        millis.put("update", (t3 - t2) / 1e6);
        millis.put("ema", (t4 - t3) / 1e6);
        millis.put("state", (t5 - t4) / 1e6);
        StepResult result = new StepResult(iteration, epoch, student.losses(), lrSchedule[it], wdSchedule[it],
                momentumSchedule[it], teacher.temperature(), batch.weakFraction(), clipped.size(), millis);
        iteration++;
        return result;
    }

    /** Teacher forward on the two teacher views: instance and local-group targets, group logits, patch means. */
    public TeacherOutputs teacherForward(MultiCropBatch batch) {
        SameDiff t = model.teacher();
        Map<String, INDArray> feed = new HashMap<>();
        feed.put(MugsModel.GLOBAL, batch.teacherGlobals());
        putIfUsed(t, feed, MugsModel.MEMORY, teacherMemory.contents());
        putIfUsed(t, feed, MugsModel.MEMORY_NORMALISED, teacherMemory.normalisedContents());
        List<String> outputs = new ArrayList<>(List.of(MugsModel.PATCH_MEAN));
        for (String o : List.of(MugsModel.INST_TARGET, MugsModel.LG_TARGET, MugsModel.GROUP_LOGITS)) {
            if (t.hasVariable(o)) {
                outputs.add(o);
            }
        }
        return new TeacherOutputs(t.output(feed, outputs), teacherTemperature.at(epoch()));
    }

    /** Student forward + backward: loss values and the gradient of every student parameter. */
    public StudentOutputs studentGradients(MultiCropBatch batch, TeacherOutputs teacher) {
        SameDiff s = model.student();
        int b = batch.batchSize();
        Map<String, INDArray> feed = new HashMap<>();
        feed.put(MugsModel.GLOBAL, batch.studentGlobals());
        putIfUsed(s, feed, MugsModel.LOCAL, batch.locals());
        putIfUsed(s, feed, MugsModel.INST_KEYS, teacher.values().get(MugsModel.INST_TARGET));
        putIfUsed(s, feed, MugsModel.INST_QUEUE, instanceQueue.contents());
        putIfUsed(s, feed, MugsModel.LG_KEYS, teacher.values().get(MugsModel.LG_TARGET));
        putIfUsed(s, feed, MugsModel.LG_QUEUE, localGroupQueue.contents());
        putIfUsed(s, feed, MugsModel.MEMORY, studentMemory.contents());
        putIfUsed(s, feed, MugsModel.MEMORY_NORMALISED, studentMemory.normalisedContents());
        if (s.hasVariable(MugsModel.GROUP_TARGETS)) {
            INDArray probs = centre.targets(teacher.values().get(MugsModel.GROUP_LOGITS), teacher.temperature());
            feed.put(MugsModel.GROUP_TARGETS, GroupLoss.targets(probs, pairing));
        }
        SplittableRandom rng = new SplittableRandom(config.seed() * 31 + iteration);
        feed.putAll(DropPath.sample(model.globalDropPath(), 2 * b, model.globalTokens(), rng, DataType.FLOAT));
        feed.putAll(DropPath.sample(model.localDropPath(), config.crops().localCrops() * b, model.localTokens(), rng,
                DataType.FLOAT));
        List<String> outputs = new ArrayList<>(model.lossOutputs());
        outputs.add(MugsModel.PATCH_MEAN);
        Gradients.filterStdout();
        var result = s.calculateGradientsAndOutputs(feed, outputs, studentParams.keySet());
        Map<String, Double> losses = new LinkedHashMap<>();
        for (String name : model.lossOutputs()) {
            losses.put(name, result.getOutputs().get(name).getDouble(0));
        }
        double loss = losses.get(MugsModel.LOSS);
        if (!Double.isFinite(loss)) {
            throw new NonFiniteLossException("loss is " + loss + " at iteration " + iteration + " (epoch " + epoch()
                    + "; components " + losses + "): training stopped before the update; the last checkpoint is "
                    + "intact. Lower the learning rate or raise the warm-up, and resume.");
        }
        return new StudentOutputs(losses, result.getGradients(), result.getOutputs().get(MugsModel.PATCH_MEAN));
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
        Map<String, INDArray> t = teacher.values();
        if (t.containsKey(MugsModel.INST_TARGET)) {
            instanceQueue.enqueue(t.get(MugsModel.INST_TARGET));
        }
        if (t.containsKey(MugsModel.LG_TARGET)) {
            localGroupQueue.enqueue(t.get(MugsModel.LG_TARGET));
            teacherMemory.write(t.get(MugsModel.PATCH_MEAN).get(NDArrayIndex.interval(0, b), NDArrayIndex.all()));
            List<Integer> weak = new ArrayList<>();
            for (int i = 0; i < b; i++) {
                if (batch.weakFlags()[i]) {
                    weak.add(i);
                }
            }
            if (!weak.isEmpty()) {
                int[] rows = weak.stream().mapToInt(Integer::intValue).toArray();
                studentMemory.write(Nd4j.pullRows(student.patchMean(), 1, rows));
            }
        }
        if (t.containsKey(MugsModel.GROUP_LOGITS)) {
            centre.update(t.get(MugsModel.GROUP_LOGITS));
        }
    }

    private static void putIfUsed(SameDiff sd, Map<String, INDArray> feed, String name, INDArray value) {
        if (sd.hasVariable(name) && value != null) {
            feed.put(name, value);
        }
    }

    private int scheduleIndex() {
        return (int) Math.min(iteration, lrSchedule.length - 1);
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
     * Asks {@link MugsFit} to stop after the current step: it then ends the (partial) epoch with the epoch-end
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
     * {@link MugsFit}; epoch-end work such as checkpoints and k-NN monitors is not included.
     */
    public double trainingSeconds() {
        return trainingSeconds;
    }

    void addTrainingSeconds(double seconds) {
        trainingSeconds += seconds;
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
