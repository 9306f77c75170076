package io.mugs.core;

import io.mugs.data.MultiCropConfig;
import io.mugs.vit.VitConfig;
import java.lang.management.ManagementFactory;
import java.lang.reflect.Method;
import java.util.Locale;

/**
 * The native memory a training configuration needs, estimated before the model is built, and the refusal when it
 * does not fit: {@code needs about X GB, this JVM allows Y GB: lower --batch or ...}. Without it, a configuration too
 * large ends in an {@code OutOfMemoryError} after minutes, or in a SIGSEGV: libnd4j's {@code allocateDataBuffer}
 * does not check that its allocation succeeded and writes through the null pointer (measured: one array of
 * 1.9e10 floats, the attention scores of {@code --set crops.globalSize=700}, crashes the JVM in {@code libc}).
 *
 * <p>What is counted (float32 throughout):
 * <ul>
 *   <li>parameters: student and teacher (backbone {@link VitConfig#parameterCount()}, local-group aggregator,
 *       projection and group heads; the teacher without predictors), AdamW's two moments of the student;</li>
 *   <li>state: both InfoNCE queues {@code [queueSize, instanceOut]}, both neighbour memories and their normalised
 *       copies {@code [memorySize, D]}, the group centre;</li>
 *   <li>the engine's buffers for one step (activations kept for the backward pass, outputs, gradients), per image:
 *       {@code 4 (31 D T depth + 3.1 H S depth + 57 D T + 18.5 V W)} bytes with T the tokens of all views, S the
 *       sum of their squares, V the views and W the heads' widths. The coefficients were fitted to the engine's own
 *       report ({@code MugsTrainer.engineBytes()}, {@code GraphExecutor.peakLiveBytes()}) on eight CI-sized
 *       configurations (within 9 % of it on each) and are checked by {@code MemoryBudgetTest} on others. With the
 *       engine's fused GELU (on by default where the JDK's Vector API is there) the first coefficient is 23: the
 *       GELU's two [T, 4D] intermediates per block no longer live until the backward pass (then within 16 %, the
 *       estimate above the engine's). With the fused attention ({@code attention}, also on by default there) the
 *       first coefficient is 5 lower and the second 0.3: the head-major copies of q, k, v, the scores S and their
 *       gradients are no longer made (chosen on {@code MemoryBudgetTest}'s configurations, whose engine buffers
 *       shrank by 8-31 %: within 17 % of the engine there, the estimate mostly above). The configurations were
 *       fitted with libnd4j's {@code layer_norm} ({@code layerNormEps 0}); a LayerNorm with an epsilon keeps as
 *       little with the engine's fused {@code layernorm} (measured within 1 % of the student's live peak of
 *       {@code layerNormEps 0}, the engine's buffers 3-5 % below), and about 10 % more of the student's live peak
 *       without it. All of this counts buffers reused by exact length; the engine's default arena holds
 *       {@link #ARENA_SHARE} of it;</li>
 *   <li>the loader's prefetched batches, and the largest single array (the global views' attention scores
 *       {@code [2B, H, N, N]}), which must itself fit.</li>
 * </ul>
 * What this JVM allows natively: the smallest of JavaCPP's {@code maxbytes}, its {@code maxphysicalbytes} minus the
 * heap, and the machine's memory minus the heap.
 *
 * <pre>{@code
 * MemoryBudget b = MemoryBudget.estimate(MugsConfig.vitSmall());
 * System.out.println(b.describe());
 * MemoryBudget.requireFits(config);   // IllegalArgumentException with one line when it does not
 * }</pre>
 *
 * @param parameterBytes  student, teacher and the optimiser's moments
 * @param stateBytes      queues, memories, centre
 * @param activationBytes the engine's buffers for one step at the configured batch
 * @param loaderBytes     the prefetched batches of crops
 * @param largestArrayBytes the largest single array (the global views' attention scores)
 */
