package io.mugs.eval;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.mugs.data.IdxImageSource;
import io.mugs.data.Image;
import io.mugs.data.ImageSource;
import io.mugs.io.InputNormalisation;
import io.mugs.vit.VisionTransformer;
import io.mugs.vit.VitConfig;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.ndarray.INDArray;

class FineTuneTest {

    private static final VitConfig TINY = VitConfig.builder().imageSize(28).inChannels(1).patchSize(7).embedDim(16)
            .depth(2).numHeads(2).build();
    private static final InputNormalisation INPUT = new InputNormalisation(1, 28, new double[] {0.286},
            new double[] {0.353});

    /** Everything off: plain images, hard targets. */
    private static FineTuneConfig.Builder plain() {
        return FineTuneConfig.builder().randAugment(false).cropScale(1).flip(false).randomErasing(0).mixup(0)
                .cutmix(0).labelSmoothing(0).dropPath(0).warmupEpochs(0);
    }

    @Test
    void layerWiseDecayGivesEachParameterGroupItsLearningRateByValue() {
        double decay = 0.5;
        FineTuneConfig cfg = plain().layerDecay(decay).fromScratch(true).build();
        FineTuner ft = new FineTuner(cfg, TINY, null, 3, 1);
        Map<String, INDArray> params = ft.parameters();
        // Depth 2: embeddings are layer 0 (decay^3), block 0 layer 1 (decay^2), block 1 layer 2 (decay^1), the final
        // norm and the head layer 3 (decay^0), as BEiT's get_num_layer_for_vit assigns them.
        Map<String, Double> expected = new LinkedHashMap<>();
        for (String name : params.keySet()) {
            double e;
            if (name.equals("backbone.cls_token") || name.equals("backbone.pos_embed")
                    || name.startsWith("backbone.patch_embed.")) {
                e = 0.125;
            } else if (name.startsWith("backbone.blocks.0.")) {
                e = 0.25;
            } else if (name.startsWith("backbone.blocks.1.")) {
                e = 0.5;
            } else {
                assertTrue(name.startsWith("backbone.norm.") || name.startsWith("head."), name);
                e = 1;
            }
            expected.put(name, e);
            assertEquals(e, ft.optimizer().lrScale(name), 1e-15, name);
        }
        assertEquals(6 + 2 * 12 + 2, params.size(), "backbone tensors plus head.weight and head.bias");
        // Weight decay only on matrices, never on biases, norms, pos_embed or cls_token.
        for (String name : params.keySet()) {
            boolean matrix = name.endsWith(".weight") && !name.contains("norm");
            assertEquals(matrix, ft.optimizer().decays(name), name);
        }
        // One AdamW step by value: the first step moves every element by lr_p (1 + wd p) for a unit gradient
        // (m / sqrt(v) = 1 after bias correction), with lr_p = lr x scale and wd only where it applies.
        double lr = 0.01;
        double wd = 0.1;
        Map<String, INDArray> before = new LinkedHashMap<>();
        Map<String, INDArray> grads = new LinkedHashMap<>();
        params.forEach((k, v) -> {
            before.put(k, v.dup());
            grads.put(k, v.ulike().assign(1));
        });
        ft.optimizer().step(grads, lr, wd, 0, n -> false);
        for (String name : params.keySet()) {
            double lrP = lr * expected.get(name);
            boolean decays = ft.optimizer().decays(name);
            float[] p0 = before.get(name).data().asFloat();
            float[] p1 = params.get(name).dup().data().asFloat();
            for (int i = 0; i < p0.length; i++) {
                double decayed = decays ? p0[i] * (1 - lrP * wd) : p0[i];
                double want = decayed - lrP * 1 / (1 + 1e-8);
                assertEquals(want, p1[i], 1e-6, name + "[" + i + "]");
            }
        }
    }

