package io.mugs.core.health;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Arrays;
import java.util.Optional;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

class RepresentationHealthTest {

    @Test
    void stdPerDimensionIsZeroForOnePointAndMatchesAHandComputationOtherwise() {
        double[][] same = {{3, 4}, {3, 4}, {3, 4}};
        assertEquals(0, RepresentationHealth.stdPerDimension(Nd4j.createFromArray(same)), 1e-15);
        // rows normalise to (1,0), (0,1), (-1,0), (0,-1): per dimension the values are {1,0,-1,0}, std sqrt(1/2).
        double[][] cross = {{2, 0}, {0, 5}, {-1, 0}, {0, -3}};
        assertEquals(Math.sqrt(0.5), RepresentationHealth.stdPerDimension(Nd4j.createFromArray(cross)), 1e-15);
    }

    @Test
    void effectiveRankIsOneOnALineAndExpOfEntropyOfSingularValuesOtherwise() {
        double[][] line = {{1, 2, 3}, {2, 4, 6}, {-1, -2, -3}, {0.5, 1, 1.5}};
        assertEquals(1, RepresentationHealth.effectiveRank(Nd4j.createFromArray(line)), 1e-9);
        // Centred rows +-a e1 and +-b e2 (four rows): singular values sqrt(2) a and sqrt(2) b.
        double a = 3;
        double b = 1;
        double[][] cross = {{a, 0, 0}, {-a, 0, 0}, {0, b, 0}, {0, -b, 0}};
        double pa = a / (a + b);
        double expected = Math.exp(-(pa * Math.log(pa) + (1 - pa) * Math.log(1 - pa)));
        assertEquals(expected, RepresentationHealth.effectiveRank(Nd4j.createFromArray(cross)), 1e-12);
    }

    @Test
    void effectiveRankRecoversTheSingularValuesOfABatchBuiltFromThem() {
        double[] s = {5, 3, 2, 0.5};
        double total = Arrays.stream(s).sum();
        double h = 0;
        for (double v : s) {
            h -= v / total * Math.log(v / total);
        }
        // Tall (B 12 > d 6, the d x d Gram) and wide (B 7 < d 9, the B x B Gram).
        assertEquals(Math.exp(h), RepresentationHealth.effectiveRank(Nd4j.createFromArray(withSingularValues(12, 6, s))),
                1e-12);
        assertEquals(Math.exp(h), RepresentationHealth.effectiveRank(Nd4j.createFromArray(withSingularValues(7, 9, s))),
                1e-12);
    }

    @Test
    void jacobiFindsTheEigenvaluesOfAKnownSymmetricMatrix() {
        // [[2,1,0],[1,2,1],[0,1,2]] has eigenvalues 2 - sqrt 2, 2, 2 + sqrt 2.
        double[] values = SymmetricEigen.values(new double[][] {{2, 1, 0}, {1, 2, 1}, {0, 1, 2}});
        Arrays.sort(values);
        assertEquals(2 - Math.sqrt(2), values[0], 1e-13);
        assertEquals(2, values[1], 1e-13);
        assertEquals(2 + Math.sqrt(2), values[2], 1e-13);
    }

    @Test
    void entropiesSeparateTheTwoPrototypeCollapseModes() {
        double[][] oneHotSame = {{1, 0, 0, 0}, {1, 0, 0, 0}};
        double[][] uniform = {{0.25, 0.25, 0.25, 0.25}, {0.25, 0.25, 0.25, 0.25}};
        double[][] sharpSpread = {{1, 0, 0, 0}, {0, 1, 0, 0}, {0, 0, 1, 0}, {0, 0, 0, 1}};
        assertEquals(0, RepresentationHealth.entropyOfMean(Nd4j.createFromArray(oneHotSame)), 1e-15);
        assertEquals(0, RepresentationHealth.meanEntropy(Nd4j.createFromArray(oneHotSame)), 1e-15);
        assertEquals(Math.log(4), RepresentationHealth.entropyOfMean(Nd4j.createFromArray(uniform)), 1e-15);
        assertEquals(Math.log(4), RepresentationHealth.meanEntropy(Nd4j.createFromArray(uniform)), 1e-15);
        assertEquals(Math.log(4), RepresentationHealth.entropyOfMean(Nd4j.createFromArray(sharpSpread)), 1e-15);
        assertEquals(0, RepresentationHealth.meanEntropy(Nd4j.createFromArray(sharpSpread)), 1e-15);
        double[][] mixed = {{0.5, 0.5}, {0.9, 0.1}};
        double h1 = Math.log(2);
        double h2 = -(0.9 * Math.log(0.9) + 0.1 * Math.log(0.1));
        assertEquals((h1 + h2) / 2, RepresentationHealth.meanEntropy(Nd4j.createFromArray(mixed)), 1e-15);
        double m = 0.7;
        assertEquals(-(m * Math.log(m) + (1 - m) * Math.log(1 - m)),
                RepresentationHealth.entropyOfMean(Nd4j.createFromArray(mixed)), 1e-15);
    }

    @Test
    void agreementCountsMatchingArgMaxes() {
        INDArray teacher = Nd4j.createFromArray(new double[][] {{0.1, 0.9}, {0.8, 0.2}, {0.3, 0.7}, {0.6, 0.4}});
        INDArray student = Nd4j.createFromArray(new double[][] {{-1, 2}, {5, 1}, {3, 0}, {0, 1}});
        assertEquals(0.5, RepresentationHealth.agreement(teacher, student), 0);
    }

