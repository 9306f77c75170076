package io.mugs.examples;

import io.mugs.core.RuntimeSettings;
import io.mugs.engine.GraphExecutor;
import io.mugs.engine.Kernels;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Supplier;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * Each Java CPU kernel against its fallback (libnd4j's op, or the native sequence of {@code Rewrites}), in the
 * shapes the training step uses: a forward and backward of a small graph through the planned executor, with the
 * kernel on and off in alternating rounds (so that a busy machine slows both alike), median ms per run of each.
 *
 * <pre>
 * mvn -q -B package -DskipTests exec:exec -Dexec.mainClass=io.mugs.examples.KernelBenchmark -Dexec.args="--rounds 5"
 * </pre>
 */
public final class KernelBenchmark {

    private static final String USAGE = """
            KernelBenchmark: Java CPU kernels against their libnd4j fallback, alternating.
              --rounds R   alternating rounds (default 5)
              --runs N     timed runs per round and setting (default 20)
              --warmup W   untimed runs per setting before the rounds, so that the JIT has compiled the Java
                           kernels (default 50)
              --only TEXT  only the cases whose name contains TEXT (e.g. gelu)
            """;

    private KernelBenchmark() {
    }

    /** A graph with a scalar loss, the feed for it, and the Java kernels it exercises. */
    private record Case(String name, String kernels, Supplier<SameDiff> graph, Map<String, INDArray> feed) {
    }

    public static void main(String[] argv) {
        RuntimeSettings.apply();
        Args a = new Args(argv, Set.of("rounds", "runs", "warmup", "only"), USAGE);
        int rounds = a.getInt("rounds", 5);
        int runs = a.getInt("runs", 20);
        int warmup = a.getInt("warmup", 50);
        List<Case> cases = new ArrayList<>();
        cases.add(attention("attention fm local [128, 3, 5, 32]", 128, 3, 5, 32));
        cases.add(new Case("  the same, products only", "matmul,matmul_bp", cases.get(0).graph(),
                cases.get(0).feed()));
        cases.add(attention("attention fm global [64, 3, 17, 32]", 64, 3, 17, 32));
        cases.add(new Case("  the same, products only", "matmul,matmul_bp", cases.get(2).graph(),
                cases.get(2).feed()));
        cases.add(new Case("  the same, softmax only", "softmax,softmax_bp", cases.get(2).graph(),
                cases.get(2).feed()));
        for (long[] s : new long[][] {{64, 17}, {128, 5}, {192, 9}}) {
            Case fused = blockAttention("fused attention fm [" + s[0] + "*" + s[1] + ", 3 x 32]", s[0], 3, s[1], 32);
            cases.add(fused);
            cases.add(new Case("  the same, products only", "matmul,matmul_bp", fused.graph(), fused.feed()));
        }
        cases.add(softmaxCase("softmax head [192, 3, 9, 9]", 192, 3, 9, 9));
        cases.add(softmaxCase("softmax ViT-S [8, 6, 197, 197]", 8, 6, 197, 197));
        cases.add(layerNorm("layer norm [1088, 96]", 1088, 96));
        cases.add(layerNorm("layer norm [3152, 384]", 3152, 384));
        cases.add(layerNormEps("LayerNorm eps fm global [1088, 96]", 1088, 96));
        cases.add(layerNormEps("LayerNorm eps fm local [640, 96]", 640, 96));
        cases.add(layerNormEps("LayerNorm eps ViT-S [3152, 384]", 3152, 384));
        cases.add(gelu("exact GELU fm global [1088, 384]", 1088, 384));
        cases.add(gelu("exact GELU fm local [640, 384]", 640, 384));
        cases.add(exp("exp InfoNCE fm [192, 4096]", 192, 4096));
        cases.add(columns("batch statistics fm head [192, 512]", 192, 512));
        cases.add(logSoftmax("log-softmax group loss fm [192, 1024]", 192, 1024));
        String only = a.get("only", "");
        cases.removeIf(c -> !c.name().contains(only));
        System.out.printf("%-40s %-28s %10s %10s %7s%n", "case (fwd+bwd, FLOAT)", "Java kernels", "fallback",
                "Java", "ratio");
        for (Case c : cases) {
            time(c, "none", warmup);
            time(c, c.kernels(), warmup);
            double[][] ms = new double[2][rounds];
            for (int r = 0; r < rounds; r++) {
                for (int s = 0; s < 2; s++) {
                    int setting = (r + s) % 2;   // alternate which goes first
                    ms[setting][r] = time(c, setting == 0 ? "none" : c.kernels(), runs);
                }
            }
            double fallback = median(ms[0]);
            double java = median(ms[1]);
            System.out.printf("%-40s %-28s %8.3f ms %7.3f ms %6.2fx   (rounds: fallback %s, Java %s)%n", c.name(),
                    c.kernels(), fallback, java, fallback / java, rounds(ms[0]), rounds(ms[1]));
        }
        Kernels.select(null);
    }

    private static double time(Case c, String kernels, int runs) {
        Kernels.select(kernels);
        SameDiff sd = c.graph().get();
        List<String> params = new ArrayList<>();
        for (SDVariable v : sd.variables()) {
            if (v.getVariableType() == org.nd4j.autodiff.samediff.VariableType.VARIABLE) {
                params.add(v.name());
            }
        }
        try (GraphExecutor exec = GraphExecutor.gradients(sd, List.of("loss"), params)) {
            exec.run(c.feed());
            exec.run(c.feed());
            long start = System.nanoTime();
            for (int i = 0; i < runs; i++) {
                exec.run(c.feed());
            }
            return (System.nanoTime() - start) / 1e6 / runs;
        }
    }

    private static String rounds(double[] ms) {
        StringBuilder sb = new StringBuilder();
        for (double v : ms) {
            sb.append(sb.length() == 0 ? "" : " ").append(String.format("%.3f", v));
        }
        return sb.toString();
    }

    private static double median(double[] v) {
        double[] s = v.clone();
        Arrays.sort(s);
        return s.length % 2 == 1 ? s[s.length / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
    }

    private static INDArray randn(long seed, long... shape) {
        Nd4j.getRandom().setSeed(seed);
        return Nd4j.randn(DataType.FLOAT, shape);
    }

    /** {@code softmax(q k^T / sqrt(d)) v} per head, the loss a weighted sum of it. */
    private static Case attention(String name, long b, long h, long t, long d) {
        Map<String, INDArray> feed = Map.of("q", randn(1, b, h, t, d));
        Supplier<SameDiff> graph = () -> {
            SameDiff sd = SameDiff.create();
            SDVariable q = sd.placeHolder("q", DataType.FLOAT, b, h, t, d);
            SDVariable k = sd.var("k", randn(2, b, h, t, d));
            SDVariable v = sd.var("v", randn(3, b, h, t, d));
            SDVariable p = sd.nn.softmax(sd.mmul(q, k, false, true, false).mul(1 / Math.sqrt(d)), -1);
            SDVariable o = sd.mmul(p, v);
            sd.identity("loss", o.mul(sd.constant(randn(4, b, h, t, d))).sum());
            sd.setLossVariables("loss");
            return sd;
        };
        return new Case(name, "matmul,matmul_bp,softmax,softmax_bp", graph, feed);
    }

    /**
     * The attention as {@code TransformerBlock} writes it, from qkv {@code [B*T, 3D]} (a placeholder plus a bias) to
     * the context {@code [B*T, D]}, the loss a weighted sum: 13 ops forward and 17 backward, or one fused kernel
     * each way ({@code attention}).
     */
    private static Case blockAttention(String name, long b, int h, long t, int dh) {
        long d = (long) h * dh;
        Map<String, INDArray> feed = Map.of("x", randn(15, b * t, 3 * d));
        Supplier<SameDiff> graph = () -> {
            SameDiff sd = SameDiff.create();
            SDVariable qkv = sd.placeHolder("x", DataType.FLOAT, -1, 3 * d).add(sd.var("b", randn(16, 3 * d)));
            SDVariable[] parts = sd.split(qkv, 3, 1);
            SDVariable q = sd.permute(sd.reshape(parts[0].mul(1 / Math.sqrt(dh)), -1, t, h, dh), 0, 2, 1, 3);
            SDVariable k = sd.permute(sd.reshape(parts[1], -1, t, h, dh), 0, 2, 1, 3);
            SDVariable v = sd.permute(sd.reshape(parts[2], -1, t, h, dh), 0, 2, 1, 3);
            SDVariable p = sd.nn.softmax(sd.mmul(q, k, false, true, false), -1);
            SDVariable ctx = sd.reshape(sd.permute(sd.mmul(p, v), 0, 2, 1, 3), -1, d);
            sd.identity("loss", ctx.mul(sd.constant(randn(17, b * t, d))).sum());
            sd.setLossVariables("loss");
            return sd;
        };
        return new Case(name, "attention", graph, feed);
    }

    private static Case softmaxCase(String name, long... shape) {
        Map<String, INDArray> feed = Map.of("x", randn(5, shape));
        Supplier<SameDiff> graph = () -> {
            SameDiff sd = SameDiff.create();
            SDVariable w = sd.var("w", randn(6, shape));
            SDVariable p = sd.nn.softmax(sd.placeHolder("x", DataType.FLOAT, shape).add(w), -1);
            sd.identity("loss", p.mul(sd.constant(randn(7, shape))).sum());
            sd.setLossVariables("loss");
            return sd;
        };
        return new Case(name, "softmax,softmax_bp", graph, feed);
    }

    /**
     * The exact GELU of the ViT's MLP ({@code Layers.gelu}: {@code x/2 · erfc(-x/√2)}) on a pre-activation
     * {@code x + b}, the loss a weighted sum: 4 ops forward and 11 backward, or one fused kernel each way.
     */
    private static Case gelu(String name, long n, long d) {
        Map<String, INDArray> feed = Map.of("x", randn(12, n, d));
        Supplier<SameDiff> graph = () -> {
            SameDiff sd = SameDiff.create();
            SDVariable h = sd.placeHolder("x", DataType.FLOAT, n, d).add(sd.var("b", randn(13, d)));
            SDVariable y = h.mul(sd.math.erfc(h.mul(-1 / Math.sqrt(2)))).mul(0.5);
            sd.identity("loss", y.mul(sd.constant(randn(14, n, d))).sum());
            sd.setLossVariables("loss");
            return sd;
        };
        return new Case(name, "gelu", graph, feed);
    }

    /**
     * The exponential of the InfoNCE losses' shifted logits ({@code exp(x - max)} over the queue, [V*B, K]) on
     * {@code x + b}, the loss a weighted sum: SameDiff's backward computes the exp again, so two exp calls a run.
     */
    private static Case exp(String name, long n, long d) {
        Map<String, INDArray> feed = Map.of("x", randn(20, n, d));
        Supplier<SameDiff> graph = () -> {
            SameDiff sd = SameDiff.create();
            SDVariable h = sd.placeHolder("x", DataType.FLOAT, n, d).add(sd.var("b", randn(21, d))).sub(5);
            sd.identity("loss", sd.math.exp(h).mul(sd.constant(randn(22, n, d))).sum());
            sd.setLossVariables("loss");
            return sd;
        };
        return new Case(name, "exp", graph, feed);
    }

    /** The group loss's log-probabilities over the prototypes on {@code x + b}, the loss a weighted sum. */
    private static Case logSoftmax(String name, long n, long d) {
        Map<String, INDArray> feed = Map.of("x", randn(26, n, d));
        Supplier<SameDiff> graph = () -> {
            SameDiff sd = SameDiff.create();
            SDVariable h = sd.placeHolder("x", DataType.FLOAT, n, d).add(sd.var("b", randn(27, d))).div(0.1);
            sd.identity("loss", sd.nn.logSoftmax(h).mul(sd.constant(randn(28, n, d))).sum());
            sd.setLossVariables("loss");
            return sd;
        };
        return new Case(name, "log_softmax,log_softmax_bp", graph, feed);
    }

    /**
     * The heads' batch-norm statistics (mean and mean of squares over the batch axis, as {@code BatchNorm1d} in
     * training) on {@code x + b}, normalising x, the loss a weighted sum.
     */
    private static Case columns(String name, long n, long d) {
        Map<String, INDArray> feed = Map.of("x", randn(23, n, d));
        Supplier<SameDiff> graph = () -> {
            SameDiff sd = SameDiff.create();
            SDVariable h = sd.placeHolder("x", DataType.FLOAT, n, d).add(sd.var("b", randn(24, d)));
            SDVariable centred = h.sub(h.mean(true, 0));
            SDVariable norm = centred.mul(sd.math.rsqrt(centred.mul(centred).mean(true, 0).add(1e-5)));
            sd.identity("loss", norm.mul(sd.constant(randn(25, n, d))).sum());
            sd.setLossVariables("loss");
            return sd;
        };
        return new Case(name, "columns", graph, feed);
    }

    /**
     * The LayerNorm with an epsilon of the ViT ({@code Layers.layerNorm}, eps 1e-6: 9 ops forward and 13 backward) on
     * {@code x + b}, the loss a weighted sum; or one fused kernel each way.
     */
    private static Case layerNormEps(String name, long n, long d) {
        Map<String, INDArray> feed = Map.of("x", randn(15, n, d));
        Supplier<SameDiff> graph = () -> {
            SameDiff sd = SameDiff.create();
            SDVariable x = sd.placeHolder("x", DataType.FLOAT, n, d).add(sd.var("b0", randn(16, d)));
            SDVariable centred = x.sub(x.mean(true, 1));
            SDVariable variance = centred.mul(centred).mean(true, 1);
            SDVariable y = centred.mul(sd.math.rsqrt(variance.add(1e-6))).mul(sd.var("g", randn(17, d)))
                    .add(sd.var("b", randn(18, d)));
            sd.identity("loss", y.mul(sd.constant(randn(19, n, d))).sum());
            sd.setLossVariables("loss");
            return sd;
        };
        return new Case(name, "layernorm", graph, feed);
    }

    private static Case layerNorm(String name, long n, long d) {
        Map<String, INDArray> feed = Map.of("x", randn(8, n, d));
        Supplier<SameDiff> graph = () -> {
            SameDiff sd = SameDiff.create();
            SDVariable x = sd.placeHolder("x", DataType.FLOAT, n, d);
            SDVariable y = sd.nn.layerNorm(x, sd.var("g", randn(9, d)), sd.var("b", randn(10, d)), false, 1);
            sd.identity("loss", y.mul(sd.constant(randn(11, n, d))).sum());
            sd.setLossVariables("loss");
            return sd;
        };
        return new Case(name, "layer_norm,layer_norm_bp", graph, feed);
    }
}
