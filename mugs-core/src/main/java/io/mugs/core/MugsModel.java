package io.mugs.core;

import io.mugs.eval.CheckpointLayout;
import io.mugs.io.StateDict;
import io.mugs.io.Stateful;
import io.mugs.losses.GroupHead;
import io.mugs.losses.GroupLoss;
import io.mugs.losses.InfoNceLoss;
import io.mugs.losses.LocalGroupAggregator;
import io.mugs.losses.MultiCropPairing;
import io.mugs.losses.NeighbourLookup;
import io.mugs.losses.ProjectionHead;
import io.mugs.vit.DropPath;
import io.mugs.vit.VisionTransformer;
import io.mugs.vit.VitOutputs;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.autodiff.samediff.VariableType;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.indexing.NDArrayIndex;

/**
 * The student and teacher graphs of Mugs (reference §2.2), built from the public pieces.
 * <pre>
 * student (drop-path):  global [2B,C,G,G], local [N*B,C,L,L]  -> backbone (one pass per resolution)
 *   cls [V*B, D] -> instance head (projector + predictor)        -> InfoNCE vs instance keys and queue
 *   tokenMean -> top-k from the student memory -> aggregator -> local-group head -> InfoNCE vs local-group keys, queue
 *   cls -> group head -> logits                                  -> cross-entropy vs group targets
 *   loss = LossWeights.combine(...)
 * teacher (no drop-path, no predictors): global [2B] -> instance keys, local-group keys, group logits, patch mean
 * </pre>
 * Feeds and outputs are typed ({@link TeacherFeed}, {@link StudentFeed}, {@link TeacherOutputs},
 * {@link StudentOutputs}); the placeholder and output names are this class's own.
 * Variable names are the official state-dict names ({@code backbone.blocks.0.attn.qkv.weight},
 * {@code instance_head.projector.0.weight}, ...). The teacher starts as a copy of the student.
 */
public final class MugsModel implements Stateful {

    /** Names of the losses map of a step (the student's outputs, the step's result, metrics.jsonl). */
    public static final String LOSS = "loss";
    public static final String LOSS_INSTANCE = "loss_instance";
    public static final String LOSS_LOCAL_GROUP = "loss_local_group";
    public static final String LOSS_GROUP = "loss_group";

    // Graph names, spelled only here: the typed feeds and outputs below translate to and from them. A teacher
    // output and the student placeholder it feeds share one name.
    private static final String GLOBAL = "global";
    private static final String LOCAL = "local";
    private static final String INSTANCE_KEYS = "instance_keys";
    private static final String INSTANCE_QUEUE = "instance_queue";
    private static final String LOCAL_GROUP_KEYS = "local_group_keys";
    private static final String LOCAL_GROUP_QUEUE = "local_group_queue";
    private static final String MEMORY = "memory";
    private static final String MEMORY_NORMALISED = "memory_normalised";
    private static final String GROUP_LOGITS = "group_logits";
    private static final String GROUP_TARGETS = "group_targets";
    private static final String PATCH_MEAN = "patch_mean";
    // Student outputs read only by the training-health read-outs (identities: no effect on losses or gradients).
    private static final String INSTANCE_PREDICTION = "health_instance_prediction";
    private static final String STUDENT_GROUP_LOGITS = "health_group_logits";

    /** A neighbour memory as the local-group branch reads it: rows [M, D] and their L2-normalised copy [M, D]. */
    public record MemoryFeed(INDArray rows, INDArray normalisedRows) {
    }

    /** An InfoNCE loss's inputs: the teacher's keys [2B, K] (positives) and its queue [Q, K] (negatives). */
    public record KeysFeed(INDArray keys, INDArray queue) {
    }

    /**
     * The teacher graph's inputs.
     *
     * @param global the two teacher views [2B, C, G, G], view-major
     * @param memory the teacher memory; present exactly when the local-group loss is on
     */
    public record TeacherFeed(INDArray global, Optional<MemoryFeed> memory) {

        /** As the graph's placeholders. */
        public Map<String, INDArray> placeholders() {
            Map<String, INDArray> feed = new HashMap<>();
            feed.put(GLOBAL, global);
            memory.ifPresent(m -> {
                feed.put(MEMORY, m.rows());
                feed.put(MEMORY_NORMALISED, m.normalisedRows());
            });
            return feed;
        }
    }

