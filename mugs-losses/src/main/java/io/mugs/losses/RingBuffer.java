package io.mugs.losses;

import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.indexing.NDArrayIndex;

/** The FIFO write shared by {@link FeatureQueue} and {@link NeighbourMemory}. */
final class RingBuffer {

    private RingBuffer() {
    }

    /**
     * Writes {@code src [n, D]} into {@code buffer [K, D]} at {@code pointer}, wrapping around the end.
     *
     * @param officialPointerQuirk reproduce the official Mugs memory bug: when the write does not wrap, the
     *                             pointer advances by 2n instead of n (reference §3.2)
     * @return the new pointer
     */
    static int write(INDArray buffer, INDArray src, int pointer, boolean officialPointerQuirk) {
        int k = (int) buffer.size(0);
        if (src.rank() != 2 || src.size(1) != buffer.size(1)) {
            throw new IllegalArgumentException("rows to write must be [n, " + buffer.size(1) + "], got "
                    + java.util.Arrays.toString(src.shape()));
        }
        int n = (int) src.size(0);
        if (n == 0) {
            return pointer;
        }
        if (n >= k) {
            buffer.assign(src.get(NDArrayIndex.interval(n - k, n), NDArrayIndex.all()));
            return 0;
        }
        INDArray values = src.dataType() == buffer.dataType() ? src : src.castTo(buffer.dataType());
        if (pointer + n <= k) {
            buffer.get(NDArrayIndex.interval(pointer, pointer + n), NDArrayIndex.all()).assign(values);
            return (pointer + (officialPointerQuirk ? 2 * n : n)) % k;
        }
        int first = k - pointer;
        buffer.get(NDArrayIndex.interval(pointer, k), NDArrayIndex.all())
                .assign(values.get(NDArrayIndex.interval(0, first), NDArrayIndex.all()));
        buffer.get(NDArrayIndex.interval(0, n - first), NDArrayIndex.all())
                .assign(values.get(NDArrayIndex.interval(first, n), NDArrayIndex.all()));
        return (pointer + n) % k;
    }
}