    @Test
    void positiveAndHardestNegativeAreMeanCosines() {
        INDArray q = Nd4j.createFromArray(new double[][] {{1, 0}, {0, 2}});
        INDArray k = Nd4j.createFromArray(new double[][] {{1, 1}, {0, 1}});
        INDArray neg = Nd4j.createFromArray(new double[][] {{-1, 0}, {3, 4}});
        double[] r = RepresentationHealth.positiveAndHardestNegative(q, k, neg);
        assertEquals((Math.sqrt(0.5) + 1) / 2, r[0], 1e-15);
        assertEquals((0.6 + 0.8) / 2, r[1], 1e-15);
    }

    @Test
    void aCollapsedRunWarnsOnceAfterThePatienceAndAHealthyOneNever() {
        CollapseWatch watch = new CollapseWatch(64, 0);
        double healthy = 1 / Math.sqrt(64);
        for (int i = 0; i < 10; i++) {
            assertEquals(Optional.empty(), watch.observe(reading(i, healthy, 20, Double.NaN, Double.NaN)));
        }
        assertEquals(Optional.empty(), watch.observe(reading(10, 0.001, 1.2, Double.NaN, Double.NaN)));
        assertEquals(Optional.empty(), watch.observe(reading(11, 0.001, 1.2, Double.NaN, Double.NaN)));
        Optional<String> warning = watch.observe(reading(12, 0.001, 1.2, Double.NaN, Double.NaN));
        assertTrue(warning.isPresent());
        assertTrue(warning.get().startsWith("representation collapse at step 12: the teacher's std per dimension is "
                + "0.0010, healthy is about 0.1250"), warning.get());
        assertEquals(Optional.empty(), watch.observe(reading(13, 0.001, 1.2, Double.NaN, Double.NaN)));
    }

    @Test
    void aDominantPrototypeWarnsNamingTheEntropy() {
        CollapseWatch watch = new CollapseWatch(64, 1024);
        Optional<String> w = Optional.empty();
        for (int i = 0; i < CollapseWatch.PATIENCE; i++) {
            w = watch.observe(reading(i, 0.1, 20, 0.05, 0.01));
        }
        assertTrue(w.orElseThrow().startsWith("prototype collapse at step 2: the entropy of the teacher's mean "
                + "prototype distribution is 0.050 nats of at most 6.931"), w.get());
        // The line is at a quarter of log K: just above it is quiet, just below it warns.
        double quarter = 0.25 * Math.log(1024);
        CollapseWatch above = new CollapseWatch(64, 1024);
        CollapseWatch below = new CollapseWatch(64, 1024);
        for (int i = 0; i < CollapseWatch.PATIENCE; i++) {
            assertEquals(Optional.empty(), above.observe(reading(i, 0.1, 20, quarter + 1e-9, 1)));
            w = below.observe(reading(i, 0.1, 20, quarter - 1e-9, 1));
        }
        assertTrue(w.isPresent());
    }

    private static CollapseWatch.Reading reading(long it, double std, double rank, double hMean, double meanH) {
        return new CollapseWatch.Reading(it, std, rank, hMean, meanH, true);
    }

    /**
     * X = U diag(s) V^T with U's columns orthonormal and orthogonal to the ones vector (so centring the rows leaves
     * X unchanged) and V's columns orthonormal: its centred singular values are exactly s.
     */
    private static double[][] withSingularValues(int b, int d, double[] s) {
        SplittableRandom random = new SplittableRandom(5);
        double[][] u = orthonormal(b, s.length, true, random);
        double[][] v = orthonormal(d, s.length, false, random);
        double[][] x = new double[b][d];
        for (int i = 0; i < b; i++) {
            for (int j = 0; j < d; j++) {
                for (int r = 0; r < s.length; r++) {
                    x[i][j] += u[r][i] * s[r] * v[r][j];
                }
            }
        }
        return x;
    }

    /** {@code count} orthonormal vectors of length n by Gram-Schmidt, orthogonal to (1,...,1) if asked. */
    private static double[][] orthonormal(int n, int count, boolean orthogonalToOnes, SplittableRandom random) {
        double[][] basis = new double[count + 1][];
        int start = 0;
        if (orthogonalToOnes) {
            basis[0] = new double[n];
            Arrays.fill(basis[0], 1 / Math.sqrt(n));
            start = 1;
        }
        for (int k = start; k < count + start; k++) {
            double[] v = new double[n];
            for (int i = 0; i < n; i++) {
                v[i] = random.nextGaussian();
            }
            for (int pass = 0; pass < 2; pass++) {
                for (int p = 0; p < k; p++) {
                    double dot = 0;
                    for (int i = 0; i < n; i++) {
                        dot += v[i] * basis[p][i];
                    }
                    for (int i = 0; i < n; i++) {
                        v[i] -= dot * basis[p][i];
                    }
                }
            }
            double norm = Math.sqrt(Arrays.stream(v).map(a -> a * a).sum());
            for (int i = 0; i < n; i++) {
                v[i] /= norm;
            }
            basis[k] = v;
        }
        return Arrays.copyOfRange(basis, start, count + start);
    }
}
