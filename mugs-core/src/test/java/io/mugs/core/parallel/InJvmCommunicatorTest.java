package io.mugs.core.parallel;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

class InJvmCommunicatorTest {

    /** Array i of rank r: lengths 7, 1, 30, 4, 12, element j = (r + 1) * (i + 1) + j / 8. */
    private static final int[] LENGTHS = {7, 1, 30, 4, 12};

    private static double value(int rank, int array, int element) {
        return (rank + 1) * (array + 1) + element / 8.0;
    }

    private static List<INDArray> arrays(int rank) {
        List<INDArray> out = new ArrayList<>();
        for (int i = 0; i < LENGTHS.length; i++) {
            double[] v = new double[LENGTHS[i]];
            for (int j = 0; j < v.length; j++) {
                v[j] = value(rank, i, j);
            }
            out.add(Nd4j.createFromArray(v).castTo(DataType.FLOAT));
        }
        return out;
    }

    @Test
    void allReduceLeavesTheSumAndTheMeanOnEveryRank() throws Exception {
        int n = 3;
        List<Communicator> group = InJvmCommunicator.group(n);
        List<List<INDArray>> sums = Ranks.run(n, r -> {
            List<INDArray> a = arrays(r);
            group.get(r).allReduceSum(a);
            return a;
        });
        List<List<INDArray>> means = Ranks.run(n, r -> {
            List<INDArray> a = arrays(r);
            group.get(r).allReduceMean(a);
            return a;
        });
        for (int r = 0; r < n; r++) {
            for (int i = 0; i < LENGTHS.length; i++) {
                for (int j = 0; j < LENGTHS[i]; j++) {
                    double sum = value(0, i, j) + value(1, i, j) + value(2, i, j);
                    assertEquals(sum, sums.get(r).get(i).getDouble(j), 1e-5, "sum rank " + r + " array " + i);
                    assertEquals(sum / 3, means.get(r).get(i).getDouble(j), 1e-5, "mean rank " + r + " array " + i);
                }
            }
        }
    }

    @Test
    void allGatherStacksInRankOrderAndBroadcastCopiesTheRoot() throws Exception {
        int n = 3;
        List<Communicator> group = InJvmCommunicator.group(n);
        List<INDArray> gathered = Ranks.run(n, r -> group.get(r).allGather(
                Nd4j.createFromArray(new float[][] {{r, r}, {r + 10, r + 10}})));
        float[][] expected = {{0, 0}, {10, 10}, {1, 1}, {11, 11}, {2, 2}, {12, 12}};
        for (INDArray g : gathered) {
            assertArrayEquals(new long[] {6, 2}, g.shape());
            assertArrayEquals(expected, g.toFloatMatrix());
        }
        List<INDArray> broadcast = Ranks.run(n, r -> {
            INDArray a = Nd4j.createFromArray(new float[] {r, 2 * r});
            group.get(r).broadcast(a, 2);
            return a;
        });
        broadcast.forEach(a -> assertArrayEquals(new float[] {2, 4}, a.toFloatVector()));
        assertEquals(List.of(0, 1, 2), Ranks.run(n, r -> group.get(r).rank()));
    }

    @Test
    void aGroupOfOneChangesNothing() {
        Communicator one = InJvmCommunicator.group(1).get(0);
        INDArray a = Nd4j.createFromArray(1f, 2f);
        assertSame(a, one.allGather(a));
        one.allReduceMean(List.of(a));
        one.barrier();
        assertArrayEquals(new float[] {1, 2}, a.toFloatVector());
        assertEquals(1, one.size());
    }

    @Test
    void abortWakesAReplicaWaitingInACollective() throws Exception {
        List<Communicator> group = InJvmCommunicator.group(2);
        var pool = Executors.newSingleThreadExecutor();
        try {
            Future<?> waiting = pool.submit(() -> group.get(0).barrier());
            Thread.sleep(100);
            ((InJvmCommunicator) group.get(1)).abort();
            var e = assertThrows(ExecutionException.class, () -> waiting.get(10, TimeUnit.SECONDS));
            assertEquals("replica group aborted: another replica failed", e.getCause().getMessage());
            var later = assertThrows(IllegalStateException.class, () -> group.get(1).barrier());
            assertEquals("replica group aborted: another replica failed", later.getMessage());
        } finally {
            pool.shutdownNow();
        }
    }
}
