package io.mugs.engine;

import java.util.LinkedHashSet;
import java.util.Set;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.ops.DynamicCustomOp;

/**
 * The kernel seam: which implementation computes a graph op on the loaded backend. In order:
 * <ol>
 *   <li>on the CPU backend, a Java kernel of {@link CpuKernels} working on the arrays' native memory, when one
 *       covers the case and is switched on;</li>
 *   <li>on every backend, a sequence of native ops from {@link Rewrites} (the backend-neutral fallback);</li>
 *   <li>otherwise ({@code null}) the op's own libnd4j implementation.</li>
 * </ol>
 * The CUDA backend therefore runs no Java kernel. {@code -Dmugs.engine.javaKernels} selects the Java kernels:
 * {@code default} (the measured winners, {@link #DEFAULT_OPS}; the fused GELU, attention, LayerNorm and exponential
 * only with the Vector API), {@code all},
 * {@code none}, or a comma-separated list of op names ({@code softmax,softmax_bp,layer_norm,layer_norm_bp,matmul,
 * matmul_bp}), {@code gelu} (the exact GELU and its backward fused into one kernel each way, {@link GeluFusion}) and
 * {@code layernorm} (the LayerNorm with an epsilon, written from primitive ops, and its backward fused into one
 * kernel each way, {@link LayerNormFusion}; {@code layer_norm} is libnd4j's own op, which has no epsilon) and
 * {@code attention} (multi-head self-attention and its backward fused likewise, {@link AttentionFusion}) and
 * {@code update} (AdamW's step and the teacher EMA in one pass over each parameter tensor, {@link ParameterKernels};
 * not a graph op: the optimiser and the EMA ask for it) and {@code exp} (libnd4j's legacy element-wise exponential,
 * FLOAT on the Vector API, {@link Exponential}) and {@code columns} (the mean or sum over leading axes, and the
 * backward of a tile along them, {@link ColumnReduction}); {@code layer_norm} and {@code layer_norm_bp} run on the
 * LayerNorm's Vector API kernels for FLOAT ({@link RowLayerNorm#nativeForm}).
 * {@code default} may appear in a list.
 *
 * <pre>{@code
 * java -Dmugs.engine.javaKernels=none ...          # libnd4j only, as on CUDA
 * java -Dmugs.engine.javaKernels=softmax,softmax_bp ...
 * java -Dmugs.engine.javaKernels=matmul,matmul_bp ... # the defaults without the fused GELU and attention
 * java -Dmugs.engine.javaKernels=matmul,matmul_bp,gelu,attention,update,exp ... # the defaults but the fused LayerNorm
 * }</pre>
 */
public final class Kernels {

    /** Op names with a Java kernel on the CPU backend. */
    public static final Set<String> JAVA_OPS = Set.of("softmax", "softmax_bp", "layer_norm", "layer_norm_bp", "matmul",
            "matmul_bp", "gelu", "layernorm", "attention", "update", "exp", "columns", "log_softmax", "log_softmax_bp");

    /**
     * The Java kernels on by default: those that measured faster than their fallback in {@code KernelBenchmark}
     * and in the whole step (docs/performance.md). Softmax and layer norm in plain Java lost to libnd4j's vectorised
     * loops on this machine and stay selectable only. {@code gelu} and {@code attention} are part of the default only
     * where their FLOAT kernels run on the JDK's Vector API (the JVM started with {@code --add-modules
     * jdk.incubator.vector}, as the launchers do): their plain-Java versions lost to libnd4j. {@code layernorm}
     * (graphs with a LayerNorm epsilon only, {@code vit.layerNormEps != 0}; Vector API only, like them): 1.3-2.2x
     * faster than its op sequence in {@code KernelBenchmark}, the same ViT-S step time, and 0.12 GB less memory for
     * ViT-S/16 at batch 4, since the centred input and the normalised value are no longer kept for the backward pass
     * (docs/performance.md, "LayerNorm fused" and "One arena per plan"). {@code update} (plain Java, no Vector API
     * needed) made the update phase 40 % shorter and the step 7.5 % faster. {@code exp} (Vector API only) ran the
     * InfoNCE exponentials 1.7x faster in {@code KernelBenchmark}, about 2 % of the step, inside the whole step's noise
     * (docs/performance.md, "The exponential"). {@code columns} (plain Java): the heads' batch statistics, a mean over
     * the batch axis of [192, 512], in 63 us of CPU time against libnd4j's 218 (3.5x; about 0.8 % of the {@code fm}
     * step, {@link ColumnReduction}). {@code layer_norm} and {@code layer_norm_bp} (libnd4j's own LayerNorm without
     * epsilon, the fm presets' {@code layerNormEps 0}; Vector API only: their plain-Java versions lost): the
     * {@code layernorm} kernels with an epsilon of 0, 1.35-1.39x libnd4j's ops on [1088, 96] and [3152, 384] forward
     * and backward in {@code KernelBenchmark}. {@code log_softmax} and {@code log_softmax_bp} (Vector API only: the
     * exponentials in float lanes): the group loss over 1,024 prototypes, 1.31x in {@code KernelBenchmark}.
     */
    public static final Set<String> DEFAULT_OPS = Set.of("matmul", "matmul_bp", "gelu", "attention", "update", "exp",
            "layernorm", "columns", "layer_norm", "layer_norm_bp", "log_softmax", "log_softmax_bp");