    /**
     * The student graph's inputs; each loss's inputs are present exactly when that loss is on.
     *
     * @param global       the two student globals [2B, C, G, G], view-major
     * @param local        the local views [N·B, C, L, L], view-major (absent without local crops)
     * @param instance     instance keys and queue
     * @param localGroup   local-group keys and queue
     * @param memory       the student memory (with the local-group loss)
     * @param groupTargets the group loss's targets [2B, P] ({@code GroupLoss.targets})
     * @param dropPath     this step's drop-path masks, by the names {@link #globalDropPath()} and
     *                     {@link #localDropPath()} give
     */
    public record StudentFeed(INDArray global, Optional<INDArray> local, Optional<KeysFeed> instance,
                              Optional<KeysFeed> localGroup, Optional<MemoryFeed> memory,
                              Optional<INDArray> groupTargets, Map<String, INDArray> dropPath) {

        /** As the graph's placeholders. */
        public Map<String, INDArray> placeholders() {
            Map<String, INDArray> feed = new HashMap<>();
            feed.put(GLOBAL, global);
            local.ifPresent(l -> feed.put(LOCAL, l));
            instance.ifPresent(k -> {
                feed.put(INSTANCE_KEYS, k.keys());
                feed.put(INSTANCE_QUEUE, k.queue());
            });
            localGroup.ifPresent(k -> {
                feed.put(LOCAL_GROUP_KEYS, k.keys());
                feed.put(LOCAL_GROUP_QUEUE, k.queue());
            });
            memory.ifPresent(m -> {
                feed.put(MEMORY, m.rows());
                feed.put(MEMORY_NORMALISED, m.normalisedRows());
            });
            groupTargets.ifPresent(t -> feed.put(GROUP_TARGETS, t));
            feed.putAll(dropPath);
            return feed;
        }
    }

    private final MugsConfig config;
    private final DataType type;
    private final SameDiff student = SameDiff.create();
    private final SameDiff teacher = SameDiff.create();
    private final VisionTransformer studentBackbone;
    private final VisionTransformer teacherBackbone;
    private final List<DropPath.Slot> globalDropPath;
    private final List<DropPath.Slot> localDropPath;
    private final int globalTokens;
    private final int localTokens;
    private final List<String> lastLayer = new ArrayList<>();
    private final List<String> lossOutputs = new ArrayList<>();
    private final List<String> healthOutputs = new ArrayList<>();

    /** The model in FLOAT, as the trainer runs it. */
    public MugsModel(MugsConfig config) {
        this(config, DataType.FLOAT);
    }