    @Test
    void labelSubsetsAreClassBalancedReproducibleAndReadBack(@TempDir Path dir) throws Exception {
        int[] labels = IdxImageSource.bundledFashionMnist(true).labels();
        int[] perClass = new int[10];
        for (int l : labels) {
            perClass[l]++;
        }
        LabelSubset tenPct = LabelSubset.draw(labels, 10, "10%", 3);
        int[] counts = tenPct.classCounts(labels, 10);
        for (int c = 0; c < 10; c++) {
            assertEquals(Math.round(0.1 * perClass[c]), counts[c], "class " + c);
        }
        assertEquals(tenPct, LabelSubset.draw(labels, 10, "10%", 3), "same seed, same images");
        assertNotEquals(tenPct, LabelSubset.draw(labels, 10, "10%", 4), "another seed, other images");
        LabelSubset five = LabelSubset.draw(labels, 10, "5-per-class", 0);
        assertArrayEquals(new int[] {5, 5, 5, 5, 5, 5, 5, 5, 5, 5}, five.classCounts(labels, 10));
        assertEquals(labels.length, LabelSubset.draw(labels, 10, "100%", 0).size());
        // Saved and read back: the same images.
        Path file = dir.resolve(LabelSubset.FILE_NAME);
        tenPct.write(file);
        LabelSubset back = LabelSubset.read(file, labels);
        assertArrayEquals(tenPct.indices(), back.indices());
        assertEquals(tenPct, LabelSubset.resolve(file.toString(), labels, 10, 99), "a file wins over a new draw");
        var wrongSet = assertThrows(java.io.IOException.class, () -> LabelSubset.read(file, new int[10]));
        assertTrue(wrongSet.getMessage().contains("drawn from " + labels.length + " training images"),
                wrongSet.getMessage());
        var bad = assertThrows(IllegalArgumentException.class, () -> LabelSubset.draw(labels, 10, "ten", 0));
        assertTrue(bad.getMessage().contains("1% or 10%"), bad.getMessage());
        // The held-out part for choosing settings: disjoint, together the subset, about a fifth of each class.
        LabelSubset.Split split = tenPct.holdOut(labels, 0.2, 0);
        Set<Integer> seen = new HashSet<>();
        for (int i : split.fit()) {
            assertTrue(seen.add(i));
        }
        for (int i : split.validation()) {
            assertTrue(seen.add(i), "fit and validation are disjoint");
        }
        assertEquals(tenPct.size(), seen.size());
        int[] valCounts = new int[10];
        for (int i : split.validation()) {
            valCounts[labels[i]]++;
        }
        for (int c = 0; c < 10; c++) {
            assertEquals(Math.round(0.2 * counts[c]), valCounts[c], "held-out images of class " + c);
        }
    }

    @Test
    void mixupAndCutmixMatchAPlainJavaComputation() {
        int b = 4;
        int c = 2;
        int h = 6;
        int w = 5;
        int k = 3;
        SplittableRandom data = new SplittableRandom(1);
        float[] images = new float[b * c * h * w];
        for (int i = 0; i < images.length; i++) {
            images[i] = (float) data.nextGaussian();
        }
        int[] labels = {0, 2, 1, 2};
        double eps = 0.1;
        // Mixup only: x_i <- lam x_i + (1 - lam) x_(3-i); targets mixed the same way from smoothed one-hots.
        float[] mixed = images.clone();
        float[] targets = new float[b * k];
        Mixup.Mixed how = new Mixup(0.8, 0, 0.5, eps, k).apply(mixed, b, c, h, w, labels, targets,
                new SplittableRandom(5));
        double lam = how.lam();
        assertFalse(how.cutmix());
        assertTrue(lam > 0 && lam < 1, "lam " + lam);
        int per = c * h * w;
        for (int i = 0; i < b; i++) {
            for (int j = 0; j < per; j++) {
                double want = lam * images[i * per + j] + (1 - lam) * images[(b - 1 - i) * per + j];
                assertEquals(want, mixed[i * per + j], 1e-6);
            }
            for (int cls = 0; cls < k; cls++) {
                double own = (labels[i] == cls ? 1 - eps : 0) + eps / k;
                double other = (labels[b - 1 - i] == cls ? 1 - eps : 0) + eps / k;
                assertEquals(lam * own + (1 - lam) * other, targets[i * k + cls], 1e-6);
            }
        }
        // Cutmix only: the box comes from the reversed batch, the rest stays; lam is 1 - box area / image area.
        for (long seed = 0; seed < 20; seed++) {
            float[] cut = images.clone();
            Mixup.Mixed box = new Mixup(0, 1.0, 0.5, 0, k).apply(cut, b, c, h, w, labels, targets,
                    new SplittableRandom(seed));
            if (box.box() == null) {
                continue;
            }
            int[] r = box.box();
            assertTrue(box.cutmix());
            assertEquals(1 - (double) (r[1] - r[0]) * (r[3] - r[2]) / (h * w), box.lam(), 1e-12);
            for (int i = 0; i < b; i++) {
                for (int ch = 0; ch < c; ch++) {
                    for (int y = 0; y < h; y++) {
                        for (int x = 0; x < w; x++) {
                            boolean inside = y >= r[0] && y < r[1] && x >= r[2] && x < r[3];
                            int src = inside ? b - 1 - i : i;
                            int off = ch * h * w + y * w + x;
                            assertEquals(images[src * per + off], cut[i * per + off], 0.0);
                        }
                    }
                }
                for (int cls = 0; cls < k; cls++) {
                    double want = box.lam() * (labels[i] == cls ? 1 : 0) + (1 - box.lam())
                            * (labels[b - 1 - i] == cls ? 1 : 0);
                    assertEquals(want, targets[i * k + cls], 1e-6);
                }
            }
        }
        // Beta(a, a): mean 1/2, variance 1 / (4 (2a + 1)).
        SplittableRandom rng = new SplittableRandom(11);
        double a = 0.8;
        double sum = 0;
        double sq = 0;
        int n = 40_000;
        for (int i = 0; i < n; i++) {
            double v = Mixup.beta(a, rng);
            sum += v;
            sq += v * v;
        }
        double mean = sum / n;
        assertEquals(0.5, mean, 0.01);
        assertEquals(1 / (4 * (2 * a + 1)), sq / n - mean * mean, 0.003);
    }

