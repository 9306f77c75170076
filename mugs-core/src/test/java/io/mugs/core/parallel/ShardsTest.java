package io.mugs.core.parallel;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import io.mugs.data.MultiCropBatch;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

class ShardsTest {

    /** [rows, 2] with row i = (i, -i): the row index can be read back from the values. */
    private static INDArray numbered(int rows) {
        INDArray x = Nd4j.create(org.nd4j.linalg.api.buffer.DataType.FLOAT, rows, 2);
        for (int i = 0; i < rows; i++) {
            x.putScalar(i, 0, i);
            x.putScalar(i, 1, -i);
        }
        return x;
    }

    private static float[] firstColumn(INDArray x) {
        return x.getColumn(0).toFloatVector();
    }

    @Test
    void aReplicaGetsTheSameImagesOfEveryView() {
        // B = 4 images, 2 teacher views, 2 local views; replica 1 of 2 holds images 2 and 3.
        MultiCropBatch batch = new MultiCropBatch(numbered(8), numbered(8).addi(100), numbered(8).addi(200),
                new boolean[] {true, false, false, true}, new int[] {40, 41, 42, 43}, new int[] {0, 1, 2, 3});
        MultiCropBatch mine = Shards.batch(batch, 1, 2);
        assertArrayEquals(new float[] {2, 3, 6, 7}, firstColumn(mine.teacherGlobals()));
        assertArrayEquals(new float[] {102, 103, 106, 107}, firstColumn(mine.studentGlobals()));
        assertArrayEquals(new float[] {202, 203, 206, 207}, firstColumn(mine.locals()));
        assertArrayEquals(new boolean[] {false, true}, mine.weakFlags());
        assertArrayEquals(new int[] {42, 43}, mine.indices());
        assertEquals(2, mine.batchSize());
    }

    @Test
    void dropPathMasksAreDealtPerImageWithAllTheirTokens() {
        // 2 views x 4 images x 3 tokens = 24 rows; replica 0 of 2: images 0-1 of each view = rows 0-5 and 12-17.
        INDArray mask = Nd4j.arange(24).castTo(org.nd4j.linalg.api.buffer.DataType.FLOAT).reshape(24, 1);
        INDArray mine = Shards.masks(java.util.Map.of("m", mask), 2, 0, 2).get("m");
        assertArrayEquals(new float[] {0, 1, 2, 3, 4, 5, 12, 13, 14, 15, 16, 17}, mine.toFloatVector());
    }

    @Test
    void gatheringTheShardsThroughTheCommunicatorRestoresTheSingleReplicaOrder() throws Exception {
        int n = 3;
        INDArray whole = numbered(2 * 6);            // 2 views of 6 images
        List<Communicator> group = InJvmCommunicator.group(n);
        List<INDArray> back = Ranks.run(n, r -> Shards.viewMajor(
                group.get(r).allGather(Shards.rows(whole, 2, r, n)), 2, n));
        for (INDArray b : back) {
            assertEquals(whole, b);
        }
    }

    @Test
    void anUnevenDealIsRefusedWithTheRemainder() {
        MultiCropBatch batch = new MultiCropBatch(numbered(6), numbered(6), numbered(0), new boolean[3], new int[3],
                new int[3]);
        var e = assertThrows(IllegalArgumentException.class, () -> Shards.batch(batch, 0, 2));
        assertEquals("a batch of 3 images does not split evenly over 2 replicas (remainder 1): set batchSize to a "
                + "multiple of replicas", e.getMessage());
    }
}