    /**
     * The model with variables and placeholders of {@code type} (DOUBLE serves numerical checks; the trainer's
     * state is FLOAT).
     */
    public MugsModel(MugsConfig config, DataType type) {
        this.config = config;
        this.type = type;
        DataType f = type;
        long seed = config.seed();
        var crops = config.crops();
        int g = crops.globalSize();
        int l = crops.localSize();
        int c = config.vit().inChannels();
        MultiCropPairing pairing = new MultiCropPairing(config.studentViews(), config.pairing());

        // Student.
        studentBackbone = new VisionTransformer(student, CheckpointLayout.BACKBONE, config.vit(), f, seed);
        SDVariable global = student.placeHolder(GLOBAL, f, -1, c, g, g);
        VitOutputs sg = studentBackbone.apply(global, g, g, VisionTransformer.Mode.TRAINING, "global");
        globalDropPath = sg.dropPath();
        globalTokens = sg.tokensPerImage();
        SDVariable cls = sg.cls();
        SDVariable tokenMean = sg.tokenMean();
        if (crops.localCrops() > 0) {
            SDVariable local = student.placeHolder(LOCAL, f, -1, c, l, l);
            VitOutputs sl = studentBackbone.apply(local, l, l, VisionTransformer.Mode.TRAINING, "local");
            localDropPath = sl.dropPath();
            localTokens = sl.tokensPerImage();
            cls = student.concat(0, cls, sl.cls());
            tokenMean = student.concat(0, tokenMean, sl.tokenMean());
        } else {
            localDropPath = List.of();
            localTokens = 0;
        }
        student.identity(PATCH_MEAN, sg.patchMean());
        var weights = config.lossWeights();
        SDVariable instLoss = null;
        SDVariable lgLoss = null;
        SDVariable groupLoss = null;
        if (weights.instanceEnabled()) {
            ProjectionHead head = instanceHead(student, "instance_head.", config.predictorHidden(), seed + 1);
            SDVariable prediction = head.studentPrediction(cls);
            healthOutputs.add(student.identity(INSTANCE_PREDICTION, prediction).name());
            instLoss = InfoNceLoss.build(student, prediction,
                    student.placeHolder(INSTANCE_KEYS, f, -1, config.instanceOut()),
                    student.placeHolder(INSTANCE_QUEUE, f, -1, config.instanceOut()), config.instanceOut(), pairing,
                    config.instanceTemp());
            lossOutputs.add(student.identity(LOSS_INSTANCE, instLoss).name());
        }
        if (weights.localGroupEnabled()) {
            SDVariable y = aggregate(student, studentBackbone, tokenMean, seed + 2);
            ProjectionHead head = instanceHead(student, "local_group_head.", config.predictorHidden(), seed + 3);
            lgLoss = InfoNceLoss.build(student, head.studentPrediction(y),
                    student.placeHolder(LOCAL_GROUP_KEYS, f, -1, config.instanceOut()),
                    student.placeHolder(LOCAL_GROUP_QUEUE, f, -1, config.instanceOut()), config.instanceOut(), pairing,
                    config.localGroupTemp());
            lossOutputs.add(student.identity(LOSS_LOCAL_GROUP, lgLoss).name());
        }
        if (weights.groupEnabled()) {
            GroupHead head = groupHead(student, seed + 4);
            lastLayer.addAll(head.lastLayerParameterNames());
            SDVariable logits = head.logits(cls);
            healthOutputs.add(student.identity(STUDENT_GROUP_LOGITS, logits).name());
            groupLoss = GroupLoss.build(student, logits,
                    student.placeHolder(GROUP_TARGETS, f, -1, config.prototypes()), pairing, config.studentTemp());
            lossOutputs.add(student.identity(LOSS_GROUP, groupLoss).name());
        }
        SDVariable loss = student.identity(LOSS, weights.combine(instLoss, lgLoss, groupLoss));
        student.setLossVariables(loss);
        lossOutputs.add(0, LOSS);

        // Teacher: same names, no drop-path, no predictors; weights copied from the student.
        teacherBackbone = new VisionTransformer(teacher, CheckpointLayout.BACKBONE,
                config.vit().toBuilder().dropPathRate(0).build(), f, seed);
        SDVariable tGlobal = teacher.placeHolder(GLOBAL, f, -1, c, g, g);
        VitOutputs tg = teacherBackbone.apply(tGlobal, g, g, VisionTransformer.Mode.INFERENCE, "global");
        teacher.identity(PATCH_MEAN, tg.patchMean());
        if (weights.instanceEnabled()) {
            teacher.identity(INSTANCE_KEYS, instanceHead(teacher, "instance_head.", 0, seed + 1).teacherTarget(tg.cls()));
        }
        if (weights.localGroupEnabled()) {
            SDVariable y = aggregate(teacher, teacherBackbone, tg.tokenMean(), seed + 2);
            teacher.identity(LOCAL_GROUP_KEYS, instanceHead(teacher, "local_group_head.", 0, seed + 3).teacherTarget(y));
        }
        if (weights.groupEnabled()) {
            teacher.identity(GROUP_LOGITS, groupHead(teacher, seed + 4).logits(tg.cls()));
        }
        Map<String, INDArray> s = studentParameters();
        teacherParameters().forEach((name, arr) -> arr.assign(s.get(name)));
    }

    private ProjectionHead instanceHead(SameDiff sd, String prefix, int predictorHidden, long seed) {
        return new ProjectionHead(sd, prefix, ProjectionHead.Options.of(config.vit().embedDim())
                .withHidden(config.instanceHidden()).withOutDim(config.instanceOut())
                .withPredictorHidden(predictorHidden).withBatchNorm(config.useBnInHead()), type, seed);
    }

    private GroupHead groupHead(SameDiff sd, long seed) {
        return new GroupHead(sd, "group_head.", GroupHead.Options.of(config.vit().embedDim())
                .withHidden(config.groupHidden()).withBottleneck(config.groupBottleneck())
                .withPrototypes(config.prototypes()).withNormLastLayer(config.normLastLayer())
                .withBatchNorm(config.useBnInHead()), type, seed);
    }

    private SDVariable aggregate(SameDiff sd, VisionTransformer backbone, SDVariable query, long seed) {
        int d = config.vit().embedDim();
        LocalGroupAggregator agg = new LocalGroupAggregator(sd, CheckpointLayout.BACKBONE, backbone, config.aggregatorDepth(),
                type, seed);
        SDVariable neighbours = NeighbourLookup.neighbours(sd, query, sd.placeHolder(MEMORY_NORMALISED,
                type, -1, d), sd.placeHolder(MEMORY, type, -1, d), config.neighbours());
        return agg.apply(query, neighbours, config.neighbours(), backbone);
    }

    private static Map<String, INDArray> parameters(SameDiff sd) {
        Map<String, INDArray> out = new LinkedHashMap<>();
        for (SDVariable v : sd.variables()) {
            if (v.getVariableType() == VariableType.VARIABLE) {
                out.put(v.name(), v.getArr());
            }
        }
        return out;
    }

