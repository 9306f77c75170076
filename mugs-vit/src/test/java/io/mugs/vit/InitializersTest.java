package io.mugs.vit;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

/** The initialisers, filled chunk by chunk, against the same draws made into one plain Java array. */
class InitializersTest {

    /** Three chunks and a tail: [3, 65536 + 7] values. */
    private static final long[] SHAPE = {3, Initializers.CHUNK + 7};

    @Test
    void chunkedDrawsEqualTheWholeArrayDrawsInOrderAndRounding() {
        int n = (int) (SHAPE[0] * SHAPE[1]);
        for (DataType type : new DataType[] {DataType.FLOAT, DataType.DOUBLE}) {
            SplittableRandom expected = new SplittableRandom(42);
            double[] normal = new double[n];
            double[] uniform = new double[n];
            double[] truncated = new double[n];
            for (int i = 0; i < n; i++) {
                normal[i] = expected.nextGaussian();
            }
            for (int i = 0; i < n; i++) {
                uniform[i] = (2 * expected.nextDouble() - 1) * 0.125;
            }
            for (int i = 0; i < n; i++) {
                double v;
                do {
                    v = expected.nextGaussian() * 1.5;
                } while (v < -2 || v > 2);
                truncated[i] = v;
            }
            SplittableRandom rng = new SplittableRandom(42);
            INDArray[] ours = {Initializers.normal(rng, type, SHAPE), Initializers.uniform(rng, type, 0.125, SHAPE),
                    Initializers.truncatedNormal(rng, type, 1.5, SHAPE)};
            double[][] theirs = {normal, uniform, truncated};
            for (int k = 0; k < 3; k++) {
                assertArrayEquals(SHAPE, ours[k].shape());
                assertEquals(type, ours[k].dataType());
                double[] got = ours[k].data().asDouble();
                for (int i = 0; i < n; i++) {
                    double want = type == DataType.FLOAT ? (float) theirs[k][i] : theirs[k][i];
                    assertEquals(want, got[i], 0.0, type + " initialiser " + k + " at " + i);
                }
            }
            assertTrue(ours[2].maxNumber().doubleValue() <= 2 && ours[2].minNumber().doubleValue() >= -2);
        }
    }
}
