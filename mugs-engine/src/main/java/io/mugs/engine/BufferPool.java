package io.mugs.engine;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.shape.Shape;
import org.nd4j.linalg.factory.Nd4j;

/**
 * Detached off-heap buffers of an {@link ExecutionPlan}, handed out by data type and length and returned at a
 * value's last use, so that a later op of the same plan writes into the same memory. A request takes the smallest
 * free buffer of its type that holds it and is at most {@code mugs.engine.poolSlack} times its length, the array then
 * a view of the buffer's first elements; only when none fits is a buffer created. The default, 1, takes only buffers
 * of the same length: {@code MemoryBudget}'s coefficients are fitted to it. 2 held 1.95 instead of 2.11 GB of
 * buffers for the ViT-S student (peak RSS 4.50 instead of 4.66 GB) and 0.12 instead of 0.16 GB for the {@code fm}
 * step, at the same speed (docs/performance.md, "Initialisation in chunks").
 *
 * <p>The pool only lives while a plan is built: the plan then keeps every array it was given and reuses them on
 * every run, so a planned step allocates nothing. {@link #close()} frees every buffer the pool ever created.
 */
final class BufferPool implements AutoCloseable {

    /** How much longer than the request a reused buffer may be: {@code mugs.engine.poolSlack}, default 1. */
    static final double SLACK = Double.parseDouble(System.getProperty("mugs.engine.poolSlack", "1"));

    private final double slack;

    private final Map<DataType, TreeMap<Long, Deque<INDArray>>> free = new HashMap<>();
    private final List<INDArray> owned = new ArrayList<>();
    private long liveBytes;
    private long peakBytes;
    private long totalBytes;

    /** A pool with {@link #SLACK}. */
    BufferPool() {
        this(SLACK);
    }

    /** A pool whose reused buffers may be up to {@code slack} times the requested length (at least 1). */
    BufferPool(double slack) {
        if (!(slack >= 1)) {
            throw new IllegalArgumentException("mugs.engine.poolSlack must be at least 1, got " + slack);
        }
        this.slack = slack;
    }

    /**
     * An array of the given type, shape and order over a pooled buffer (a free one of the same type when one holds it
     * within the slack, else a new one).
     */
    Slot take(DataType type, long[] shape, char order) {
        long length = Shape.lengthOf(shape);
        INDArray base = reuse(type, length);
        if (base == null) {
            base = Nd4j.createUninitializedDetached(type, length);
            owned.add(base);
            totalBytes += bytes(type, length);
        }
        liveBytes += bytes(type, base.length());
        peakBytes = Math.max(peakBytes, liveBytes);
        INDArray view = Nd4j.create(base.data(), shape, Nd4j.getStrides(shape, order), 0, order, type);
        return new Slot(base, view);
    }

    /** The smallest free buffer of {@code type} with at least {@code length} and at most slack times as many. */
    private INDArray reuse(DataType type, long length) {
        TreeMap<Long, Deque<INDArray>> byLength = free.get(type);
        Map.Entry<Long, Deque<INDArray>> fit = byLength == null ? null : byLength.ceilingEntry(length);
        if (fit == null || fit.getKey() > length * slack) {
            return null;
        }
        INDArray base = fit.getValue().poll();
        if (fit.getValue().isEmpty()) {
            byLength.remove(fit.getKey());
        }
        return base;
    }

    /** Returns a buffer taken with {@link #take}. */
    void give(Slot slot) {
        INDArray base = slot.base();
        liveBytes -= bytes(base.dataType(), base.length());
        free.computeIfAbsent(base.dataType(), t -> new TreeMap<>())
                .computeIfAbsent(base.length(), k -> new ArrayDeque<>()).add(base);
    }

    /** Bytes held by values alive at the same time, at most, while the plan was built. */
    long peakBytes() {
        return peakBytes;
    }

    /** Bytes of every buffer the pool created. */
    long totalBytes() {
        return totalBytes;
    }

    private static long bytes(DataType type, long length) {
        return length * type.width();
    }

    @Override
    public void close() {
        for (INDArray a : owned) {
            a.close();
        }
        owned.clear();
        free.clear();
    }

    /** A pooled buffer and the shaped array over it. */
    record Slot(INDArray base, INDArray array) {
    }
}
