package io.mugs.core.parallel;

import io.mugs.data.MultiCropBatch;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.INDArrayIndex;
import org.nd4j.linalg.indexing.NDArrayIndex;

/**
 * How a global batch is dealt to {@code n} replicas and how their outputs are put back together. Every tensor of a
 * step is view-major ({@code [V*B, ...]}: rows {@code [v*B, (v+1)*B)} are view v); replica r gets the contiguous
 * images {@code [r*B/n, (r+1)*B/n)} of every view, so its tensors are view-major {@code [V*B/n, ...]} too.
 *
 * <p>{@link #viewMajor} undoes the deal on an all-gathered tensor (replica 0's rows first): the result has the row
 * order one replica would have produced on the whole batch, so queues and memories hold the same rows in the same
 * places whatever the replica count (the official DDP code enqueues in rank order instead; InfoNCE does not depend
 * on the order of its negatives, but a checkpoint then would).
 *
 * <pre>{@code
 * MultiCropBatch mine = Shards.batch(batch, rank, n);            // [2B/n] teacher globals, ...
 * INDArray keys = Shards.viewMajor(comm.allGather(myKeys), 2, n); // [2B, K] in single-replica order
 * }</pre>
 */
public final class Shards {

    private Shards() {
    }

    /** Replica {@code rank}'s part of {@code batch}: the same images in every view, and their weak flags and ids. */
    public static MultiCropBatch batch(MultiCropBatch batch, int rank, int n) {
        int b = batch.batchSize();
        requireDivides(b, n);
        if (n == 1) {
            return batch;
        }
        int from = rank * (b / n);
        int to = from + b / n;
        int localViews = batch.locals() == null || batch.locals().length() == 0 ? 0
                : (int) (batch.locals().size(0) / b);
        INDArray locals = localViews == 0 ? batch.locals() : rows(batch.locals(), localViews, rank, n);
        return new MultiCropBatch(rows(batch.teacherGlobals(), 2, rank, n), rows(batch.studentGlobals(), 2, rank, n),
                locals, Arrays.copyOfRange(batch.weakFlags(), from, to), Arrays.copyOfRange(batch.indices(), from, to),
                Arrays.copyOfRange(batch.labels(), from, to));
    }

    /**
     * Replica {@code rank}'s rows of a view-major {@code x [V*B*T, ...]} ({@code T} rows per image, e.g. the tokens
     * of a drop-path mask): per view, the contiguous block of its images; a new array {@code [V*B*T/n, ...]}.
     */
    public static INDArray rows(INDArray x, int views, int rank, int n) {
        if (n == 1) {
            return x;
        }
        long perView = x.size(0) / views;
        if (perView * views != x.size(0) || perView % n != 0) {
            throw new IllegalArgumentException("cannot deal " + x.size(0) + " rows of " + views + " view(s) to " + n
                    + " replicas evenly");
        }
        long share = perView / n;
        INDArray[] parts = new INDArray[views];
        for (int v = 0; v < views; v++) {
            long start = v * perView + rank * share;
            parts[v] = x.get(leading(x, start, start + share));
        }
        return views == 1 ? parts[0].dup() : Nd4j.concat(0, parts);
    }

    /**
     * Puts an all-gathered {@code [n * V*b, ...]} (replica 0's view-major rows, then replica 1's, ...) in the order of
     * one replica on the whole batch: view 0 of replicas 0..n-1, then view 1, ...
     */
    public static INDArray viewMajor(INDArray gathered, int views, int n) {
        if (n == 1) {
            return gathered;
        }
        long perReplica = gathered.size(0) / n;
        long b = perReplica / views;
        if (b * views * n != gathered.size(0)) {
            throw new IllegalArgumentException("cannot regroup " + gathered.size(0) + " rows as " + n
                    + " replicas of " + views + " view(s)");
        }
        INDArray[] parts = new INDArray[views * n];
        for (int v = 0; v < views; v++) {
            for (int r = 0; r < n; r++) {
                long start = r * perReplica + v * b;
                parts[v * n + r] = gathered.get(leading(gathered, start, start + b));
            }
        }
        return Nd4j.concat(0, parts);
    }

    /** Replica {@code rank}'s slice of each drop-path mask {@code [V*B*T, 1]} of {@code views} views. */
    public static Map<String, INDArray> masks(Map<String, INDArray> masks, int views, int rank, int n) {
        Map<String, INDArray> out = new LinkedHashMap<>();
        masks.forEach((name, mask) -> out.put(name, rows(mask, views, rank, n)));
        return out;
    }

    static void requireDivides(int batch, int n) {
        if (n < 1 || batch % n != 0) {
            throw new IllegalArgumentException("a batch of " + batch + " images does not split evenly over " + n
                    + " replicas (remainder " + (n < 1 ? batch : batch % n) + "): set batchSize to a multiple of "
                    + "replicas");
        }
    }

    private static INDArrayIndex[] leading(INDArray x, long from, long to) {
        INDArrayIndex[] index = new INDArrayIndex[x.rank()];
        index[0] = NDArrayIndex.interval(from, to);
        for (int i = 1; i < index.length; i++) {
            index[i] = NDArrayIndex.all();
        }
        return index;
    }
}
