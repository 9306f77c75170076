package io.mugs.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.mugs.data.IdxImageSource;
import io.mugs.data.MultiCropAugmentation;
import io.mugs.data.MultiCropLoader;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * The memory estimate against what the trainer really allocates, and the refusals of configurations that cannot fit
 * (the SIGSEGV of {@code crops.globalSize=700}, a 12000-wide ViT, ViT-S at batch 64), all before a model is built.
 */
class MemoryBudgetTest {

    @Test
    void parameterBytesMatchTheBuiltModels() {
        for (MugsConfig c : List.of(Tiny.config(), Tiny.config().with("useBnInHead=false"),
                Tiny.config().with("lossWeights.group=0"), Tiny.config().with("lossWeights.localGroup=0"),
                MugsConfig.fashionMnistTiny(), MugsConfig.fashionMnist())) {
            MugsTrainer t = new MugsTrainer(c, 3);
            long student = t.model().studentParameters().values().stream().mapToLong(a -> a.length()).sum();
            long teacher = t.model().teacherParameters().values().stream().mapToLong(a -> a.length()).sum();
            long actual = 4 * (3 * student + teacher);
            long estimate = MemoryBudget.estimate(c).parameterBytes();
            System.out.printf("MEMORY parameters estimated %d bytes, built %d (%+.2f %%)%n", estimate, actual,
                    100.0 * (estimate - actual) / actual);
            assertEquals(actual, estimate, 0.02 * actual, "parameters of " + c.toJson());
        }
    }

    @Test
    void activationBytesAreWithinAFifthOfTheEnginesOnConfigurationsNotFittedTo() {
        // none of these was among the eight configurations the coefficients were fitted to
        for (String[] sets : List.of(
                new String[] {"vit.embedDim=48", "vit.numHeads=3", "vit.depth=3", "batchSize=12",
                    "crops.globalSize=42", "crops.localSize=14", "crops.localCrops=3"},
                new String[] {"vit.numHeads=4", "vit.depth=1", "crops.globalSize=56", "crops.localSize=28"},
                new String[] {"batchSize=6", "instanceHidden=128", "groupHidden=64", "prototypes=256"})) {
            MugsConfig c = Tiny.config().with(sets);
            try (MultiCropLoader loader = new MultiCropLoader(IdxImageSource.bundledFashionMnist(false),
                    new MultiCropAugmentation(c.crops()), c.batchSize(), 1, 1, c.seed())) {
                MugsTrainer t = new MugsTrainer(c, loader.stepsPerEpoch());
                t.step(loader.batch(0, 0));
                t.step(loader.batch(0, 1));
                long measured = t.engineBytes();
                long estimate = MemoryBudget.estimate(c).activationBytes();
                System.out.printf("MEMORY activations estimated %d bytes, engine %d (%+.1f %%), peak live %d: %s%n",
                        estimate, measured, 100.0 * (estimate - measured) / measured, t.studentPeakLiveBytes(),
                        String.join(" ", sets));
                assertEquals(measured, estimate, 0.2 * measured, String.join(" ", sets));
            }
        }
    }

    @Test
    void configurationsThatCannotFitAreRefusedInOneLineBeforeAnythingIsBuilt() {
        long launcher = (12L << 30) - (6L << 30);   // the launcher's maxphysicalbytes minus its heap
        var crash = assertThrows(IllegalArgumentException.class, () -> MemoryBudget.requireFits(
                MugsConfig.fashionMnistTiny().with("crops.globalSize=700"), launcher));
        // [2 x 32, 3 heads, 10001, 10001] floats: the array whose failed allocation libnd4j wrote through
        long scores = 4L * 64 * 3 * 10001 * 10001;
        assertEquals(scores, MemoryBudget.estimate(MugsConfig.fashionMnistTiny().with("crops.globalSize=700"))
                .largestArrayBytes());
        assertTrue(crash.getMessage().startsWith("this configuration needs about "), crash.getMessage());
        assertTrue(crash.getMessage().contains("this JVM allows 6.0 GB of native memory: lower --batch (now 32) or "
                + "the crop sizes (global 700, local 14 px; the attention scores of the global views alone take "
                + String.format(java.util.Locale.ROOT, "%.1f GB", scores / (double) (1L << 30)) + ")"),
                crash.getMessage());
        assertEquals(1, crash.getMessage().lines().count());

        var wide = assertThrows(IllegalArgumentException.class, () -> MemoryBudget.requireFits(
                MugsConfig.fashionMnistTiny().with("vit.embedDim=12000", "vit.numHeads=3"), launcher));
        assertTrue(wide.getMessage().contains("choose a smaller model (vit.embedDim 12000, vit.depth 4)"),
                wide.getMessage());

        MugsConfig small = MugsConfig.vitSmall().toBuilder().batchSize(64).build();
        var vits = assertThrows(IllegalArgumentException.class, () -> MemoryBudget.requireFits(small, launcher));
        assertTrue(vits.getMessage().contains("lower --batch (now 64)"), vits.getMessage());
        MemoryBudget.requireFits(Tiny.config(), launcher);
        MemoryBudget.requireFits(MugsConfig.fashionMnist(), launcher);
    }

    @Test
    void aHundredMillionEpochsCostNoScheduleMemory() {
        MugsConfig c = Tiny.config().toBuilder().epochs(100_000_000).warmupEpochs(1).build();
        MemoryBudget.requireFits(c, 6L << 30);
        try (MultiCropLoader loader = Tiny.loader(c)) {
            long heapBefore = usedHeap();
            MugsTrainer t = new MugsTrainer(c, loader.stepsPerEpoch());
            assertTrue(usedHeap() - heapBefore < 200L << 20, "no per-iteration arrays");
            StepResult r = t.step(loader.batch(0, 0));
            // warm-up from 0 over one epoch's iterations: the first value is exactly 0, the second base / (warm - 1)
            assertEquals(0.0, r.lr());
            StepResult r2 = t.step(loader.batch(0, 1));
            int warm = loader.stepsPerEpoch();
            assertEquals(c.scaledLr() / (warm - 1), r2.lr(), 1e-18);
            double total = 1e8 * warm;
            double i = 1e8 * warm - 1 - warm;   // the last iteration of the cosine part
            assertEquals(c.minLr() + 0.5 * (c.scaledLr() - c.minLr()) * (1 + Math.cos(Math.PI * i / (total - warm))),
                    new io.mugs.engine.optim.CosineSchedule(c.scaledLr(), c.minLr(), c.epochs(), warm, 1, 0)
                            .at((long) total - 1), 1e-18);
        }
    }

    private static long usedHeap() {
        System.gc();
        return Runtime.getRuntime().totalMemory() - Runtime.getRuntime().freeMemory();
    }
}
