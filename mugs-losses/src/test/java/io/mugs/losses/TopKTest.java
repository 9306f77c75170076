package io.mugs.losses;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

import java.util.Comparator;
import java.util.Random;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;

/** {@link TopK#indices} against a plain-Java sort, read in place (also at an offset) or from a copy. */
class TopKTest {

    private static int[][] expected(float[][] rows, int k) {
        int[][] out = new int[rows.length][];
        for (int r = 0; r < rows.length; r++) {
            float[] row = rows[r];
            out[r] = IntStream.range(0, row.length).boxed()
                    .sorted(Comparator.comparingDouble((Integer j) -> -row[j]).thenComparingInt(j -> j))
                    .limit(k).mapToInt(Integer::intValue).toArray();
        }
        return out;
    }

    private static float[][] random(int n, int m, long seed) {
        Random random = new Random(seed);
        float[][] rows = new float[n][m];
        for (float[] row : rows) {
            for (int j = 0; j < m; j++) {
                row[j] = (float) random.nextGaussian();
            }
        }
        return rows;
    }

    @Test
    void plainMatrixRowSliceAtAnOffsetAndTransposedViewAllGiveTheSortedIndices() {
        float[][] rows = random(7, 23, 3);
        INDArray all = Nd4j.createFromArray(rows);
        assertArrayEquals(expected(rows, 5), TopK.indices(all, 5).toIntMatrix());

        INDArray slice = all.get(NDArrayIndex.interval(2, 6), NDArrayIndex.all());
        float[][] sliceRows = java.util.Arrays.copyOfRange(rows, 2, 6);
        assertArrayEquals(expected(sliceRows, 4), TopK.indices(slice, 4).toIntMatrix(),
                "rows 2-5 read in place at offset 2 x 23");

        float[][] columns = new float[23][7];
        for (int i = 0; i < 7; i++) {
            for (int j = 0; j < 23; j++) {
                columns[j][i] = rows[i][j];
            }
        }
        assertArrayEquals(expected(columns, 3), TopK.indices(all.transpose(), 3).toIntMatrix(),
                "a transposed view is copied first");
        assertArrayEquals(expected(rows, 2), TopK.indices(all.castTo(DataType.DOUBLE), 2).toIntMatrix());
    }
}
