package io.mugs.eval;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

class TsneTest {

    @Test
    void quadtreeWithThetaZeroGivesTheExactGradient() {
        SplittableRandom r = new SplittableRandom(4);
        int n = 30;
        double[][] x = new double[n][5];
        double[][] y = new double[n][2];
        for (int i = 0; i < n; i++) {
            for (int k = 0; k < 5; k++) {
                x[i][k] = r.nextGaussian();
            }
            y[i][0] = r.nextGaussian();
            y[i][1] = r.nextGaussian();
        }
        BarnesHutTsne tsne = new BarnesHutTsne(5, 0, 1, 1);
        BarnesHutTsne.Sparse p = tsne.affinities(x, 15);
        double[][] dense = new double[n][n];
        double total = 0;
        for (int i = 0; i < n; i++) {
            for (int e = p.rowStart()[i]; e < p.rowStart()[i + 1]; e++) {
                dense[i][p.cols()[e]] = p.values()[e];
                total += p.values()[e];
            }
        }
        assertEquals(1.0, total, 1e-9, "P sums to 1");
        double z = 0;
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < n; j++) {
                if (i != j) {
                    z += 1 / (1 + Math.pow(y[i][0] - y[j][0], 2) + Math.pow(y[i][1] - y[j][1], 2));
                }
            }
        }
        double[][] bh = BarnesHutTsne.gradient(p, y, 12, 0);
        for (int i = 0; i < n; i++) {
            double[] g = new double[2];
            for (int j = 0; j < n; j++) {
                if (i == j) {
                    continue;
                }
                double dx = y[i][0] - y[j][0];
                double dy = y[i][1] - y[j][1];
                double q = 1 / (1 + dx * dx + dy * dy);
                double mult = (12 * dense[i][j] - q / z) * q;
                g[0] += 4 * mult * dx;
                g[1] += 4 * mult * dy;
            }
            assertEquals(g[0], bh[i][0], 1e-10);
            assertEquals(g[1], bh[i][1], 1e-10);
        }
        double[][] approx = BarnesHutTsne.gradient(p, y, 12, 0.5);
        double err = 0;
        for (int i = 0; i < n; i++) {
            err = Math.max(err, Math.abs(approx[i][0] - bh[i][0]));
        }
        assertTrue(err < 0.05 * java.util.Arrays.stream(bh).mapToDouble(v -> Math.abs(v[0])).max().orElse(1), "" + err);
    }

    @Test
    void separatedClustersStaySeparatedIn2d() {
        SplittableRandom r = new SplittableRandom(1);
        int per = 40;
        double[][] x = new double[3 * per][10];
        int[] labels = new int[3 * per];
        for (int i = 0; i < x.length; i++) {
            labels[i] = i / per;
            for (int k = 0; k < 10; k++) {
                x[i][k] = r.nextGaussian() + (k == labels[i] ? 8 : 0);
            }
        }
        double[][] y = new BarnesHutTsne(15, 0.5, 500, 2).embed(x);
        // 1-nearest neighbour in the embedding recovers every label.
        int correct = 0;
        for (int i = 0; i < y.length; i++) {
            int best = -1;
            double bestD = Double.MAX_VALUE;
            for (int j = 0; j < y.length; j++) {
                double d = Math.hypot(y[i][0] - y[j][0], y[i][1] - y[j][1]);
                if (j != i && d < bestD) {
                    bestD = d;
                    best = j;
                }
            }
            correct += labels[best] == labels[i] ? 1 : 0;
        }
        assertEquals(y.length, correct);
        assertThrows(IllegalArgumentException.class, () -> new BarnesHutTsne(30, 0.5, 10, 1).embed(new double[5][3]));
    }
}
