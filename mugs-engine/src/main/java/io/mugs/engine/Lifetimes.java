package io.mugs.engine;

import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.nd4j.autodiff.samediff.internal.SameDiffOp;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.shape.LongShapeDescriptor;
import org.nd4j.linalg.factory.Nd4j;

/**
 * Planning step 3, lifetimes: every value produced while a plan is built gets a {@link Storage} (a pooled buffer)
 * that goes back to the {@link BufferPool} once its last reader has run, so that a later op writes into the same
 * memory. Requested and static values are pinned (kept for the plan's life); aliases share their source's storage.
 */
final class Lifetimes {

    /** A storage: a pooled buffer (or an external array) and how many reads of it are still to come. */
    static final class Storage {
        final BufferPool.Slot slot;
        int pending;
        boolean pinned;
        boolean released;
        boolean reported;

        Storage(BufferPool.Slot slot) {
            this.slot = slot;
        }
    }

    /** A value of the graph while the plan is built: its array, its storage ({@code null}: none) and staticness. */
    record Value(INDArray array, Storage storage, boolean isStatic) {
    }

    private final BufferPool pool;
    private final Map<String, Integer> consumers = new HashMap<>();
    private long outputBytes;

    /** Lifetimes of the values of {@code order}: counts the ops that read each value's data. */
    Lifetimes(BufferPool pool, List<SameDiffOp> order) {
        this.pool = pool;
        for (SameDiffOp op : order) {
            for (String in : PlanInputs.dataInputs(op)) {
                consumers.merge(in, 1, Integer::sum);
            }
        }
    }

    /** Value {@code name} is read by {@code count} ops per storage it is written into (a recomputed value: 1). */
    void readers(String name, int count) {
        consumers.put(name, count);
    }

    /**
     * Output {@code i} of an op: a pooled array of {@code shape} in {@code outputs[i]}, and its storage;
     * {@code longLived}: kept to the end of the pass (see {@link BufferPool#take(DataType, long[], char, boolean)}).
     */
    Storage allocate(LongShapeDescriptor shape, DataType type, INDArray[] outputs, int i, boolean longLived) {
        if (shape.isEmpty()) {
            outputs[i] = Nd4j.empty(type);
            return null;
        }
        BufferPool.Slot slot = pool.take(type, shape.getShape(), shape.getOrder(), longLived);
        outputs[i] = slot.array();
        outputBytes += outputs[i].length() * type.width();
        return new Storage(slot);
    }

    /** A pooled copy target for {@code like} (not counted as an op output). */
    Storage copyOf(INDArray like, INDArray[] outputs, int i) {
        BufferPool.Slot slot = pool.take(like.dataType(), like.shape(), 'c');
        outputs[i] = slot.array();
        return new Storage(slot);
    }

    /** Value {@code name} was written into {@code s}: it stays until its readers ran, or for good when pinned. */
    void produced(String name, Storage s, boolean pin) {
        if (s != null) {
            s.pending += consumers.getOrDefault(name, 0);
            if (pin) {
                s.pinned = true;
            }
        }
    }

    /** {@code op} has run: its reads are done (none when null), and outputs nobody reads go back to the pool. */
    void ran(SameDiffOp op, Map<String, Value> values, Storage[] outputs) {
        for (String in : op == null ? Set.<String>of() : PlanInputs.dataInputs(op)) {
            Value value = values.get(in);
            if (value != null && value.storage() != null) {
                value.storage().pending--;
                release(value.storage());
            }
        }
        for (Storage s : outputs) {
            release(s);
        }
    }

    private void release(Storage s) {
        if (s != null && s.pending <= 0 && !s.pinned && !s.released && s.slot != null) {
            pool.give(s.slot);
            s.released = true;
        }
    }

    /** Bytes of every op output of one run: what an executor that frees nothing would hold. */
    long outputBytes() {
        return outputBytes;
    }
}
