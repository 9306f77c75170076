package io.mugs.examples;

import io.mugs.core.MugsConfig;
import io.mugs.core.MugsTrainer;
import io.mugs.core.RuntimeSettings;
import io.mugs.core.TeacherOutputs;
import io.mugs.data.IdxImageSource;
import io.mugs.data.ImageSource;
import io.mugs.data.MultiCropAugmentation;
import io.mugs.data.MultiCropBatch;
import io.mugs.data.MultiCropLoader;
import io.mugs.eval.FineTuneBatches;
import io.mugs.eval.FineTuneConfig;
import io.mugs.eval.FineTuner;
import io.mugs.eval.LabelSubset;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Set;

/**
 * Times the fine-tuning step (engine forward + backward of backbone and head, then AdamW) per image against the
 * pretraining student pass (engine forward + backward of the student graph: 2 global and N local views per image,
 * heads and losses) on the same ViT, alternating the two so that a shared machine slows both alike.
 *
 * <pre>
 * mvn -q -B package -DskipTests exec:exec -Dexec.mainClass=io.mugs.examples.FineTuneBenchmark \
 *     -Dexec.args="--rounds 5 --steps 10"
 * </pre>
 */
public final class FineTuneBenchmark {

    private static final String USAGE = """
            FineTuneBenchmark: fine-tuning step vs pretraining student pass, per image, on the fashion-mnist preset's ViT.
              --rounds R   alternations (default 5)
              --steps N    timed steps of each per round (default 10)
              --batch B    fine-tuning batch (default 64; the student uses the preset's 32 images)
            """;

    private FineTuneBenchmark() {
    }

    public static void main(String[] argv) throws Exception {
        RuntimeSettings.apply();
        Args a = new Args(argv, Set.of("rounds", "steps", "batch"), USAGE);
        int rounds = a.getInt("rounds", 5);
        int steps = a.getInt("steps", 10);
        MugsConfig cfg = MugsConfig.fashionMnist();
        ImageSource data = IdxImageSource.bundledFashionMnist(true);
        FineTuneConfig ftc = FineTuneConfig.fashionMnist().toBuilder().batchSize(a.getInt("batch", 64))
                .fromScratch(true).build();
        FineTuneBatches ftData = new FineTuneBatches(data, LabelSubset.all(data.size()).indices(), ftc,
                cfg.inputNormalisation(), 10);
        FineTuner ft = new FineTuner(ftc, cfg.vit(), null, 10, ftData.stepsPerEpoch());
        List<FineTuneBatches.Batch> ftBatches = new ArrayList<>();
        for (int i = 0; i < steps + 2; i++) {
            ftBatches.add(ftData.batch(i));
        }
        try (MultiCropLoader loader = new MultiCropLoader(data, new MultiCropAugmentation(cfg.crops()),
                cfg.batchSize(), 1, 2, 1)) {
            MugsTrainer trainer = new MugsTrainer(cfg, loader.stepsPerEpoch());
            Iterator<MultiCropBatch> it = loader.epoch(0).iterator();
            List<MultiCropBatch> batches = new ArrayList<>();
            for (int i = 0; i < steps + 2; i++) {
                MultiCropBatch b = it.next();
                batches.add(b);
            }
            double ftMs = 0;
            double studentMs = 0;
            for (int r = -1; r < rounds; r++) {      // round -1 warms both up (plans, JIT)
                long t0 = System.nanoTime();
                int n = r < 0 ? 2 : steps;
                for (int i = 0; i < n; i++) {
                    ft.step(ftBatches.get(i));
                }
                long t1 = System.nanoTime();
                double s = 0;
                for (int i = 0; i < n; i++) {
                    MultiCropBatch b = batches.get(i);
                    List<TeacherOutputs> t = trainer.teacherForward(b);
                    long s0 = System.nanoTime();
                    trainer.studentGradients(b, t, trainer.dropPathMasks(b.batchSize()), cfg.teacherTemp());
                    s += (System.nanoTime() - s0) / 1e6;
                }
                if (r >= 0) {
                    ftMs += (t1 - t0) / 1e6;
                    studentMs += s;
                    System.out.printf("round %d: fine-tuning %.1f ms/step, student pass %.1f ms/step%n", r,
                            (t1 - t0) / 1e6 / n, s / n);
                }
            }
            int ftImages = ftData.batchSize();
            int views = cfg.studentViews();
            double ftPerImage = ftMs / rounds / steps / ftImages;
            double studentPerImage = studentMs / rounds / steps / cfg.batchSize();
            System.out.printf("fine-tuning step: %.2f ms/step of %d images = %.3f ms per image (one %d px view)%n",
                    ftMs / rounds / steps, ftImages, ftPerImage, cfg.crops().globalSize());
            System.out.printf("pretraining student pass: %.2f ms/step of %d images = %.3f ms per image (%d views: 2 x "
                    + "%d px, %d x %d px), %.3f ms per view%n", studentMs / rounds / steps, cfg.batchSize(),
                    studentPerImage, views, cfg.crops().globalSize(), views - 2, cfg.crops().localSize(),
                    studentPerImage / views);
            System.out.printf("fine-tuning / student per image: %.2f; peak RSS %.2f GB%n", ftPerImage / studentPerImage,
                    VitBenchmark.peakRssBytes() / 1e9);
        }
    }
}