    /** Images of two classes: bright top half (0) or bright bottom half (1), with noise. */
    static ImageSource halves(int n, long seed) {
        SplittableRandom rng = new SplittableRandom(seed);
        List<Image> images = new ArrayList<>();
        int[] labels = new int[n];
        for (int i = 0; i < n; i++) {
            labels[i] = i % 2;
            Image img = new Image(1, 28, 28);
            for (int y = 0; y < 28; y++) {
                for (int x = 0; x < 28; x++) {
                    boolean bright = labels[i] == 0 ? y < 14 : y >= 14;
                    img.set(0, y, x, (float) Math.max(0, Math.min(255, (bright ? 180 : 40) + 30 * rng.nextGaussian())));
                }
            }
            images.add(img);
        }
        return new ImageSource() {
            public int size() {
                return n;
            }

            public Image load(int i) {
                return images.get(i).copy();
            }

            public int label(int i) {
                return labels[i];
            }

            public List<String> classNames() {
                return List.of("top", "bottom");
            }

            public String describe(int i) {
                return "halves #" + i;
            }
        };
    }

    @Test
    void theLossFallsOnASmallSeparableProblem() throws Exception {
        ImageSource train = halves(32, 1);
        FineTuneConfig cfg = plain().epochs(20).batchSize(8).lr(1e-2).layerDecay(0.75).fromScratch(true).build();
        FineTuneBatches data = new FineTuneBatches(train, LabelSubset.all(32).indices(), cfg, INPUT, 2);
        FineTuner ft = new FineTuner(cfg, TINY, null, 2, data.stepsPerEpoch());
        List<Double> losses = new ArrayList<>();
        while (!ft.finished()) {
            losses.add(ft.step(data.batch(ft.iteration())));
        }
        assertEquals(80, losses.size());
        double first = (losses.get(0) + losses.get(1) + losses.get(2) + losses.get(3)) / 4;
        double last = losses.subList(76, 80).stream().mapToDouble(Double::doubleValue).average().orElseThrow();
        assertEquals(Math.log(2), first, 0.25, "two classes start near ln 2");
        assertTrue(last < 0.3 * first, "loss " + first + " -> " + last);
        assertTrue(ft.evaluate(halves(40, 2), INPUT, 16)[0] >= 0.95, "held-out images of the same two kinds");
    }

