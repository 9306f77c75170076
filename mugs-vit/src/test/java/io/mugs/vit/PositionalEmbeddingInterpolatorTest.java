package io.mugs.vit;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.Random;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

class PositionalEmbeddingInterpolatorTest {

    private static void checkAgainstPointwise(int g, int outH, int outW) {
        int d = 3;
        Random r = new Random(g * 31L + outH);
        double[][] grid = new double[g * g][d];
        for (double[] row : grid) {
            for (int k = 0; k < d; k++) {
                row[k] = r.nextGaussian();
            }
        }
        double[][] expected = ReferenceVit.bicubicGrid(grid, g, outH, outW, d);
        INDArray m = PositionalEmbeddingInterpolator.matrix(g, g, outH, outW, DataType.DOUBLE);
        assertArrayEquals(new long[] {outH * outW, g * g}, m.shape());
        INDArray actual = m.mmul(Nd4j.create(grid));
        for (int i = 0; i < outH * outW; i++) {
            for (int k = 0; k < d; k++) {
                assertEquals(expected[i][k], actual.getDouble(i, k), 1e-12, "pixel " + i + " channel " + k);
            }
        }
    }

    @Test
    void matchesPointwiseBicubicForDownAndUpsampling() {
        checkAgainstPointwise(14, 6, 6);    // 224 -> 96 px, patch 16
        checkAgainstPointwise(7, 3, 3);     // 28 -> 12 px, patch 4
        checkAgainstPointwise(4, 6, 6);     // upsampling
        checkAgainstPointwise(5, 2, 4);     // non-square crop
        checkAgainstPointwise(14, 14, 14);  // same size: still resized (the +0.1 offset), as in PyTorch
    }

    @Test
    void rowsArePartitionsOfUnity() {
        INDArray m = PositionalEmbeddingInterpolator.matrix(14, 14, 6, 6, DataType.DOUBLE);
        INDArray sums = m.sum(1);
        for (int i = 0; i < sums.length(); i++) {
            assertEquals(1.0, sums.getDouble(i), 1e-12);
        }
    }

    @Test
    void oneDimensionalWeightsByHand() {
        // 2 -> 1 sample: scale 1.1/2 = 0.55, src = 0.5/0.55 - 0.5 = 0.40909..., taps -1,0,1,2 clamped to 0,0,1,1.
        double src = 0.5 / 0.55 - 0.5;
        double a = -0.75;
        double t = src;
        double w0 = ((a * (t + 1) - 5 * a) * (t + 1) + 8 * a) * (t + 1) - 4 * a;
        double w1 = ((a + 2) * t - (a + 3)) * t * t + 1;
        double w2 = ((a + 2) * (1 - t) - (a + 3)) * (1 - t) * (1 - t) + 1;
        double w3 = ((a * (2 - t) - 5 * a) * (2 - t) + 8 * a) * (2 - t) - 4 * a;
        double[][] r = PositionalEmbeddingInterpolator.resize1d(2, 1);
        assertEquals(w0 + w1, r[0][0], 1e-15);
        assertEquals(w2 + w3, r[0][1], 1e-15);
    }
}
