package io.mugs.examples;

import io.mugs.core.RuntimeSettings;
import io.mugs.engine.GraphExecutor;
import io.mugs.vit.Initializers;
import io.mugs.vit.VisionTransformer;
import io.mugs.vit.VitConfig;
import io.mugs.vit.VitOutputs;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.SplittableRandom;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * Prints the ViT's forward and forward+backward throughput (images/s and GFLOP/s from the analytic FLOP
 * count), ND4J's large-matmul GFLOP/s measured in the same run, and their ratio.
 *
 * <pre>
 * mvn -q -B package -DskipTests exec:exec -Dexec.mainClass=io.mugs.examples.VitBenchmark \
 *     -Dexec.args="--preset tiny28 --batch 64"
 * </pre>
 */
public final class VitBenchmark {

    private static final String USAGE = """
            VitBenchmark: ViT forward / forward+backward throughput against ND4J's matmul peak.
              --preset NAME   tiny28 (ViT-Ti widths, patch 4, 28 px grayscale; default), tiny28-depth6 (dim
                              192, depth 6, patch 4, 28 px grayscale), small224, base224; the options below
                              override it
              --dim D --depth L --heads H --patch P --image S --channels C   (override the preset)
              --ln-eps E      LayerNorm epsilon (default 1e-6; 0 selects ND4J's fused layer_norm)
              --profile       also print wall time per op type
              --engine E      planned (default: io.mugs.engine's executor) or samediff (SameDiff's own session)
              --torch         also time the PyTorch twin (scripts/vit_torch_twin.py, /usr/bin/python3 with OpenBLAS)
                              on the same shapes with 1 and 2 threads, and print the ratios
              --batch B       images per step (default 64)
              --iters N       timed iterations after 2 warm-up ones (default 5)
              --matmul N      side of the square matmul for the peak figure (default 2048)
            """;

    private VitBenchmark() {
    }

    public static void main(String[] argv) {
        RuntimeSettings.apply();   // the launcher\'s JVM settings when run from an IDE
        Args a = new Args(argv, Set.of("preset", "dim", "depth", "heads", "patch", "image", "channels", "batch",
                "iters", "matmul", "ln-eps", "profile", "engine", "torch"), USAGE);
        VitConfig base = switch (a.get("preset", "tiny28")) {
            case "tiny28" -> VitConfig.tiny(4).toBuilder().imageSize(28).inChannels(1).build();
            case "tiny28-depth6" -> VitConfig.tiny(4).toBuilder().imageSize(28).inChannels(1).depth(6).build();
            case "small224" -> VitConfig.small(16);
            case "base224" -> VitConfig.base(16);
            default -> throw new IllegalArgumentException("unknown preset " + a.get("preset", "") + "\n" + USAGE);
        };
        VitConfig cfg = base.toBuilder().embedDim(a.getInt("dim", base.embedDim()))
                .depth(a.getInt("depth", base.depth())).numHeads(a.getInt("heads", base.numHeads()))
                .patchSize(a.getInt("patch", base.patchSize())).imageSize(a.getInt("image", base.imageSize()))
                .inChannels(a.getInt("channels", base.inChannels()))
                .layerNormEps(a.getDouble("ln-eps", base.layerNormEps())).build();
        int batch = a.getInt("batch", 64);
        int iters = a.getInt("iters", 5);
        int size = cfg.imageSize();

        System.out.printf("config: %s%nbatch %d, %d px, backend %s, OMP_NUM_THREADS=%s%n", cfg, batch, size,
                Nd4j.getExecutioner().getEnvironmentInformation().get("backend"), System.getenv("OMP_NUM_THREADS"));
        double peak = matmulGflops(a.getInt("matmul", 2048));
        System.out.printf("matmul peak: %.1f GFLOP/s%n", peak);

        SameDiff sd = SameDiff.create();
        VisionTransformer vit = new VisionTransformer(sd, "", cfg, DataType.FLOAT, 0);
        SDVariable x = sd.placeHolder("x", DataType.FLOAT, -1, cfg.inChannels(), size, size);
        VitOutputs out = vit.apply(x, size, size, VisionTransformer.Mode.INFERENCE, "bench");
        SDVariable loss = sd.mean(out.cls().mul(out.cls())).add(sd.mean(out.patchMean()));
        sd.setLossVariables(loss);
        INDArray images = Initializers.normal(new SplittableRandom(1), DataType.FLOAT, batch, cfg.inChannels(),
                size, size);
        Map<String, INDArray> feed = new HashMap<>(Map.of("x", images));
        List<String> params = vit.parameterNames();

        if (a.get("engine", "planned").equals("samediff")) {
            System.setProperty("mugs.engine", "samediff");
        }
        GraphExecutor forward = GraphExecutor.outputs(sd, List.of(out.cls().name()));
        GraphExecutor training = GraphExecutor.gradients(sd, List.of(), params);
        System.out.printf("engine: %s%n", forward.planned() ? "planned" : "samediff");
        double flops = cfg.forwardFlops(size) * batch;
        double fwd = time(iters, () -> forward.run(feed));
        double train = time(iters, () -> training.run(feed));
        report("forward", fwd, batch, flops, peak);
        report("forward+backward", train, batch, 3 * flops, peak);
        if (a.get("torch", null) != null) {
            TorchTwin.compare(cfg, batch, iters, fwd, train);
        }
        if (a.get("profile", null) != null) {
            OpProfile profile = new OpProfile();
            sd.setListeners(profile);
            long s = System.nanoTime();
            forward.run(feed);
            System.out.printf("forward wall %.1f ms, %s", (System.nanoTime() - s) / 1e6, profile.report(12));
            profile.reset();
            s = System.nanoTime();
            training.run(feed);
            System.out.printf("forward+backward wall %.1f ms, %s", (System.nanoTime() - s) / 1e6, profile.report(25));
            sd.setListeners();
        }
        long rss = peakRssBytes();
        System.out.printf("peak RSS: %.2f GB%n", rss / 1e9);
    }