    private static volatile Set<String> enabled;

    private Kernels() {
    }

    /** The kernel for {@code op} on this backend, or {@code null} for the op's own native implementation. */
    static Kernel forOp(DynamicCustomOp op, INDArray[] args, INDArray[] outputs, boolean[] planned,
                        Rewrites.Scratch scratch) {
        if (op instanceof FusedGeluOp gelu) {
            return fusedGelu(gelu, args, outputs);
        }
        if (op instanceof FusedLayerNormOp layerNorm) {
            return fusedLayerNorm(layerNorm, args, outputs);
        }
        if (op instanceof FusedAttentionOp attention) {
            return fusedAttention(attention, args, outputs);
        }
        Set<String> java = enabledJavaOps();
        if (java.contains("columns") && op.opName().equals("tile_bp")) {
            Kernel k = ColumnReduction.tileBackward(args, outputs);
            if (k != null) {
                return k;
            }
        }
        if (!java.isEmpty()) {
            Kernel k = CpuKernels.forOp(op, args, outputs, java);
            if (k != null) {
                return k;
            }
        }
        return Rewrites.forOp(op, args, outputs, planned, scratch);
    }

    /**
     * The kernel for a legacy (non-custom) op, or {@code null} for its own native implementation: {@code exp}, FLOAT,
     * on the Vector API ({@link Exponential}), and the mean or sum over leading axes ({@link ColumnReduction}).
     */
    static Kernel forLegacyOp(org.nd4j.linalg.api.ops.Op op, INDArray[] args, INDArray[] outputs) {
        if (args.length == 1 && outputs.length == 1 && "exp".equals(op.opName())
                && enabledJavaOps().contains("exp")) {
            return Exponential.forward(args[0], outputs[0]);
        }
        if (enabledJavaOps().contains("columns")) {
            return ColumnReduction.forOp(op, args, outputs);
        }
        return null;
    }

    /** A fused GELU's kernel: only planned when the {@code gelu} kernel is on, so it has no native fallback. */
    private static Kernel fusedGelu(FusedGeluOp op, INDArray[] args, INDArray[] outputs) {
        for (INDArray a : args) {
            if (!NativeRows.supports(a) || a.length() != outputs[0].length() || a.dataType() != outputs[0].dataType()) {
                throw new UnsupportedGraphException("the fused GELU needs contiguous FLOAT or DOUBLE arrays of one "
                        + "shape, got " + java.util.Arrays.toString(a.shape()) + " " + a.dataType()
                        + "; leave gelu out of -Dmugs.engine.javaKernels");
            }
        }
        return op.backward ? ExactGelu.backward(args, outputs[0]) : ExactGelu.forward(args, outputs[0]);
    }

    /** A fused attention's kernel: only planned when the {@code attention} kernel is on, so no native fallback. */
    private static Kernel fusedAttention(FusedAttentionOp op, INDArray[] args, INDArray[] outputs) {
        for (INDArray a : args) {
            if (!NativeRows.supports(a) || a.dataType() != outputs[0].dataType()) {
                throw new UnsupportedGraphException("the fused attention needs contiguous FLOAT or DOUBLE arrays of "
                        + "one type, got " + java.util.Arrays.toString(a.shape()) + " " + a.dataType()
                        + "; leave attention out of -Dmugs.engine.javaKernels");
            }
        }
        long width = 3L * op.heads * op.headDim;
        if (args[0].rank() != 2 || args[0].size(1) != width || args[0].size(0) % op.tokens != 0) {
            throw new UnsupportedGraphException("the fused attention needs qkv [B*" + op.tokens + ", " + width
                    + "], got " + java.util.Arrays.toString(args[0].shape())
                    + "; leave attention out of -Dmugs.engine.javaKernels");
        }
        if (op.backward) {
            return Attention.backward(args, outputs[0], op.tokens, op.heads, op.headDim, op.scale);
        }
        return Attention.forward(args, outputs[0], outputs.length > 1 ? outputs[1] : null, op.tokens, op.heads,
                op.headDim, op.scale);
    }

