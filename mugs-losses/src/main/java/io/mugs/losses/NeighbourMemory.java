package io.mugs.losses;

import io.mugs.vit.Initializers;
import io.mugs.io.StateDict;
import io.mugs.io.Stateful;
import java.util.SplittableRandom;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * The local-group neighbour memory B_lg of Mugs (paper Sec. 3.2; reference §3.2): a FIFO ring buffer of
 * {@code [size, D]} backbone features (the final-LN mean patch token of global view 0) searched by cosine
 * similarity for each query's top-k neighbours.
 *
 * <p>Initialised with N(0, 1) rows like the reference. It keeps an L2-normalised copy of its rows up to date on
 * every write, so a search is one matrix product. Searches read the memory before the step's own write, so a
 * query never finds itself from the same step (there is no self-exclusion, as in the reference).
 *
 * <p>The official code advances the pointer by 2n when a write does not wrap, so half of a memory fed a
 * constant batch that divides K/2 is never written. That is off by default; {@code officialPointerQuirk =
 * true} reproduces it for runs that must match the published numbers.
 *
 * <pre>{@code
 * NeighbourMemory mem = new NeighbourMemory(65_536, 384, 8, false, DataType.FLOAT, seed);
 * INDArray idx = mem.topK(queries);          // [B, 8] INT, nearest first
 * INDArray nbrs = mem.gather(idx);           // [B, 8, 384]
 * mem.write(teacherPatchMeans);              // after the step
 * }</pre>
 */
public final class NeighbourMemory implements Stateful {

    private final INDArray rows;
    private final INDArray normalisedRows;
    private final int k;
    private final boolean officialPointerQuirk;
    private int pointer;

    /**
     * @param size                 rows K (reference 65,536)
     * @param dim                  feature width D
     * @param k                    neighbours per query (reference 8)
     * @param officialPointerQuirk reproduce the reference's 2n pointer advance
     */
    public NeighbourMemory(int size, int dim, int k, boolean officialPointerQuirk, DataType type, long seed) {
        this(Initializers.normal(new SplittableRandom(seed), type, size, dim), 0, k, officialPointerQuirk);
    }

    /** Restores a memory from checkpointed rows and pointer. */
    public NeighbourMemory(INDArray rows, int pointer, int k, boolean officialPointerQuirk) {
        if (rows.rank() != 2 || pointer < 0 || pointer >= rows.size(0)) {
            throw new IllegalArgumentException("memory rows must be [size, dim] with 0 <= pointer < size, got "
                    + java.util.Arrays.toString(rows.shape()) + " and pointer " + pointer);
        }
        if (k < 1 || k > rows.size(0)) {
            throw new IllegalArgumentException("k = " + k + " neighbours needs 1 <= k <= memory size " + rows.size(0));
        }
        this.rows = rows.dup();
        this.normalisedRows = normalise(this.rows);
        this.pointer = pointer;
        this.k = k;
        this.officialPointerQuirk = officialPointerQuirk;
    }

    private static INDArray normalise(INDArray x) {
        INDArray norms = x.norm2(1).reshape(x.size(0), 1);
        return x.divColumnVector(Nd4j.getExecutioner().exec(
                new org.nd4j.linalg.api.ops.impl.scalar.ScalarMax(norms, 1e-12)));
    }

    /** Raw rows [size, D]; a live view, do not modify. */
    public INDArray contents() {
        return rows;
    }

    /** L2-normalised rows [size, D], kept in step with {@link #contents()}; a live view. */
    public INDArray normalisedContents() {
        return normalisedRows;
    }

    public int pointer() {
        return pointer;
    }

    public int k() {
        return k;
    }

    public boolean officialPointerQuirk() {
        return officialPointerQuirk;
    }

    /**
     * Indices of each query's k most cosine-similar rows, most similar first.
     *
     * @param queries [B, D] (need not be normalised)
     * @return [B, k] INT
     */
    public INDArray topK(INDArray queries) {
        INDArray q = normalise(queries.castTo(rows.dataType()));
        return TopK.indices(q.mmul(normalisedRows.transpose()), k);
    }

    /** The rows at {@code indices [B, k]}: [B, k, D]. */
    public INDArray gather(INDArray indices) {
        long b = indices.size(0);
        INDArray flat = Nd4j.pullRows(rows, 1, indices.reshape(indices.length()).toIntVector());
        return flat.reshape(b, indices.size(1), rows.size(1));
    }

    /** Replaces the rows and pointer, checked (the assignment part of {@link #loadState}). */
    private void restore(INDArray contents, int pointer) {
        if (!java.util.Arrays.equals(contents.shape(), rows.shape()) || pointer < 0 || pointer >= rows.size(0)) {
            throw new IllegalArgumentException("memory state must be " + java.util.Arrays.toString(rows.shape())
                    + " with 0 <= pointer < " + rows.size(0) + ", got " + java.util.Arrays.toString(contents.shape())
                    + " and " + pointer);
        }
        rows.assign(contents);
        normalisedRows.assign(normalise(rows));
        this.pointer = pointer;
    }

    /** {@code rows [size, D]} and {@code pointer} (the normalised copy is recomputed on load). */
    @Override
    public void saveState(StateDict into) {
        into.putTensor("rows", rows);
        into.putCounter("pointer", pointer);
    }

    @Override
    public void loadState(StateDict from) {
        INDArray r = from.tensor("rows", rows.shape());
        int p = (int) from.counter("pointer", 0, rows.size(0) - 1);
        restore(r, p);
    }

    /** Writes {@code features [n, D]} over the oldest rows (FIFO, with wrap-around). */
    public void write(INDArray features) {
        int start = pointer;
        pointer = RingBuffer.write(rows, features, pointer, officialPointerQuirk);
        // Refresh the normalised copy of the rows just written (n rows from start, wrapping).
        int n = (int) Math.min(features.size(0), rows.size(0));
        int size = (int) rows.size(0);
        int from = features.size(0) >= size ? 0 : start;
        for (int done = 0; done < n; ) {
            int len = Math.min(n - done, size - from);
            var range = org.nd4j.linalg.indexing.NDArrayIndex.interval(from, from + len);
            normalisedRows.get(range, org.nd4j.linalg.indexing.NDArrayIndex.all())
                    .assign(normalise(rows.get(range, org.nd4j.linalg.indexing.NDArrayIndex.all())));
            done += len;
            from = (from + len) % size;
        }
    }
}
