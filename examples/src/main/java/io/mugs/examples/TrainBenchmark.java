package io.mugs.examples;

import io.mugs.engine.Backend;

import io.mugs.core.RuntimeSettings;
import io.mugs.core.MugsConfig;
import io.mugs.core.MugsTrainer;
import io.mugs.core.RunSettings;
import io.mugs.core.StepResult;
import io.mugs.data.IdxImageSource;
import io.mugs.data.Image;
import io.mugs.data.ImageSource;
import io.mugs.data.MultiCropAugmentation;
import io.mugs.data.MultiCropBatch;
import io.mugs.data.MultiCropLoader;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.SplittableRandom;

/**
 * Times the full Mugs training step: images/s, the breakdown (data wait, teacher forward, student forward+backward
 * with the losses, optimiser update, EMA, queue/memory/centre state), GFLOP/s of the backbone work, the fraction of
 * the machine's matrix-product rate the whole step reaches (the step's matrix-product FLOPs as the engine counts
 * them / step time / the peak of a 1024^3 fp32 matmul measured after the timed steps in the same run) and peak RSS.
 *
 * <pre>
 * mvn -q -B package -DskipTests exec:exec -Dexec.mainClass=io.mugs.examples.TrainBenchmark -Dexec.args="--preset fashion-mnist-tiny"
 * mvn -q -B package -DskipTests exec:exec -Dexec.mainClass=io.mugs.examples.TrainBenchmark \
 *     -Dexec.args="--preset vit-small --batch 8 --steps 3"
 * mvn -q -B package -DskipTests exec:exec -Dexec.mainClass=io.mugs.examples.TrainBenchmark \
 *     -Dexec.args="--preset fashion-mnist-tiny --steps 20 --replicas 1,2"
 * </pre>
 * With several replica counts, each runs in a JVM of its own (same JVM options and class path), so that each peak
 * RSS is its own; a table of images/s and peak RSS per replica count closes the output.
 */
public final class TrainBenchmark {

    private static final String USAGE = """
            TrainBenchmark: full training-step throughput and breakdown.
              --preset P   the recipe, named as for `mugs pretrain --preset`: fashion-mnist-tiny (on the bundled
                           data; default) or vit-small (official ViT-S/16 recipe, 224/96 px, 10 locals, on synthetic
                           RGB images); fm and vit_small, the earlier names, still work
              --batch B    images per step (default: fashion-mnist-tiny's 32, 8 for vit-small)
              --steps N    timed steps after 2 warm-up steps (default 10 for fashion-mnist-tiny, 3 for vit-small);
                           past the end of an epoch the next one begins
              --profile    also print the student and teacher graphs' wall time per op type over one step
                           (--profile shapes: per op type and input shapes)
              --set P=V    change a field of the MugsConfig JSON (repeatable), e.g. --set vit.patchSize=7
              --engine E   planned (default: io.mugs.engine's planned executor) or samediff (SameDiff's own session,
                           with a System.gc() after every step as the library needed before the executor)
              --kernels K  the engine's Java CPU kernels, as -Dmugs.engine.javaKernels: default, none, all or a list
                           such as default,gelu (default: the property's setting)
              --checkpoint F  start from this training checkpoint (its recipe replaces the preset's, --batch and --set
                           still apply): the step at trained weights, whose wider activations make some native
                           element-wise ops (erfc) slower than at initialisation
              --replicas R data-parallel replicas (threads sharing one state), or a list such as 1,2: one JVM per
                           count, then a table of images/s and peak RSS per count (default: the launcher's,
                           RunSettings.forThisMachine: 2 on a CPU with 2 cores or more, else 1)
            """;

    private TrainBenchmark() {
    }