public record MemoryBudget(long parameterBytes, long stateBytes, long activationBytes, long loaderBytes,
                           long largestArrayBytes) {

    /** The native libraries' own footprint (ND4J, OpenBLAS, oneDNN) before any array. */
    static final long BASE_BYTES = 300L << 20;

    /** Per image and per unit of each term, in floats: fitted to the engine's report (see the class comment). */
    static final double PER_TOKEN_WIDTH_BLOCK = 31;
    /**
     * The same with the engine's fused GELU ({@code Kernels.selected()} holds {@code gelu}): its forward
     * intermediates, two [T, 4D] per block, no longer live until the backward pass.
     */
    static final double PER_TOKEN_WIDTH_BLOCK_FUSED_GELU = PER_TOKEN_WIDTH_BLOCK - 8;
    /**
     * The reductions with the engine's fused attention ({@code Kernels.selected()} holds {@code attention}): no
     * head-major copies of q, k, v or of their gradients, no S, dP or dS arrays.
     */
    static final double PER_TOKEN_WIDTH_BLOCK_FUSED_ATTENTION_SAVING = 5;
    static final double PER_ATTENTION_ENTRY_BLOCK = 3.1;
    static final double PER_ATTENTION_ENTRY_BLOCK_FUSED_ATTENTION = 0.3;
    static final double PER_TOKEN_WIDTH = 57;
    /**
     * The coefficients above count buffers reused only between values of the same length; the engine's arena (its
     * default) lets values of any length share memory and holds about this share of that (measured on
     * {@code MemoryBudgetTest}'s three configurations: 0.57-0.73; ViT-S/16 at batch 4: 1.83 against 2.11 GB, 0.87).
     */
    static final double ARENA_SHARE = 0.63;
    static final double PER_VIEW_HEAD_WIDTH = 18.5;

    /** The estimate of {@code c} with the default run settings. */
    public static MemoryBudget estimate(MugsConfig c) {
        return estimate(c, RunSettings.defaults());
    }

    /** The estimate of {@code c} run with {@code run} (its loader threads set the prefetched batches). */
    public static MemoryBudget estimate(MugsConfig c, RunSettings run) {
        VitConfig vit = c.vit();
        MultiCropConfig crops = c.crops();
        long d = vit.embedDim();
        long student = vit.parameterCount();
        long teacher = vit.parameterCount();
        boolean instance = c.lossWeights().instanceEnabled();
        boolean localGroup = c.lossWeights().localGroupEnabled();
        boolean group = c.lossWeights().groupEnabled();
        long projection = d * c.instanceHidden() + (long) c.instanceHidden() * c.instanceHidden()
                + (long) c.instanceHidden() * c.instanceOut() + (c.useBnInHead() ? 4L * c.instanceHidden() : 0);
        long predictor = 2L * c.instanceOut() * c.predictorHidden();
        if (instance) {
            student += projection + predictor;
            teacher += projection;
        }
        if (localGroup) {
            long aggregator = c.aggregatorDepth() * (12 * d * d + 13 * d) + 2 * d;
            student += aggregator + projection + predictor;
            teacher += aggregator + projection;
        }
        if (group) {
            long gh = c.groupHidden();
            long head = d * gh + gh + gh * gh + gh + gh * c.groupBottleneck() + c.groupBottleneck()
                    + (long) c.prototypes() * c.groupBottleneck() + c.prototypes() + (c.useBnInHead() ? 4 * gh : 0);
            student += head;
            teacher += head;
        }
        long parameters = 4 * (3 * student + teacher);   // student, its two AdamW moments, teacher
        long state = 4 * (2L * c.queueSize() * c.instanceOut() + 4L * c.memorySize() * d + c.prototypes());

        long ng = tokens(crops.globalSize(), vit.patchSize());
        long nl = tokens(crops.localSize(), vit.patchSize());
        int locals = crops.localCrops();
        double t = 2.0 * ng + (double) locals * nl;
        double s = 2.0 * ng * ng + (double) locals * nl * nl;
        double heads = c.instanceHidden() + c.groupHidden() + c.predictorHidden() + c.prototypes();
        java.util.Set<String> kernels = io.mugs.engine.Kernels.selected();
        double perBlock = kernels.contains("gelu") ? PER_TOKEN_WIDTH_BLOCK_FUSED_GELU : PER_TOKEN_WIDTH_BLOCK;
        double perEntry = PER_ATTENTION_ENTRY_BLOCK;
        if (kernels.contains("attention")) {
            perBlock -= PER_TOKEN_WIDTH_BLOCK_FUSED_ATTENTION_SAVING;
            perEntry = PER_ATTENTION_ENTRY_BLOCK_FUSED_ATTENTION;
        }
        double perImage = perBlock * d * t * vit.depth()
                + perEntry * vit.numHeads() * s * vit.depth()
                + PER_TOKEN_WIDTH * d * t + PER_VIEW_HEAD_WIDTH * (2 + locals) * heads;
        if (!io.mugs.engine.GraphExecutor.exactBufferReuse()) {
            perImage *= ARENA_SHARE;
        }
        long activations = saturated(4 * perImage * c.batchSize());
        double pixels = crops.channels() * (4.0 * crops.globalSize() * crops.globalSize()
                + (double) locals * crops.localSize() * crops.localSize());
        long loader = saturated(4 * pixels * c.batchSize() * (2.0 * run.workers() + 1));
        long largest = saturated(4.0 * 2 * c.batchSize() * vit.numHeads() * ng * ng);
        return new MemoryBudget(parameters, state, activations, loader, largest);
    }

    private static long tokens(int size, int patch) {
        long side = size / patch;
        return side * side + 1;
    }

    private static long saturated(double bytes) {
        return bytes >= Long.MAX_VALUE / 2.0 ? Long.MAX_VALUE / 2 : (long) bytes;
    }

    /** Everything, with the native libraries' own footprint. */
    public long totalBytes() {
        return BASE_BYTES + parameterBytes + stateBytes + activationBytes + loaderBytes;
    }

    /** One line: the total and its parts. */
    public String describe() {
        return String.format(Locale.ROOT, "about %s (parameters and optimiser %s, queues and memories %s, "
                + "activations %s, prefetched batches %s)", gb(totalBytes()), gb(parameterBytes), gb(stateBytes),
                gb(activationBytes), gb(loaderBytes));
    }

    /** Refuses {@code config} when it does not fit this JVM ({@link #allowedBytes()}). */
    public static MemoryBudget requireFits(MugsConfig config, RunSettings run) {
        return requireFits(config, run, allowedBytes());
    }

    /** As {@link #requireFits(MugsConfig, RunSettings, long)} with the default run settings. */
    public static MemoryBudget requireFits(MugsConfig config, long allowed) {
        return requireFits(config, RunSettings.defaults(), allowed);
    }

    /**
     * Refuses {@code config} when its estimate, or its largest single array, exceeds {@code allowed} bytes.
     *
     * @throws IllegalArgumentException one line: what it needs, what is allowed, what to lower
     */
    public static MemoryBudget requireFits(MugsConfig config, RunSettings run, long allowed) {
        MemoryBudget b = estimate(config, run);
        if (b.totalBytes() <= allowed && b.largestArrayBytes <= allowed) {
            return b;
        }
        String remedy;
        if (b.largestArrayBytes > allowed / 2 || b.activationBytes >= b.parameterBytes + b.stateBytes) {
            remedy = String.format(Locale.ROOT, "lower --batch (now %d) or the crop sizes (global %d, local %d px; "
                    + "the attention scores of the global views alone take %s)", config.batchSize(),
                    config.crops().globalSize(), config.crops().localSize(), gb(b.largestArrayBytes));
        } else if (b.stateBytes > b.parameterBytes) {
            remedy = String.format(Locale.ROOT, "lower queueSize (%d) or memorySize (%d)", config.queueSize(),
                    config.memorySize());
        } else {
            remedy = String.format(Locale.ROOT, "choose a smaller model (vit.embedDim %d, vit.depth %d) or smaller "
                    + "heads", config.vit().embedDim(), config.vit().depth());
        }
        throw new IllegalArgumentException(String.format(Locale.ROOT, "this configuration needs %s, this JVM "
                + "allows %s of native memory: %s, or give the JVM more (MUGS_JAVA_OPTS with "
                + "-Dorg.bytedeco.javacpp.maxbytes and maxphysicalbytes)", b.describe(), gb(allowed), remedy));
    }

    /**
     * Native bytes this JVM may use: the smallest of JavaCPP's {@code maxbytes}, {@code maxphysicalbytes} minus the
     * heap, and the machine's memory minus the heap (those JavaCPP does not bound count as unbounded).
     */
    public static long allowedBytes() {
        long heap = Runtime.getRuntime().maxMemory();
        long allowed = Long.MAX_VALUE;
        try {
            var os = (com.sun.management.OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean();
            allowed = Math.max(0, os.getTotalMemorySize() - heap);
        } catch (ClassCastException | UnsupportedOperationException e) {
            // another JVM: the machine's size is unknown
        }
        long maxBytes = javaCpp("maxBytes");
        long maxPhysical = javaCpp("maxPhysicalBytes");
        if (maxBytes > 0) {
            allowed = Math.min(allowed, maxBytes);
        }
        if (maxPhysical > 0) {
            allowed = Math.min(allowed, Math.max(0, maxPhysical - heap));
        }
        return allowed;
    }

    private static long javaCpp(String getter) {
        try {
            Method m = Class.forName("org.bytedeco.javacpp.Pointer").getMethod(getter);
            return (long) m.invoke(null);
        } catch (ReflectiveOperationException | LinkageError e) {
            return 0;
        }
    }

    static String gb(long bytes) {
        return bytes >= (1L << 30) / 10 ? String.format(Locale.ROOT, "%.1f GB", bytes / (double) (1L << 30))
                : String.format(Locale.ROOT, "%d MB", bytes >> 20);
    }
}
