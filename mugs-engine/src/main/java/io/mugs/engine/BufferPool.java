package io.mugs.engine;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.shape.Shape;
import org.nd4j.linalg.factory.Nd4j;

/**
 * Detached off-heap buffers of an {@link ExecutionPlan}, handed out by data type and length and returned at a
 * value's last use, so that a later op of the same plan writes into the same memory.
 *
 * <p>The pool only lives while a plan is built: the plan then keeps every array it was given and reuses them on
 * every run, so a planned step allocates nothing. {@link #close()} frees every buffer the pool ever created.
 */
final class BufferPool implements AutoCloseable {

    private record Key(DataType type, long length) {
    }

    private final Map<Key, Deque<INDArray>> free = new HashMap<>();
    private final List<INDArray> owned = new ArrayList<>();
    private long liveBytes;
    private long peakBytes;
    private long totalBytes;

    /**
     * An array of the given type, shape and order over a pooled buffer (reused when one of the same type and length
     * is free).
     */
    Slot take(DataType type, long[] shape, char order) {
        long length = Shape.lengthOf(shape);
        Key key = new Key(type, length);
        Deque<INDArray> q = free.get(key);
        INDArray base = q == null ? null : q.poll();
        if (base == null) {
            base = Nd4j.createUninitializedDetached(type, length);
            owned.add(base);
            totalBytes += bytes(type, length);
        }
        liveBytes += bytes(type, length);
        peakBytes = Math.max(peakBytes, liveBytes);
        INDArray view = Nd4j.create(base.data(), shape, Nd4j.getStrides(shape, order), 0, order, type);
        return new Slot(base, view);
    }

    /** Returns a buffer taken with {@link #take}. */
    void give(Slot slot) {
        INDArray base = slot.base();
        liveBytes -= bytes(base.dataType(), base.length());
        free.computeIfAbsent(new Key(base.dataType(), base.length()), k -> new ArrayDeque<>()).add(base);
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
