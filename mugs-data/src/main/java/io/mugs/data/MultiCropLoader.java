package io.mugs.data;

import java.io.IOException;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.NoSuchElementException;
import java.util.SplittableRandom;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicInteger;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.factory.Nd4j;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Prepares multi-crop batches ahead of the training step on a pool of worker threads.
 *
 * <p>Each epoch visits a seeded random permutation of the source and drops the last incomplete batch. Batches are
 * built by {@code workers} threads with at most {@code prefetch} batches in flight and come out in order. Every
 * image's augmentation draws from its own stream seeded by (seed, epoch, position), so the crops depend only on
 * the seed, never on the number of workers or on timing.
 *
 * <p>An image that cannot be decoded is skipped: another image of the same epoch, chosen deterministically, takes
 * its place; skips are counted and reported once per epoch. Images smaller than {@code minImageSide} are found
 * when the loader is built ({@link ImageSource#withMinSide}: left out or refused, as the source's policy says);
 * one that only shows up when decoded stops the epoch with an error naming the file.
 *
 * <pre>{@code
 * try (MultiCropLoader loader = new MultiCropLoader(source, new MultiCropAugmentation(cfg), 64, 2, 4, 42)) {
 *     for (MultiCropBatch batch : loader.epoch(0)) { ... }
 * }
 * }</pre>
 */
public final class MultiCropLoader implements AutoCloseable {

    private static final Logger LOG = LoggerFactory.getLogger(MultiCropLoader.class);
    private static final int MAX_REPLACEMENTS = 32;

    private final ImageSource source;
    private final MultiCropAugmentation augmentation;
    private final int batchSize;
    private final int prefetch;
    private final long seed;
    private final ExecutorService pool;
    private final AtomicInteger skipped = new AtomicInteger();

    /**
     * @param workers  threads preparing batches (at least 1)
     * @param prefetch batches prepared ahead (at least 1)
     */
    public MultiCropLoader(ImageSource source, MultiCropAugmentation augmentation, int batchSize, int workers,
                           int prefetch, long seed) {
        if (batchSize < 1 || workers < 1 || prefetch < 1) {
            throw new IllegalArgumentException("batchSize, workers and prefetch must be >= 1, got " + batchSize + ", "
                    + workers + ", " + prefetch);
        }
        source = source.withMinSide(augmentation.config().minImageSide());   // too-small images found before epoch 0
        if (source.size() < batchSize) {
            throw new IllegalArgumentException("the dataset has " + source.size() + " images, fewer than one batch of "
                    + batchSize + ": lower the batch size or point the loader at more data");
        }
        this.source = source;
        this.augmentation = augmentation;
        this.batchSize = batchSize;
        this.prefetch = prefetch;
        this.seed = seed;
        AtomicInteger n = new AtomicInteger();
        this.pool = Executors.newFixedThreadPool(workers, r -> {
            Thread t = new Thread(r, "mugs-data-" + n.incrementAndGet());
            t.setDaemon(true);
            return t;
        });
    }

    /** Batches per epoch (drop-last). */
    public int stepsPerEpoch() {
        return source.size() / batchSize;
    }

    public ImageSource source() {
        return source;
    }

    /** Total unreadable images skipped so far. */
    public int skippedImages() {
        return skipped.get();
    }

    /** The batches of epoch {@code epoch}, in order. Iterate once. */
    public Iterable<MultiCropBatch> epoch(int epoch) {
        return epoch(epoch, 0);
    }

    /** The batches of epoch {@code epoch} from step {@code fromStep} on (resuming inside an epoch). */
    public Iterable<MultiCropBatch> epoch(int epoch, int fromStep) {
        if (fromStep < 0 || fromStep > stepsPerEpoch()) {
            throw new IllegalArgumentException("fromStep must be in [0, " + stepsPerEpoch() + "], got " + fromStep);
        }
        return () -> new EpochIterator(epoch, fromStep);
    }

    /** The batch at {@code step} of {@code epoch}, built on the calling thread (for tests and debugging). */
    public MultiCropBatch batch(int epoch, int step) {
        return build(permutation(epoch), epoch, step, new ArrayList<>());
    }

    private int[] permutation(int epoch) {
        int[] p = new int[source.size()];
        for (int i = 0; i < p.length; i++) {
            p[i] = i;
        }
        SplittableRandom rng = new SplittableRandom(mix(seed, epoch, -1));
        for (int i = p.length - 1; i > 0; i--) {
            int j = rng.nextInt(i + 1);
            int t = p[i];
            p[i] = p[j];
            p[j] = t;
        }
        return p;
    }

    static long mix(long seed, long epoch, long position) {
        long h = seed * 0x9E3779B97F4A7C15L + epoch * 0xC2B2AE3D27D4EB4FL + position * 0x165667B19E3779F9L;
        h ^= h >>> 33;
        h *= 0xff51afd7ed558ccdL;
        return h ^ (h >>> 33);
    }

    private MultiCropBatch build(int[] perm, int epoch, int step, List<String> unreadable) {
        MultiCropConfig cfg = augmentation.config();
        int c = cfg.channels();
        int g = cfg.globalSize();
        int l = cfg.localSize();
        int b = batchSize;
        int n = cfg.localCrops();
        int gs = c * g * g;
        int ls = c * l * l;
        float[] teacher = new float[2 * b * gs];
        float[] student = new float[2 * b * gs];
        float[] locals = new float[n * b * ls];
        boolean[] weak = new boolean[b];
        int[] indices = new int[b];
        int[] labels = new int[b];
        for (int i = 0; i < b; i++) {
            int position = step * b + i;
            int index = perm[position];
            Image img = null;
            for (int attempt = 0; img == null; attempt++) {
                try {
                    img = source.load(index);
                } catch (IOException e) {
                    skipped.incrementAndGet();
                    unreadable.add(e.getMessage());
                    if (attempt >= MAX_REPLACEMENTS) {
                        throw new IllegalStateException("more than " + MAX_REPLACEMENTS + " unreadable images in a row;"
                                + " last: " + e.getMessage(), e);
                    }
                    index = perm[(int) Math.floorMod(mix(seed, epoch, position * 31L + attempt), (long) perm.length)];
                }
            }
            if (Math.min(img.height(), img.width()) < cfg.minImageSide()) {
                throw new IllegalArgumentException(source.describe(index) + " is " + img.width() + "x" + img.height()
                        + " px, smaller than the " + cfg.minImageSide() + " px minimum (the local crop size): remove "
                        + "or upscale such images, or lower MultiCropConfig.minImageSide to let crops upsample them");
            }
            MultiCropSample s = augmentation.apply(img, new SplittableRandom(mix(seed, epoch, position)));
            for (int v = 0; v < 2; v++) {
                System.arraycopy(s.teacher()[v], 0, teacher, (v * b + i) * gs, gs);
                System.arraycopy(s.student()[v], 0, student, (v * b + i) * gs, gs);
            }
            for (int v = 0; v < n; v++) {
                System.arraycopy(s.locals()[v], 0, locals, (v * b + i) * ls, ls);
            }
            weak[i] = s.weakFlag();
            indices[i] = index;
            labels[i] = source.label(index);
        }
        return new MultiCropBatch(Nd4j.create(teacher, new long[] {2L * b, c, g, g}, DataType.FLOAT),
                Nd4j.create(student, new long[] {2L * b, c, g, g}, DataType.FLOAT),
                Nd4j.create(locals, new long[] {(long) n * b, c, l, l}, DataType.FLOAT), weak, indices, labels);
    }

    private final class EpochIterator implements Iterator<MultiCropBatch> {
        private final int epoch;
        private final int[] perm;
        private final ArrayDeque<Future<MultiCropBatch>> inFlight = new ArrayDeque<>();
        private final List<String> unreadable = java.util.Collections.synchronizedList(new ArrayList<>());
        private int submitted;
        private int delivered;

        EpochIterator(int epoch, int fromStep) {
            this.epoch = epoch;
            this.perm = permutation(epoch);
            this.submitted = fromStep;
            this.delivered = fromStep;
            fill();
        }

        private void fill() {
            while (inFlight.size() < prefetch && submitted < stepsPerEpoch()) {
                int step = submitted++;
                inFlight.add(pool.submit(() -> build(perm, epoch, step, unreadable)));
            }
        }

        @Override
        public boolean hasNext() {
            return delivered < stepsPerEpoch();
        }

        @Override
        public MultiCropBatch next() {
            if (!hasNext()) {
                throw new NoSuchElementException();
            }
            try {
                MultiCropBatch batch = inFlight.remove().get();
                delivered++;
                fill();
                if (!hasNext() && !unreadable.isEmpty()) {
                    LOG.warn("epoch {}: skipped {} unreadable image(s), e.g. {}", epoch, unreadable.size(),
                            unreadable.get(0));
                }
                return batch;
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException("interrupted while waiting for a batch", e);
            } catch (ExecutionException e) {
                inFlight.forEach(f -> f.cancel(true));
                Throwable cause = e.getCause();
                if (cause instanceof RuntimeException re) {
                    throw re;
                }
                throw new IllegalStateException("preparing a batch failed: " + cause, cause);
            }
        }
    }

    @Override
    public void close() {
        pool.shutdownNow();
    }
}
