package io.mugs.core.parallel;

import java.util.List;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * The collectives data-parallel training needs, between the {@link #size()} replicas of one run. Every replica calls
 * the same collectives in the same order with arrays of the same shapes and types; a call returns once every replica
 * has made it.
 *
 * <p>Two implementations: {@link InJvmCommunicator} for replicas that are threads of one JVM (shared memory), and
 * an NCCL one for one process per GPU (module {@code mugs-nccl}, built with {@code -Pcuda}; see
 * docs/data-parallel.md).
 *
 * <pre>{@code
 * List<Communicator> group = InJvmCommunicator.group(2);   // one per replica thread
 * Communicator c = group.get(rank);
 * c.allReduceMean(List.of(gradW, gradB));                  // in place: the mean over replicas, on every replica
 * INDArray keys = c.allGather(localKeys);                  // [size * n, d], rank 0's rows first
 * }</pre>
 */
public interface Communicator extends AutoCloseable {

    /** This replica's index, 0 to {@code size() - 1}. */
    int rank();

    /** Number of replicas. */
    int size();

    /** Replaces each array, in place, by its element-wise sum over the replicas (the same on every replica). */
    void allReduceSum(List<INDArray> arrays);

    /** Replaces each array, in place, by its element-wise mean over the replicas (the same on every replica). */
    default void allReduceMean(List<INDArray> arrays) {
        allReduceSum(arrays);
        if (size() > 1) {
            arrays.forEach(a -> a.divi(size()));
        }
    }

    /**
     * Every replica's {@code local [n, ...]} stacked along the first axis in rank order: {@code [size * n, ...]}
     * (a new array; {@code n} and the trailing shape must agree across replicas).
     */
    INDArray allGather(INDArray local);

    /** Replaces {@code array}, in place, by the {@code root} replica's. */
    void broadcast(INDArray array, int root);

    /** Returns once every replica has called it. */
    void barrier();

    /** Releases what the communicator holds (no-op by default). */
    @Override
    default void close() {
    }
}
