package io.mugs.losses;

import io.mugs.vit.Initializers;
import io.mugs.io.StateDict;
import io.mugs.io.Stateful;
import java.util.SplittableRandom;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * FIFO queue of teacher keys: the negatives of Mugs' InfoNCE losses (reference §3.1, MoCo-style).
 *
 * <p>Holds {@code [size, dim]} rows, initialised to random unit vectors (the reference's {@code randn} columns
 * normalised). {@link #enqueue} overwrites the oldest rows as a ring buffer with correct wrap-around. The queue
 * is read as a graph input during a step and written only after it, so both teacher views of a step see the
 * pre-step queue, as in the reference.
 *
 * <pre>{@code
 * FeatureQueue queue = new FeatureQueue(65_536, 256, DataType.FLOAT, seed);
 * feed.put("instance_queue", queue.contents());          // [K, 256], by reference
 * ... step ...
 * queue.enqueue(teacherKeysView0); queue.enqueue(teacherKeysView1);
 * }</pre>
 */
public final class FeatureQueue implements Stateful {

    private final INDArray rows;
    private int pointer;

    public FeatureQueue(int size, int dim, DataType type, long seed) {
        if (size < 1 || dim < 1) {
            throw new IllegalArgumentException("queue size and dim must be positive, got " + size + " x " + dim);
        }
        INDArray r = Initializers.normal(new SplittableRandom(seed), type, size, dim);
        rows = r.diviColumnVector(r.norm2(1).reshape(size, 1));
    }

    /** Restores a queue from checkpointed contents and pointer. */
    public FeatureQueue(INDArray contents, int pointer) {
        if (contents.rank() != 2 || pointer < 0 || pointer >= contents.size(0)) {
            throw new IllegalArgumentException("queue contents must be [size, dim] with 0 <= pointer < size, got "
                    + java.util.Arrays.toString(contents.shape()) + " and pointer " + pointer);
        }
        this.rows = contents.dup();
        this.pointer = pointer;
    }

    /** The queue rows [size, dim]; a live view, do not modify. */
    public INDArray contents() {
        return rows;
    }

    public int pointer() {
        return pointer;
    }

    public int size() {
        return (int) rows.size(0);
    }

    public int dim() {
        return (int) rows.size(1);
    }

    /** Replaces the contents and pointer, checked (the assignment part of {@link #loadState}). */
    private void restore(INDArray contents, int pointer) {
        if (!java.util.Arrays.equals(contents.shape(), rows.shape()) || pointer < 0 || pointer >= size()) {
            throw new IllegalArgumentException("queue state must be " + java.util.Arrays.toString(rows.shape())
                    + " with 0 <= pointer < " + size() + ", got " + java.util.Arrays.toString(contents.shape())
                    + " and " + pointer);
        }
        rows.assign(contents);
        this.pointer = pointer;
    }

    /** {@code rows [size, dim]} and {@code pointer}. */
    @Override
    public void saveState(StateDict into) {
        into.putTensor("rows", rows);
        into.putCounter("pointer", pointer);
    }

    @Override
    public void loadState(StateDict from) {
        INDArray r = from.tensor("rows", rows.shape());
        int p = (int) from.counter("pointer", 0, size() - 1);
        restore(r, p);
    }

    /** Writes {@code keys [n, dim]} over the oldest rows; if n exceeds the size, the last {@code size} rows win. */
    public void enqueue(INDArray keys) {
        pointer = RingBuffer.write(rows, keys, pointer, false);
    }
}