    private static void report(String what, double seconds, int batch, double flops, double peak) {
        double gflops = flops / seconds / 1e9;
        System.out.printf("%-17s %8.1f ms/step  %8.1f images/s  %6.1f GFLOP/s  = %4.1f%% of matmul%n", what,
                seconds * 1e3, batch / seconds, gflops, 100 * gflops / peak);
    }

    /** Median seconds of {@code iters} timed runs after two warm-up runs, with a GC between runs. */
    static double time(int iters, Runnable r) {
        r.run();
        r.run();
        double[] t = new double[iters];
        for (int i = 0; i < iters; i++) {
            System.gc();
            long s = System.nanoTime();
            r.run();
            t[i] = (System.nanoTime() - s) / 1e9;
        }
        Arrays.sort(t);
        return t[iters / 2];
    }

    /**
     * Best-of-5 GFLOP/s of an n x n x n fp32 matmul, the higher of the two paths ND4J offers: the BLAS call behind
     * {@code INDArray.mmul} and SameDiff's {@code matmul} op (which a oneDNN build routes to oneDNN).
     */
    static double matmulGflops(int n) {
        INDArray a = Nd4j.rand(DataType.FLOAT, n, n);
        INDArray b = Nd4j.rand(DataType.FLOAT, n, n);
        INDArray c = Nd4j.create(DataType.FLOAT, n, n);
        double blas = best(5, () -> a.mmuli(b, c));
        SameDiff sd = SameDiff.create();
        SDVariable prod = sd.mmul(sd.constant(a), sd.constant(b));
        double graph = best(5, () -> prod.eval());
        System.out.printf("ND4J matmul %d^3 fp32: BLAS %.1f GFLOP/s, SameDiff op %.1f GFLOP/s (best of 5)%n", n,
                2.0 * n * n * n / blas / 1e9, 2.0 * n * n * n / graph / 1e9);
        return 2.0 * n * n * n / Math.min(blas, graph) / 1e9;
    }

    private static double best(int iters, Runnable r) {
        r.run();
        double min = Double.MAX_VALUE;
        for (int i = 0; i < iters; i++) {
            long s = System.nanoTime();
            r.run();
            min = Math.min(min, (System.nanoTime() - s) / 1e9);
        }
        return min;
    }

    static long peakRssBytes() {
        try {
            for (String line : java.nio.file.Files.readAllLines(java.nio.file.Path.of("/proc/self/status"))) {
                if (line.startsWith("VmHWM:")) {
                    return Long.parseLong(line.replaceAll("\\D", "")) * 1024;
                }
            }
        } catch (java.io.IOException | NumberFormatException e) {
            return -1;
        }
        return -1;
    }
}