    private static MugsConfig storedConfig(String checkpoint) {
        try {
            return io.mugs.core.RunCheckpoints.config(java.nio.file.Path.of(checkpoint));
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }

    public static void main(String[] argv) throws java.io.IOException {
        RuntimeSettings.apply();   // the launcher's JVM settings when run from an IDE
        Args a = new Args(argv, Set.of("preset", "batch", "steps", "profile", "set", "engine", "kernels",
                "checkpoint", "replicas"), USAGE);
        String replicas = a.get("replicas", null);
        if (replicas != null && replicas.contains(",")) {
            ReplicaRuns.run(argv, replicas);
            return;
        }
        String preset = a.get("preset", "fashion-mnist-tiny");
        boolean fm = switch (preset) {
            case "fashion-mnist-tiny", "fm" -> true;
            case "vit-small", "vit_small" -> false;
            default -> throw new IllegalArgumentException("unknown preset " + preset + "\n" + USAGE);
        };
        String checkpoint = a.get("checkpoint", null);
        MugsConfig base = checkpoint != null ? storedConfig(checkpoint)
                : fm ? MugsConfig.fashionMnistTiny() : MugsConfig.vitSmall();
        List<String> sets = a.getAll("set");
        MugsConfig cfg = base.toBuilder().batchSize(a.getInt("batch", fm ? base.batchSize() : 8)).build()
                .with(sets.stream().filter(s -> !RunSettings.names(s)).toArray(String[]::new));
        RunSettings run = RunSettings.forThisMachine(cfg.batchSize())
                .with(sets.stream().filter(RunSettings::names).toArray(String[]::new));
        if (replicas != null) {
            run = run.with("replicas=" + replicas.trim());
        }
        int steps = a.getInt("steps", fm ? 10 : 3);
        boolean sameDiff = a.get("engine", "planned").equals("samediff");
        String kernels = a.get("kernels", null);
        if (kernels != null) {
            io.mugs.engine.Kernels.select(kernels);
        }
        if (sameDiff) {
            System.setProperty("mugs.engine", "samediff");
        }
        ImageSource data = fm ? IdxImageSource.bundledFashionMnist(true) : synthetic(cfg.batchSize() * (steps + 3));
        try (MultiCropLoader loader = new MultiCropLoader(data, new MultiCropAugmentation(cfg.crops()),
                cfg.batchSize(), run.workers(), 2 * run.workers(), 1)) {
            MugsTrainer trainer = new MugsTrainer(cfg, run, loader.stepsPerEpoch());
            if (checkpoint != null) {
                io.mugs.core.RunCheckpoints.restore(java.nio.file.Path.of(checkpoint), trainer);
            }
            Iterator<MultiCropBatch> it = batches(loader);
            for (int i = 0; i < 2; i++) {
                trainer.step(it.next());
            }
            Map<String, Double> total = new LinkedHashMap<>();
            total.put("data", 0.0);
            long start = System.nanoTime();
            for (int i = 0; i < steps; i++) {
                long w = System.nanoTime();
                MultiCropBatch b = it.next();
                total.merge("data", (System.nanoTime() - w) / 1e6, Double::sum);
                StepResult r = trainer.step(b);
                r.millis().forEach((k, v) -> total.merge(k, v, Double::sum));
                if (sameDiff) {
                    // SameDiff's session leaves every op output of the step to the garbage collector.
                    long g = System.nanoTime();
                    System.gc();
                    total.merge("gc", (System.nanoTime() - g) / 1e6, Double::sum);
                }
            }
            double sec = (System.nanoTime() - start) / 1e9;
            int n = cfg.batchSize();
            double flops = 3 * (2.0 * n * cfg.vit().forwardFlops(cfg.crops().globalSize())
                    + (double) cfg.crops().localCrops() * n * cfg.vit().forwardFlops(cfg.crops().localSize()))
                    + 2.0 * n * cfg.vit().forwardFlops(cfg.crops().globalSize());
            System.out.printf("%s, batch %d (%d student views), %d replica(s), engine %s, Java kernels %s, %s%n",
                    checkpoint != null ? "checkpoint " + checkpoint : fm ? "fashionMnistTiny" : "vit_small", n, cfg.studentViews(), run.replicas(),
                    sameDiff ? "samediff" : "planned", new java.util.TreeSet<>(io.mugs.engine.Kernels.selected()),
                    io.mugs.engine.Backend.describe());
            System.out.printf("%.2f s/step, %.1f images/s, backbone %.1f GFLOP/s (3x forward for the student, 1x for "
                    + "the teacher)%n", sec / steps, n * steps / sec, flops * steps / sec / 1e9);
            total.forEach((k, v) -> System.out.printf("  %-8s %8.1f ms/step (%4.1f %%)%n", k, v / steps,
                    100 * v / 1e3 / sec));
            double stepFlops = trainer.matmulFlopsPerStep();
            io.mugs.engine.MatmulRate.Rate peak = io.mugs.engine.MatmulRate.measure(1024, 5);
            double reached = stepFlops * steps / sec / 1e9;
            System.out.printf("matrix products: %.2f GFLOP/step (engine count, teacher + student fwd/bwd) -> "
                    + "%.1f GFLOP/s = %.1f %% of the measured peak %.1f GFLOP/s (1024^3 fp32 matmul op: %.1f on 1 thread, %.1f "
                    + "widened, best of 5, same run)%n", stepFlops / 1e9, reached, 100 * reached / peak.best(),
                    peak.best(), peak.narrow(), peak.wide());
            System.out.printf("peak RSS: %.2f GB (engine buffers %.2f GB, student live peak %.2f GB, Java heap in use "
                    + "%.2f GB)%n", VitBenchmark.peakRssBytes() / 1e9, trainer.engineBytes() / 1e9,
                    trainer.studentPeakLiveBytes() / 1e9,
                    (Runtime.getRuntime().totalMemory() - Runtime.getRuntime().freeMemory()) / 1e9);
            System.out.printf(java.util.Locale.ROOT, "%s replicas=%d images_per_s=%.3f peak_rss_gb=%.3f "
                    + "peak_fraction=%.4f%n", ReplicaRuns.RESULT, run.replicas(), n * steps / sec,
                    VitBenchmark.peakRssBytes() / 1e9, reached / peak.best());
            if (a.get("profile", null) != null) {
                boolean shapes = a.get("profile", "").equals("shapes");
                OpProfile student = new OpProfile(shapes);
                OpProfile teacher = new OpProfile(shapes);
                trainer.model().student().addListeners(student);
                trainer.model().teacher().addListeners(teacher);
                trainer.step(it.next());
                System.out.print("student " + student.report(shapes ? 60 : 20));
                System.out.print("teacher " + teacher.report(shapes ? 60 : 20));
            }
        }
    }

    /** The loader's batches epoch after epoch, so that {@code --steps} may exceed one epoch. */
    private static Iterator<MultiCropBatch> batches(MultiCropLoader loader) {
        return new Iterator<>() {
            private int epoch;
            private Iterator<MultiCropBatch> current = loader.epoch(0).iterator();

            public boolean hasNext() {
                return true;
            }

            public MultiCropBatch next() {
                while (!current.hasNext()) {
                    current = loader.epoch(++epoch).iterator();
                }
                return current.next();
            }
        };
    }

    /** Random-texture RGB images of 256 x 256, enough for the benchmark's batches. */
    private static ImageSource synthetic(int count) {
        return new ImageSource() {
            public int size() {
                return count;
            }

            public Image load(int index) {
                SplittableRandom r = new SplittableRandom(index);
                Image img = new Image(3, 256, 256);
                for (int i = 0; i < img.data().length; i++) {
                    img.data()[i] = r.nextInt(256);
                }
                return img;
            }

            public int label(int index) {
                return -1;
            }

            public List<String> classNames() {
                return List.of();
            }

            public String describe(int index) {
                return "synthetic #" + index;
            }
        };
    }
}
