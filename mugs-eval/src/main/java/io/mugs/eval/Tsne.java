package io.mugs.eval;

import java.util.SplittableRandom;

/**
 * Exact t-SNE (van der Maaten and Hinton, 2008) for embedding a few thousand feature vectors in 2-D: Gaussian input
 * affinities calibrated to a perplexity by binary search, symmetrised; Student-t output affinities; gradient descent
 * with early exaggeration (12 for the first 250 iterations), momentum 0.5 then 0.8, per-coordinate gains and
 * scikit-learn's automatic learning rate max(n / 48, 50). O(n^2) per iteration: about 1,000 points per second of budget; subsample larger sets.
 * (No Apache- or MIT-licensed Barnes-Hut implementation is published on Maven Central: the Java ports are BSD-4-clause
 * and Smile is GPL.)
 *
 * <pre>{@code
 * double[][] xy = new Tsne(30, 1000, 42).embed(features);   // [n][2]
 * }</pre>
 *
 * @param perplexity effective number of neighbours (30)
 * @param iterations gradient steps (1000)
 * @param seed       seed of the initial layout
 */
public record Tsne(double perplexity, int iterations, long seed) {

    public Tsne {
        if (perplexity <= 0 || iterations < 1) {
            throw new IllegalArgumentException("perplexity must be positive and iterations >= 1");
        }
    }

    /** Embeds the rows of {@code x} [n][d] in 2-D. */
    public double[][] embed(double[][] x) {
        int n = x.length;
        if (n < 4 || perplexity >= n) {
            throw new IllegalArgumentException("t-SNE needs more points (" + n + ") than 3 x perplexity ("
                    + perplexity + "): lower the perplexity or add points");
        }
        double[][] p = affinities(x);
        SplittableRandom rng = new SplittableRandom(seed);
        double[][] y = new double[n][2];
        for (double[] row : y) {
            row[0] = 1e-4 * rng.nextGaussian();
            row[1] = 1e-4 * rng.nextGaussian();
        }
        double[][] velocity = new double[n][2];
        double[][] gains = new double[n][2];
        for (double[] g : gains) {
            g[0] = 1;
            g[1] = 1;
        }
        double[] num = new double[n * n];
        double learningRate = Math.max(n / 12.0 / 4.0, 50);   // scikit-learn's "auto" rate
        for (int it = 0; it < iterations; it++) {
            double exaggeration = it < 250 ? 12 : 1;
            double momentum = it < 250 ? 0.5 : 0.8;
            double sum = 0;
            for (int i = 0; i < n; i++) {
                for (int j = i + 1; j < n; j++) {
                    double dx = y[i][0] - y[j][0];
                    double dy = y[i][1] - y[j][1];
                    double q = 1 / (1 + dx * dx + dy * dy);
                    num[i * n + j] = q;
                    num[j * n + i] = q;
                    sum += 2 * q;
                }
            }
            for (int i = 0; i < n; i++) {
                double gx = 0;
                double gy = 0;
                for (int j = 0; j < n; j++) {
                    if (i == j) {
                        continue;
                    }
                    double q = num[i * n + j];
                    double mult = (exaggeration * p[i][j] - q / sum) * q;
                    gx += mult * (y[i][0] - y[j][0]);
                    gy += mult * (y[i][1] - y[j][1]);
                }
                double[] g = {4 * gx, 4 * gy};
                for (int c = 0; c < 2; c++) {
                    gains[i][c] = Math.signum(g[c]) != Math.signum(velocity[i][c]) ? gains[i][c] + 0.2
                            : Math.max(0.01, gains[i][c] * 0.8);
                    velocity[i][c] = momentum * velocity[i][c] - learningRate * gains[i][c] * g[c];
                }
            }
            double mx = 0;
            double my = 0;
            for (int i = 0; i < n; i++) {
                y[i][0] += velocity[i][0];
                y[i][1] += velocity[i][1];
                mx += y[i][0] / n;
                my += y[i][1] / n;
            }
            for (double[] row : y) {
                row[0] -= mx;
                row[1] -= my;
            }
        }
        return y;
    }

    /** Symmetrised input affinities P (rows sum to 1/n before symmetrisation). */
    double[][] affinities(double[][] x) {
        int n = x.length;
        double[][] d = new double[n][n];
        for (int i = 0; i < n; i++) {
            for (int j = i + 1; j < n; j++) {
                double s = 0;
                for (int k = 0; k < x[i].length; k++) {
                    double t = x[i][k] - x[j][k];
                    s += t * t;
                }
                d[i][j] = s;
                d[j][i] = s;
            }
        }
        double target = Math.log(perplexity);
        double[][] p = new double[n][n];
        for (int i = 0; i < n; i++) {
            double lo = 0;
            double hi = Double.POSITIVE_INFINITY;
            double beta = 1;
            for (int step = 0; step < 60; step++) {
                double sum = 0;
                double weighted = 0;
                for (int j = 0; j < n; j++) {
                    if (j != i) {
                        double v = Math.exp(-beta * d[i][j]);
                        p[i][j] = v;
                        sum += v;
                        weighted += v * d[i][j];
                    }
                }
                sum = Math.max(sum, 1e-300);
                double entropy = Math.log(sum) + beta * weighted / sum;
                for (int j = 0; j < n; j++) {
                    p[i][j] /= sum;
                }
                if (Math.abs(entropy - target) < 1e-5) {
                    break;
                }
                if (entropy > target) {
                    lo = beta;
                    beta = hi == Double.POSITIVE_INFINITY ? beta * 2 : (beta + hi) / 2;
                } else {
                    hi = beta;
                    beta = (beta + lo) / 2;
                }
            }
        }
        double[][] sym = new double[n][n];
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < n; j++) {
                sym[i][j] = Math.max((p[i][j] + p[j][i]) / (2 * n), 1e-12);
            }
        }
        return sym;
    }
}
