package io.mugs.eval;

import io.mugs.data.Image;
import io.mugs.data.ImageSource;
import io.mugs.data.aug.GeometryOps;
import io.mugs.data.aug.RandAugment;
import io.mugs.data.aug.RandomErasing;
import io.mugs.data.aug.RandomResizedCrop;
import io.mugs.data.aug.Resize;
import io.mugs.io.InputNormalisation;
import java.io.IOException;
import java.util.SplittableRandom;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * The training batches of fine-tuning, the DeiT transform at the backbone's input size: random resized crop
 * (area {@code [cropScale, 1]}), horizontal flip, RandAugment {@code rand-m9-mstd0.5-inc1} (the pretraining's
 * {@link RandAugment}), scaling to [0, 1] and normalisation, random erasing; then mixup / cutmix and label smoothing
 * over the batch ({@link Mixup}). Each switch of {@link FineTuneConfig} turns one of them off.
 *
 * <p>Batches are a pure function of (seed, iteration): epoch e visits the labelled images in a seeded permutation of
 * its own, drops the last incomplete batch, and every random choice of step t comes from a stream seeded by t. So a
 * run resumed at any step sees exactly the batches an uninterrupted run would.
 *
 * <pre>{@code
 * FineTuneBatches data = new FineTuneBatches(train, subset.indices(), config, input, 10);
 * FineTuneBatches.Batch b = data.batch(iteration);   // images [B, C, S, S], targets [B, K]
 * }</pre>
 */
public final class FineTuneBatches {

    /** One step's input: normalised, augmented, mixed images and their soft targets. */
    public record Batch(INDArray images, INDArray targets, int[] labels, Mixup.Mixed mixed) {
    }

    private final ImageSource source;
    private final int[] indices;
    private final FineTuneConfig config;
    private final InputNormalisation input;
    private final int classes;
    private final int batch;
    private final int steps;
    private final Mixup mixup;
    private final RandAugment randAugment = RandAugment.mugsDefault();
    private int permutationEpoch = -1;
    private int[] permutation;

    /**
     * @param indices the labelled images of {@code source} (a {@link LabelSubset}'s indices)
     * @param classes K
     */
    public FineTuneBatches(ImageSource source, int[] indices, FineTuneConfig config, InputNormalisation input,
                           int classes) {
        if (indices.length == 0) {
            throw new IllegalArgumentException("no labelled images to fine-tune on");
        }
        this.source = source;
        this.indices = indices.clone();
        this.config = config;
        this.input = input;
        this.classes = classes;
        this.batch = Math.min(config.batchSize(), indices.length);
        this.steps = indices.length / batch;
        this.mixup = new Mixup(config.mixup(), config.cutmix(), config.mixupSwitchProb(), config.labelSmoothing(),
                classes);
    }

    /** Steps per epoch: whole batches of the labelled images. */
    public int stepsPerEpoch() {
        return steps;
    }

    /** Images per step: the configured batch, or all labelled images when fewer. */
    public int batchSize() {
        return batch;
    }

    /** The batch of step {@code iteration} (counted from the start of the run). */
    public Batch batch(long iteration) throws IOException {
        int epoch = (int) (iteration / steps);
        int step = (int) (iteration % steps);
        if (epoch != permutationEpoch) {
            permutation = permutation(epoch);
            permutationEpoch = epoch;
        }
        SplittableRandom rng = new SplittableRandom(config.seed() * 0x9E3779B97F4A7C15L + 0x632BE59BD9B4E019L
                + iteration);
        int size = input.imageSize();
        int c = input.channels();
        int per = c * size * size;
        float[] images = new float[batch * per];
        int[] labels = new int[batch];
        for (int i = 0; i < batch; i++) {
            int index = permutation[step * batch + i];
            labels[i] = source.label(index);
            augment(source.load(index), rng, images, i * per);
        }
        float[] targets = new float[batch * classes];
        Mixup.Mixed how = config.mixes()
                ? mixup.apply(images, batch, c, size, size, labels, targets, rng)
                : plain(labels, targets);
        return new Batch(Nd4j.create(images, new long[] {batch, c, size, size}, DataType.FLOAT),
                Nd4j.create(targets, new long[] {batch, classes}, DataType.FLOAT), labels, how);
    }

    private Mixup.Mixed plain(int[] labels, float[] targets) {
        Mixup.targets(labels, classes, config.labelSmoothing(), 1, targets);
        return new Mixup.Mixed(1, false, null);
    }

    /** The order of the labelled images in {@code epoch}. */
    int[] permutation(int epoch) {
        int[] p = indices.clone();
        SplittableRandom rng = new SplittableRandom(config.seed() * 1_000_003L + epoch);
        for (int i = p.length - 1; i > 0; i--) {
            int j = rng.nextInt(i + 1);
            int t = p[i];
            p[i] = p[j];
            p[j] = t;
        }
        return p;
    }

    /** One image's training view, normalised, written at {@code offset}. */
    private void augment(Image img, SplittableRandom rng, float[] out, int offset) {
        int size = input.imageSize();
        Image v = img;
        if (config.cropScale() < 1 || v.height() != size || v.width() != size) {
            v = new RandomResizedCrop(size, config.cropScale(), 1).apply(v, rng);
        }
        if (config.flip() && rng.nextBoolean()) {
            v = GeometryOps.flipHorizontal(v);
        }
        if (config.randAugment()) {
            v = randAugment.apply(v, rng);
        }
        if (v.height() != size || v.width() != size) {
            v = Resize.resize(v, size, size);
        }
        int plane = size * size;
        double[] mean = input.mean();
        double[] std = input.std();
        float[] d = v.data();
        int channels = input.channels();
        if (v.channels() != channels) {
            throw new IllegalArgumentException("image with " + v.channels() + " channel(s) for a backbone of "
                    + channels + ": use images of the channel count the backbone was trained on");
        }
        for (int ch = 0; ch < channels; ch++) {
            for (int i = 0; i < plane; i++) {
                out[offset + ch * plane + i] = (float) ((d[ch * plane + i] / 255.0 - mean[ch]) / std[ch]);
            }
        }
        if (config.randomErasing() > 0) {
            float[] view = new float[channels * plane];
            System.arraycopy(out, offset, view, 0, view.length);
            if (new RandomErasing(config.randomErasing()).apply(view, channels, size, size, rng) != null) {
                System.arraycopy(view, 0, out, offset, view.length);
            }
        }
    }
}