    /**
     * A fused LayerNorm's kernel: only planned when the {@code layernorm} kernel is on, so it has no native fallback.
     */
    private static Kernel fusedLayerNorm(FusedLayerNormOp op, INDArray[] args, INDArray[] outputs) {
        INDArray x = args[0];
        boolean fits = x.rank() == 2 && x.size(1) > 0;
        long n = fits ? x.size(0) : 0;
        long d = fits ? x.size(1) : 0;
        for (int i = 0; i < args.length && fits; i++) {
            long expected = i == 1 || i == 2 ? d : op.backward && (i == 3 || i == 4) ? n : n * d;
            fits = NativeRows.supports(args[i]) && args[i].length() == expected && args[i].dataType() == x.dataType();
        }
        for (INDArray o : outputs) {
            fits &= NativeRows.supports(o) && o.dataType() == x.dataType();
        }
        if (!fits) {
            throw new UnsupportedGraphException("the fused LayerNorm needs contiguous FLOAT or DOUBLE arrays, x [N, D]"
                    + " and gain and bias of D elements, got x " + java.util.Arrays.toString(x.shape()) + " "
                    + x.dataType() + "; leave layernorm out of -Dmugs.engine.javaKernels");
        }
        return op.backward ? RowLayerNorm.backward(args, outputs) : RowLayerNorm.forward(args, outputs, op.eps);
    }

    /**
     * Compiles the selected Vector API kernels now, one after the other on the calling thread (each is otherwise
     * warmed up when a plan first needs it). Call it before starting threads that build plans at the same time
     * (data-parallel replicas): warm-ups running side by side on both cores left the C2 compiler's queue long enough
     * that it compiled a kernel without a profile, and that code ran the Vector API's allocating Java fallback (the
     * 2-replica fm step 1.5x slower, in about one run in three). Does nothing on CUDA or without the Vector API.
     */
    public static void warmUp() {
        Set<String> java = enabledJavaOps();
        if (!ExactGelu.VECTOR || java.isEmpty()) {
            return;
        }
        if (java.contains("gelu")) {
            GeluVectors.warmUp();
        }
        if (java.contains("exp") || java.contains("log_softmax") || java.contains("log_softmax_bp")) {
            ExpVectors.warmUp();
        }
        if (java.contains("layernorm") || java.contains("layer_norm") || java.contains("layer_norm_bp")) {
            LayerNormVectors.warmUp();
        }
        if (java.contains("attention")) {
            AttentionVectors.warmUp();
        }
    }

    /** The Java kernels switched on: none on CUDA, otherwise as {@code mugs.engine.javaKernels} says. */
    static Set<String> enabledJavaOps() {
        Set<String> e = enabled;
        if (e == null) {
            e = Backend.isCuda() ? Set.of() : parse(System.getProperty("mugs.engine.javaKernels", "default"));
            enabled = e;
        }
        return e;
    }

    static Set<String> parse(String setting) {
        String s = setting.trim();
        if (s.equalsIgnoreCase("all")) {
            return JAVA_OPS;
        }
        if (s.equalsIgnoreCase("default")) {
            return defaults();
        }
        if (s.equalsIgnoreCase("none") || s.isEmpty()) {
            return Set.of();
        }
        Set<String> out = new LinkedHashSet<>();
        for (String name : s.split(",")) {
            String n = name.trim();
            if (n.equalsIgnoreCase("default")) {
                out.addAll(defaults());
                continue;
            }
            if (!JAVA_OPS.contains(n)) {
                throw new IllegalArgumentException("mugs.engine.javaKernels: no Java kernel for \"" + n
                        + "\"; use default, all, none or some of " + new java.util.TreeSet<>(JAVA_OPS));
            }
            out.add(n);
        }
        return Set.copyOf(out);
    }

    /**
     * {@link #DEFAULT_OPS}, without {@code gelu}, {@code attention}, {@code exp}, {@code layernorm}, {@code layer_norm},
     * {@code layer_norm_bp}, {@code log_softmax} and {@code log_softmax_bp} when the Vector API is not there.
     */
    static Set<String> defaults() {
        if (ExactGelu.VECTOR) {
            return DEFAULT_OPS;
        }
        Set<String> out = new LinkedHashSet<>(DEFAULT_OPS);
        out.remove("gelu");
        out.remove("attention");
        out.remove("exp");
        out.remove("layernorm");
        out.remove("layer_norm");
        out.remove("layer_norm_bp");
        out.remove("log_softmax");
        out.remove("log_softmax_bp");
        return Set.copyOf(out);
    }

    /**
     * Chooses the Java kernels of plans built from now on, as {@code mugs.engine.javaKernels} does ({@code null}: back
     * to the property); ignored on CUDA. For benchmarks comparing a kernel with its fallback.
     */
    public static void select(String setting) {
        enabled = setting == null ? null : Backend.isCuda() ? Set.of() : parse(setting);
    }

    /** The op names whose Java kernel plans built now use (empty on CUDA). */
    public static Set<String> selected() {
        return enabledJavaOps();
    }
}