    /** Student variables (live arrays), in creation order. */
    public Map<String, INDArray> studentParameters() {
        return parameters(student);
    }

    /** Teacher variables (live arrays): the student's minus the predictors. */
    public Map<String, INDArray> teacherParameters() {
        return parameters(teacher);
    }

    /** Every student and teacher variable, as {@code student/NAME} and {@code teacher/NAME}. */
    @Override
    public void saveState(StateDict into) {
        StateDict s = into.scope(CheckpointLayout.STUDENT);
        studentParameters().forEach(s::putTensor);
        StateDict t = into.scope(CheckpointLayout.TEACHER);
        teacherParameters().forEach(t::putTensor);
    }

    @Override
    public void loadState(StateDict from) {
        StateDict s = from.scope(CheckpointLayout.STUDENT);
        StateDict t = from.scope(CheckpointLayout.TEACHER);
        Map<String, INDArray> student = studentParameters();
        Map<String, INDArray> teacherParams = teacherParameters();
        student.forEach((k, v) -> s.tensor(k, v.shape()));      // every name and shape checked first
        teacherParams.forEach((k, v) -> t.tensor(k, v.shape()));
        student.forEach((k, v) -> v.assign(s.tensor(k, v.shape())));
        teacherParams.forEach((k, v) -> v.assign(t.tensor(k, v.shape())));
    }

    public SameDiff student() {
        return student;
    }

    public SameDiff teacher() {
        return teacher;
    }

    public MugsConfig config() {
        return config;
    }

    public VisionTransformer studentBackbone() {
        return studentBackbone;
    }

    public VisionTransformer teacherBackbone() {
        return teacherBackbone;
    }

    /** Names of the group head's prototype variables (frozen during the first epochs). */
    public List<String> lastLayerParameters() {
        return lastLayer;
    }

    /** The teacher graph's outputs: the patch mean, then the targets of the enabled losses. */
    public List<String> teacherOutputNames() {
        List<String> out = new ArrayList<>(List.of(PATCH_MEAN));
        for (String o : List.of(INSTANCE_KEYS, LOCAL_GROUP_KEYS, GROUP_LOGITS)) {
            if (teacher.hasVariable(o)) {
                out.add(o);
            }
        }
        return out;
    }

    /**
     * The student graph's outputs: the losses ({@link #lossOutputs()}), the patch mean, then the values the
     * training-health read-outs need (the instance predictions and the group logits of the enabled losses; identities
     * of values the losses compute anyway, so requesting them changes no loss and no gradient).
     */
    public List<String> studentOutputNames() {
        List<String> out = new ArrayList<>(lossOutputs);
        out.add(PATCH_MEAN);
        out.addAll(healthOutputs);
        return out;
    }

    /** The teacher graph's outputs {@code out} (by {@link #teacherOutputNames()}), typed. */
    public TeacherOutputs teacherOutputs(Map<String, INDArray> out) {
        return new TeacherOutputs(out.get(PATCH_MEAN), Optional.ofNullable(out.get(INSTANCE_KEYS)),
                Optional.ofNullable(out.get(LOCAL_GROUP_KEYS)), Optional.ofNullable(out.get(GROUP_LOGITS)));
    }

    /** The student graph's outputs {@code out} (by {@link #studentOutputNames()}) and gradients, typed. */
    public StudentOutputs studentOutputs(Map<String, INDArray> out, Map<String, INDArray> gradients) {
        Map<String, Double> losses = new LinkedHashMap<>();
        for (String name : lossOutputs) {
            losses.put(name, out.get(name).getDouble(0));
        }
        long globals = out.get(PATCH_MEAN).size(0);   // the rows of the two global views: [2B, ...]
        return new StudentOutputs(losses, gradients, out.get(PATCH_MEAN),
                Optional.ofNullable(out.get(INSTANCE_PREDICTION)).map(p -> globalRows(p, globals)),
                Optional.ofNullable(out.get(STUDENT_GROUP_LOGITS)).map(l -> globalRows(l, globals)));
    }

    /** The first {@code rows} rows of a view-major [V*B, d] output: the two global views (a view, no copy). */
    private static INDArray globalRows(INDArray x, long rows) {
        return x.size(0) == rows ? x : x.get(NDArrayIndex.interval(0, rows), NDArrayIndex.all());
    }

    /** {@code loss} first, then the enabled components. */
    public List<String> lossOutputs() {
        return lossOutputs;
    }

    public List<DropPath.Slot> globalDropPath() {
        return globalDropPath;
    }

    public List<DropPath.Slot> localDropPath() {
        return localDropPath;
    }

    public int globalTokens() {
        return globalTokens;
    }

    public int localTokens() {
        return localTokens;
    }
}
