package io.mugs.eval;

import io.mugs.data.EvalPreprocessing;
import io.mugs.data.ImageSource;
import io.mugs.engine.GraphExecutor;
import io.mugs.engine.optim.AdamW;
import io.mugs.engine.optim.Schedules;
import io.mugs.io.InputNormalisation;
import io.mugs.io.StateDict;
import io.mugs.io.Stateful;
import io.mugs.vit.DropPath;
import io.mugs.vit.VitConfig;
import java.io.IOException;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * End-to-end fine-tuning of a backbone and a linear classifier through the engine (paper §4.1 "Fine-tuning" and
 * "Semi-supervised learning", Appendix B.2.1-B.2.2): the state (the {@link FineTuneModel}, AdamW with layer-wise
 * learning-rate decay, the step counter) and one training step; {@link FineTuneRun} is the loop with the run folder.
 * <pre>
 *   step t:  masks ~ drop path (seeded by t) -> engine: loss, gradients of every parameter
 *            -> per-tensor clip (optional) -> AdamW: lr_p = lr[t] x decay^(D + 1 - layer(p)), wd on matrices only
 *   lr[t]:   linear warm-up from 0, then cosine to minLr (per step)
 * </pre>
 *
 * <pre>{@code
 * FineTuner ft = new FineTuner(config, vitConfig, pretrainedWeights, 10, data.stepsPerEpoch());   // null: scratch
 * double loss = ft.step(data.batch(ft.iteration()));
 * double[] top1top5 = ft.evaluate(test, input, 256);
 * }</pre>
 */
public final class FineTuner implements Stateful {

    private final FineTuneConfig config;
    private final FineTuneModel model;
    private final Map<String, INDArray> params;
    private final AdamW optimizer;
    private final double[] lrSchedule;
    private final int itersPerEpoch;
    private GraphExecutor train;
    private GraphExecutor eval;
    private long iteration;
    private double trainingSeconds;

    /**
     * @param vit            the backbone's architecture
     * @param backboneWeights the initial backbone under official names; must be null exactly when {@code
     *                        config.fromScratch()} (then the seeded random initialisation stays)
     * @param classes        K
     * @param itersPerEpoch  steps per epoch (for the schedules)
     */
    public FineTuner(FineTuneConfig config, VitConfig vit, Map<String, INDArray> backboneWeights, int classes,
                     int itersPerEpoch) {
        this(config, vit, vit.imageSize(), backboneWeights, classes, itersPerEpoch);
    }

    /** As above, for input images of {@code imageSize} pixels (the input normalisation's size). */
    public FineTuner(FineTuneConfig config, VitConfig vit, int imageSize, Map<String, INDArray> backboneWeights,
                     int classes, int itersPerEpoch) {
        if (config.fromScratch() != (backboneWeights == null)) {
            throw new IllegalArgumentException(config.fromScratch() ? "fromScratch is set but initial weights were "
                    + "given: pass null" : "no initial backbone weights: pass them, or set fromScratch");
        }
        this.config = config;
        this.itersPerEpoch = itersPerEpoch;
        this.model = new FineTuneModel(vit, imageSize, classes, config, DataType.FLOAT);
        if (backboneWeights != null) {
            model.backbone().loadWeights(backboneWeights);
        }
        this.params = model.parameters();
        int depth = vit.depth();
        this.optimizer = new AdamW(params, name -> FineTuneModel.lrScale(name, depth, config.layerDecay()),
                name -> FineTuneModel.decays(name, params.get(name)));
        this.lrSchedule = Schedules.cosine(config.lr(), config.minLr(), config.epochs(), itersPerEpoch,
                config.warmupEpochs(), 0);
    }

    /**
     * One step on {@code batch}: forward, backward, update. Returns the loss before the update.
     *
     * @throws IllegalStateException when the loss is not finite (nothing is updated then)
     */
    public double step(FineTuneBatches.Batch batch) {
        if (train == null) {
            train = GraphExecutor.gradients(model.sameDiff(), List.of(FineTuneModel.LOSS), params.keySet());
        }
        int b = (int) batch.images().size(0);
        Map<String, INDArray> feed = new HashMap<>(DropPath.sample(model.dropPath(), b, model.tokensPerImage(),
                new SplittableRandom(config.seed() * 31 + 17 + iteration), DataType.FLOAT));
        feed.put(FineTuneModel.IMAGES, batch.images());
        feed.put(FineTuneModel.TARGETS, batch.targets());
        GraphExecutor.Result r = train.run(feed);
        double loss = r.outputs().get(FineTuneModel.LOSS).getDouble(0);
        if (!Double.isFinite(loss)) {
            throw new IllegalStateException("fine-tuning loss is " + loss + " at step " + iteration + " (lr "
                    + currentLr() + "): nothing was updated; lower the learning rate or lengthen the warm-up");
        }
        optimizer.step(r.gradients(), currentLr(), config.weightDecay(), config.clipGrad(), name -> false);
        iteration++;
        return loss;
    }

