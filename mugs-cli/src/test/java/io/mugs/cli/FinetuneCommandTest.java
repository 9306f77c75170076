package io.mugs.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.mugs.data.IdxImageSource;
import io.mugs.eval.FineTuneConfig;
import io.mugs.eval.LabelSubset;
import io.mugs.io.InputNormalisation;
import io.mugs.vit.VisionTransformer;
import io.mugs.vit.VitConfig;
import io.mugs.vit.weights.BackboneFiles;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.buffer.DataType;
import picocli.CommandLine;

/** finetune and the semi-supervised linear on a tiny backbone file and the bundled images. */
class FinetuneCommandTest {

    private static final VitConfig TINY = VitConfig.builder().imageSize(28).inChannels(1).patchSize(7).embedDim(16)
            .depth(2).numHeads(2).build();

    @Test
    void finetuneFromABackboneAndFromScratchOnTheSameLabels(@TempDir Path dir) throws Exception {
        Path model = dir.resolve("vit.safetensors");
        BackboneFiles.save(model, new VisionTransformer(SameDiff.create(), "", TINY, DataType.FLOAT, 3),
                new InputNormalisation(1, 28, new double[] {0.2860}, new double[] {0.3530}));
        Path run = dir.resolve("ft");
        CliTest.Run r = CliTest.run("finetune", "--model", model.toString(), "--data", "fmnist-bundled", "--labels",
                "4-per-class", "--epochs", "2", "--batch", "8", "--output", run.toString(), "--log-every", "0");
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().startsWith("test top-1 "), r.out());
        assertTrue(r.out().contains("after 2 epochs on 40 labelled images (4-per-class, fine-tuned)"), r.out());
        assertTrue(r.out().contains("peak RSS"), r.out());
        int[] trainLabels = IdxImageSource.bundledFashionMnist(true).labels();
        LabelSubset labels = LabelSubset.read(run.resolve("labels.json"), trainLabels);
        assertEquals(40, labels.size());
        assertEquals(2, Files.readAllLines(run.resolve("metrics.jsonl")).size());
        assertTrue(Files.isRegularFile(run.resolve("backbone.safetensors")));

        Path scratch = dir.resolve("scratch");
        r = CliTest.run("finetune", "--model", model.toString(), "--data", "fmnist-bundled", "--labels",
                run.resolve("labels.json").toString(), "--from-scratch", "--epochs", "1", "--batch", "8", "--output",
                scratch.toString(), "--log-every", "0");
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().contains("(4-per-class, from scratch)"), r.out());
        assertEquals(labels, LabelSubset.read(scratch.resolve("labels.json"), trainLabels), "the same images");

        // A finished run resumed: nothing to train, the result again.
        r = CliTest.run("finetune", "--model", model.toString(), "--data", "fmnist-bundled", "--labels",
                "4-per-class", "--epochs", "2", "--batch", "8", "--output", run.toString(), "--log-every", "0");
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().startsWith("test top-1 "), r.out());

        r = CliTest.run("finetune", "--model", model.toString(), "--data", "fmnist-bundled", "--labels", "ten");
        assertEquals(2, r.code());
        assertTrue(r.err().startsWith("mugs: --labels: labels 'ten' must be a percentage"), r.err());
        r = CliTest.run("finetune", "--model", model.toString(), "--data", dir.toString());
        assertEquals(2, r.code());
        assertTrue(r.err().contains("a folder with train/ and val/"), r.err());
    }

    @Test
    void semiSupervisedLogisticRegressionOnFeaturesAndOnPixels(@TempDir Path dir) throws Exception {
        Path model = dir.resolve("vit.safetensors");
        BackboneFiles.save(model, new VisionTransformer(SameDiff.create(), "", TINY, DataType.FLOAT, 3),
                new InputNormalisation(1, 28, new double[] {0.2860}, new double[] {0.3530}));
        Path out = dir.resolve("lin");
        CliTest.Run r = CliTest.run("linear", "--model", model.toString(), "--train", "fmnist-bundled:train",
                "--test", "fmnist-bundled:test", "--labels", "10%", "--epochs", "5", "--output", out.toString());
        assertEquals(0, r.code(), r.err());
        assertEquals(6, r.out().lines().count(), r.out());
        assertTrue(r.out().contains("lr 0.03000: held-out top-1") && r.out().contains("(320 images fit, 80 held out)"),
                r.out());
        assertTrue(r.out().contains("retrained on all 400 labelled images (10%): test top-1"), r.out());

        r = CliTest.run("linear", "--model", "pixels", "--mean", "0.286", "--std", "0.353", "--train",
                "fmnist-bundled:train", "--test", "fmnist-bundled:test", "--labels",
                out.resolve("labels.json").toString(), "--epochs", "5", "--output", dir.resolve("px").toString());
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().contains("retrained on all 400 labelled images (10%)"), r.out());
        String top1 = r.out().replaceAll("(?s).*test top-1 ([0-9.]+) %.*", "$1");
        assertTrue(Double.parseDouble(top1) > 50, "logistic regression on pixels of 400 images: " + top1);

        r = CliTest.run("linear", "--model", "pixels", "--train", "fmnist-bundled:train", "--test",
                "fmnist-bundled:test", "--labels", "1%");
        assertEquals(2, r.code());
        assertTrue(r.err().contains("--model pixels needs --mean and --std"), r.err());
    }

    private static FineTuneConfig recipe(String... args) {
        FinetuneCommand c = new FinetuneCommand();
        new CommandLine(c).parseArgs(args);
        return c.config();
    }

    @Test
    void thePresetAloneIsTheRecipeChosenOnTheHeldOutSplitAndEachOptionStillOverridesIt() {
        FineTuneConfig fm = recipe("--model", "m.safetensors", "--preset", "fashion-mnist");
        assertEquals(FineTuneConfig.fashionMnist(), fm);
        assertEquals(0.0, fm.mixup());
        assertEquals(0.0, fm.cutmix());
        assertFalse(fm.mixes());
        assertFalse(fm.randAugment());
        assertEquals(0.0, fm.randomErasing());
        assertTrue(fm.clsAndPatchMean(), "the classifier reads CLS + the mean patch token");
        assertEquals(0.5, fm.cropScale());
        assertEquals(100, fm.epochs());
        assertEquals(64, fm.batchSize());
        assertEquals(1e-3, fm.lr());
        assertEquals(0.65, fm.layerDecay());
        assertEquals(0.1, fm.dropPath());
        assertEquals(0.1, fm.labelSmoothing());
        assertEquals(5.0, fm.warmupEpochs());

        FineTuneConfig cls = recipe("--model", "m.safetensors", "--preset", "fashion-mnist", "--feature", "cls",
                "--mixup", "0.8", "--rand-augment", "true", "--epochs", "3");
        assertFalse(cls.clsAndPatchMean());
        assertEquals(0.8, cls.mixup());
        assertTrue(cls.randAugment());
        assertEquals(3, cls.epochs());
        assertEquals(3.0, cls.warmupEpochs(), "warm-up capped at the epochs given");

        FineTuneConfig deit = recipe("--model", "m.safetensors");
        assertEquals(FineTuneConfig.defaults(), deit);
        assertFalse(deit.clsAndPatchMean(), "the default preset classifies the CLS token");
        assertEquals(0.8, deit.mixup());
        assertTrue(deit.randAugment());
        assertTrue(recipe("--model", "m.safetensors", "--feature", "cls+mean").clsAndPatchMean());
    }
}