    @Test
    void aResumedRunEndsWithTheWeightsOfAnUninterruptedOne(@TempDir Path dir) throws Exception {
        ImageSource train = halves(24, 3);
        ImageSource test = halves(10, 4);
        // Everything random on: RandAugment, crops, flips, erasing, mixup/cutmix, smoothing, drop path.
        FineTuneConfig cfg = FineTuneConfig.builder().epochs(2).batchSize(8).lr(1e-3).warmupEpochs(1).dropPath(0.2)
                .cropScale(0.5).build();
        VisionTransformer init = new VisionTransformer(org.nd4j.autodiff.samediff.SameDiff.create(), "", TINY,
                org.nd4j.linalg.api.buffer.DataType.FLOAT, 7);
        FineTuneRun.Start start = new FineTuneRun.Start(TINY, init.weights(), INPUT);
        LabelSubset labels = LabelSubset.draw(train.labels(), 2, "10-per-class", 0);
        FineTuneRun.Options quiet = new FineTuneRun.Options(0, -1, 0, 1, 16, 2);
        FineTuneRun.Result whole = FineTuneRun.fit(cfg, start, train, labels, test, dir.resolve("whole"), quiet);
        assertTrue(whole.finished());
        assertEquals(4, whole.steps(), "20 labelled images, batch 8: 2 steps per epoch");
        FineTuneRun.Result part = FineTuneRun.fit(cfg, start, train, labels, test, dir.resolve("split"),
                quiet.withMaxSteps(3));
        assertFalse(part.finished());
        assertEquals(3, part.steps());
        FineTuneRun.Result resumed = FineTuneRun.fit(cfg, start, train, labels, test, dir.resolve("split"), quiet);
        assertTrue(resumed.finished());
        for (var e : whole.tuner().parameters().entrySet()) {
            assertArrayEquals(e.getValue().dup().data().asFloat(),
                    resumed.tuner().parameters().get(e.getKey()).dup().data().asFloat(), 1e-7f, e.getKey());
        }
        assertEquals(whole.testTop1(), resumed.testTop1(), 1e-12);
        // Two epoch rows in each metrics log; the resumed one has no duplicate.
        List<String> rows = Files.readAllLines(dir.resolve("split/metrics.jsonl"));
        assertEquals(2, rows.size(), rows.toString());
        assertTrue(rows.get(1).contains("\"test_top1\""), rows.get(1));
        // The labels and the fine-tuned backbone are in the folder; the backbone and the checkpoint load back.
        assertEquals(labels, LabelSubset.read(dir.resolve("split/labels.json"), train.labels()));
        VisionTransformer tuned = FrozenBackbone.load(dir.resolve("split/backbone.safetensors"));
        VisionTransformer fromCheckpoint = FrozenBackbone.load(FineTuneRun.checkpoints(dir.resolve("split")).get(1));
        assertArrayEquals(resumed.tuner().parameters().get("backbone.blocks.1.mlp.fc2.weight").dup().data().asFloat(),
                tuned.weights().get("blocks.1.mlp.fc2.weight").dup().data().asFloat(), 0f);
        assertArrayEquals(tuned.weights().get("pos_embed").dup().data().asFloat(),
                fromCheckpoint.weights().get("pos_embed").dup().data().asFloat(), 0f);
        // Another recipe in the same folder is refused, naming the setting.
        var other = assertThrows(IllegalArgumentException.class, () -> FineTuneRun.fit(
                cfg.toBuilder().lr(2e-3).build(), start, train, labels, test, dir.resolve("split"), quiet));
        assertTrue(other.getMessage().contains("config.lr"), other.getMessage());
    }

    @Test
    void logisticRegressionChoosesItsLearningRateOnTheHeldOutPart() {
        SplittableRandom r = new SplittableRandom(3);
        int n = 300;
        double[][] x = new double[n][6];
        int[] y = new int[n];
        for (int i = 0; i < n; i++) {
            y[i] = i % 3;
            for (int j = 0; j < 6; j++) {
                x[i][j] = 0.4 * r.nextGaussian() + (j == y[i] ? 1.5 : 0.0);
            }
        }
        INDArray features = org.nd4j.linalg.factory.Nd4j.create(x).castTo(org.nd4j.linalg.api.buffer.DataType.FLOAT);
        LabelSubset all = LabelSubset.all(n);
        LabelSubset.Split split = all.holdOut(y, 0.25, 0);
        double[] lrs = {1e-5, 0.1};
        LogisticRegression.Sweep s = LogisticRegression.paper(50).sweep(features, y, 3, lrs, split);
        assertEquals(0.1, s.best().lr(), "a learning rate of 1e-5 cannot move from the initialisation in 50 steps");
        assertTrue(s.validationTop1()[1] > 0.95, "validation " + s.validationTop1()[1]);
        assertTrue(s.validationTop1()[0] < s.validationTop1()[1]);
        assertTrue(s.best().accuracy(features, y)[0] > 0.95);
    }
}