    /** The learning rate of the next step (before layer decay). */
    public double currentLr() {
        return lrSchedule[(int) Math.min(iteration, lrSchedule.length - 1)];
    }

    /** Logits {@code [B, K]} of already preprocessed images {@code [B, C, S, S]} (a copy). */
    public INDArray logits(INDArray images) {
        if (eval == null) {
            eval = GraphExecutor.outputs(model.sameDiff(), List.of(FineTuneModel.EVAL_LOGITS));
        }
        return eval.run(Map.of(FineTuneModel.EVAL_IMAGES, images)).outputs().get(FineTuneModel.EVAL_LOGITS).dup();
    }

    /** Top-1 and top-5 accuracy in [0, 1] on every image of {@code test} (the evaluation view of each). */
    public double[] evaluate(ImageSource test, InputNormalisation input, int batch) throws IOException {
        int size = input.imageSize();
        int per = input.channels() * size * size;
        long top1 = 0;
        long top5 = 0;
        for (int start = 0; start < test.size(); start += batch) {
            int n = Math.min(batch, test.size() - start);
            float[] data = new float[n * per];
            for (int i = 0; i < n; i++) {
                EvalPreprocessing.apply(test.load(start + i), size, input.mean(), input.std(), data, i * per);
            }
            float[] logits = logits(Nd4j.create(data, new long[] {n, input.channels(), size, size},
                    DataType.FLOAT)).data().asFloat();
            int k = model.classes();
            for (int i = 0; i < n; i++) {
                int truth = test.label(start + i);
                if (truth < 0 || truth >= k) {
                    throw new IllegalArgumentException(test.describe(start + i) + " has label " + truth + ", outside "
                            + "the " + k + " classes fine-tuned on: test on images of the same classes");
                }
                int above = 0;
                float t = logits[i * k + truth];
                for (int c = 0; c < k; c++) {
                    float v = logits[i * k + c];
                    if (v > t || (v == t && c < truth)) {
                        above++;
                    }
                }
                top1 += above == 0 ? 1 : 0;
                top5 += above < 5 ? 1 : 0;
            }
        }
        return new double[] {(double) top1 / test.size(), (double) top5 / test.size()};
    }

    /** {@code model/NAME} for every parameter, {@code adam/...} and the counter {@code iteration}. */
    @Override
    public void saveState(StateDict into) {
        StateDict m = into.scope("model");
        params.forEach(m::putTensor);
        optimizer.saveState(into.scope("adam"));
        into.putCounter("iteration", iteration);
    }

    @Override
    public void loadState(StateDict from) {
        StateDict expected = new StateDict();
        saveState(expected);
        from.requireLike(expected);
        StateDict m = from.scope("model");
        params.forEach((name, arr) -> arr.assign(m.tensor(name, arr.shape())));
        optimizer.loadState(from.scope("adam"));
        iteration = from.counter("iteration", 0, Long.MAX_VALUE);
    }

    /** Frees the engine's buffers (the next step or evaluation plans again). */
    public void releaseBuffers() {
        if (train != null) {
            train.close();
            train = null;
        }
        if (eval != null) {
            eval.close();
            eval = null;
        }
    }

    public FineTuneConfig config() {
        return config;
    }

    public FineTuneModel model() {
        return model;
    }

    public AdamW optimizer() {
        return optimizer;
    }

    /** Live parameter arrays by name. */
    public Map<String, INDArray> parameters() {
        return params;
    }

    public double[] lrSchedule() {
        return lrSchedule.clone();
    }

    public long iteration() {
        return iteration;
    }

    public int itersPerEpoch() {
        return itersPerEpoch;
    }

    /** Epoch of the next step. */
    public int epoch() {
        return (int) (iteration / itersPerEpoch);
    }

    /** Seconds spent in data and steps, across resumes (not evaluation or checkpoints). */
    public double trainingSeconds() {
        return trainingSeconds;
    }

    void addTrainingSeconds(double s) {
        trainingSeconds += s;
    }

    void setTrainingSeconds(double s) {
        trainingSeconds = s;
    }

    /** Whether every step of the configured epochs has run. */
    public boolean finished() {
        return iteration >= (long) config.epochs() * itersPerEpoch;
    }
}
