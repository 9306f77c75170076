package io.mugs.eval;

import java.util.Arrays;
import java.util.SplittableRandom;

/**
 * Barnes-Hut t-SNE (van der Maaten, 2014) for tens of thousands of points: input affinities over the 3 x perplexity
 * nearest neighbours only (sparse, symmetrised), attractive forces over those pairs, repulsive forces approximated
 * with a quadtree (a cell of width w at distance d acts as one point when w / d < theta). Optimisation as in the
 * reference implementation: early exaggeration 12 for 250 iterations, momentum 0.5 then 0.8, per-coordinate gains,
 * and scikit-learn's automatic learning rate max(n / 48, 50). Written here because no Apache- or MIT-licensed
 * implementation is on Maven Central (the Java ports of the reference code are BSD-4-clause, Smile is GPL).
 * Neighbours are found by brute force (O(n^2) distances once), fine up to a few tens of thousands of points.
 *
 * <pre>{@code
 * double[][] xy = new BarnesHutTsne(30, 0.5, 1000, 0).embed(features);
 * }</pre>
 *
 * @param perplexity effective number of neighbours (30)
 * @param theta      accuracy / speed trade-off (0.5; 0 is exact)
 * @param iterations gradient steps (1000)
 * @param seed       seed of the initial layout
 */
public record BarnesHutTsne(double perplexity, double theta, int iterations, long seed) {

    public BarnesHutTsne {
        if (perplexity <= 0 || theta < 0 || iterations < 1) {
            throw new IllegalArgumentException("perplexity must be positive, theta >= 0 and iterations >= 1");
        }
    }

    /** Sparse symmetric affinities in compressed rows: row i holds cols[rowStart[i] .. rowStart[i+1]). */
    record Sparse(int[] rowStart, int[] cols, double[] values) {
    }

    public double[][] embed(double[][] x) {
        int n = x.length;
        int k = (int) Math.min(n - 1, Math.floor(3 * perplexity));
        if (n < 4 || k < 1 || perplexity >= n) {
            throw new IllegalArgumentException("t-SNE needs more points (" + n + ") than 3 x perplexity (" + perplexity
                    + "): lower the perplexity or add points");
        }
        Sparse p = affinities(x, k);
        SplittableRandom rng = new SplittableRandom(seed);
        double[][] y = new double[n][2];
        for (double[] row : y) {
            row[0] = 1e-4 * rng.nextGaussian();
            row[1] = 1e-4 * rng.nextGaussian();
        }
        double[][] velocity = new double[n][2];
        double[][] gains = new double[n][2];
        for (double[] g : gains) {
            Arrays.fill(g, 1);
        }
        double learningRate = Math.max(n / 12.0 / 4.0, 50);
        for (int it = 0; it < iterations; it++) {
            double[][] grad = gradient(p, y, it < 250 ? 12 : 1, theta);
            double momentum = it < 250 ? 0.5 : 0.8;
            double mx = 0;
            double my = 0;
            for (int i = 0; i < n; i++) {
                for (int c = 0; c < 2; c++) {
                    gains[i][c] = Math.signum(grad[i][c]) != Math.signum(velocity[i][c]) ? gains[i][c] + 0.2
                            : Math.max(0.01, gains[i][c] * 0.8);
                    velocity[i][c] = momentum * velocity[i][c] - learningRate * gains[i][c] * grad[i][c];
                    y[i][c] += velocity[i][c];
                }
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

    /** The t-SNE gradient 4 (exaggeration F_attr - F_rep / Z), repulsion through the quadtree. */
    static double[][] gradient(Sparse p, double[][] y, double exaggeration, double theta) {
        int n = y.length;
        QuadTree tree = QuadTree.build(y);
        double[][] rep = new double[n][2];
        double z = 0;
        for (int i = 0; i < n; i++) {
            z += tree.repulsion(y[i][0], y[i][1], i, theta, rep[i]);
        }
        double[][] grad = new double[n][2];
        for (int i = 0; i < n; i++) {
            double ax = 0;
            double ay = 0;
            for (int e = p.rowStart()[i]; e < p.rowStart()[i + 1]; e++) {
                int j = p.cols()[e];
                double dx = y[i][0] - y[j][0];
                double dy = y[i][1] - y[j][1];
                double q = 1 / (1 + dx * dx + dy * dy);
                ax += p.values()[e] * q * dx;
                ay += p.values()[e] * q * dy;
            }
            grad[i][0] = 4 * (exaggeration * ax - rep[i][0] / z);
            grad[i][1] = 4 * (exaggeration * ay - rep[i][1] / z);
        }
        return grad;
    }

    /** Affinities over the k nearest neighbours (brute force), calibrated to the perplexity, symmetrised. */
    Sparse affinities(double[][] x, int k) {
        int n = x.length;
        int[][] nbr = new int[n][k];
        double[][] dist = new double[n][k];
        double[] d = new double[n];
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < n; j++) {
                double s = 0;
                for (int c = 0; c < x[i].length; c++) {
                    double t = x[i][c] - x[j][c];
                    s += t * t;
                }
                d[j] = j == i ? Double.POSITIVE_INFINITY : s;
            }
            Integer[] order = new Integer[n];
            for (int j = 0; j < n; j++) {
                order[j] = j;
            }
            Arrays.sort(order, (a, b) -> Double.compare(d[a], d[b]));
            for (int m = 0; m < k; m++) {
                nbr[i][m] = order[m];
                dist[i][m] = d[order[m]];
            }
        }
        double target = Math.log(perplexity);
        double[][] cond = new double[n][k];
        for (int i = 0; i < n; i++) {
            double lo = 0;
            double hi = Double.POSITIVE_INFINITY;
            double beta = 1;
            for (int step = 0; step < 60; step++) {
                double sum = 0;
                double weighted = 0;
                for (int m = 0; m < k; m++) {
                    cond[i][m] = Math.exp(-beta * dist[i][m]);
                    sum += cond[i][m];
                    weighted += cond[i][m] * dist[i][m];
                }
                sum = Math.max(sum, 1e-300);
                double entropy = Math.log(sum) + beta * weighted / sum;
                for (int m = 0; m < k; m++) {
                    cond[i][m] /= sum;
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
        java.util.List<java.util.Map<Integer, Double>> rows = new java.util.ArrayList<>();
        for (int i = 0; i < n; i++) {
            rows.add(new java.util.HashMap<>());
        }
        for (int i = 0; i < n; i++) {
            for (int m = 0; m < k; m++) {
                double v = cond[i][m] / (2 * n);
                rows.get(i).merge(nbr[i][m], v, Double::sum);
                rows.get(nbr[i][m]).merge(i, v, Double::sum);
            }
        }
        int[] start = new int[n + 1];
        for (int i = 0; i < n; i++) {
            start[i + 1] = start[i] + rows.get(i).size();
        }
        int[] cols = new int[start[n]];
        double[] values = new double[start[n]];
        for (int i = 0; i < n; i++) {
            int e = start[i];
            for (var entry : new java.util.TreeMap<>(rows.get(i)).entrySet()) {
                cols[e] = entry.getKey();
                values[e++] = entry.getValue();
            }
        }
        return new Sparse(start, cols, values);
    }

    /** A point quadtree with centres of mass, rebuilt every iteration. */
    static final class QuadTree {
        private final double cx;
        private final double cy;
        private final double half;
        private double massX;
        private double massY;
        private int count;
        private int point = -1;
        private QuadTree[] children;

        private QuadTree(double cx, double cy, double half) {
            this.cx = cx;
            this.cy = cy;
            this.half = half;
        }

        static QuadTree build(double[][] y) {
            double minX = Double.MAX_VALUE;
            double minY = Double.MAX_VALUE;
            double maxX = -Double.MAX_VALUE;
            double maxY = -Double.MAX_VALUE;
            for (double[] p : y) {
                minX = Math.min(minX, p[0]);
                maxX = Math.max(maxX, p[0]);
                minY = Math.min(minY, p[1]);
                maxY = Math.max(maxY, p[1]);
            }
            double half = Math.max(maxX - minX, maxY - minY) / 2 + 1e-5;
            QuadTree root = new QuadTree((minX + maxX) / 2, (minY + maxY) / 2, half);
            for (int i = 0; i < y.length; i++) {
                root.insert(i, y[i][0], y[i][1], y, 0);
            }
            return root;
        }

        private void insert(int i, double x, double y, double[][] pts, int depth) {
            massX = (massX * count + x) / (count + 1);
            massY = (massY * count + y) / (count + 1);
            count++;
            if (count == 1) {
                point = i;
                return;
            }
            if (depth > 50) {      // coincident points: keep them in this leaf
                return;
            }
            if (children == null) {
                children = new QuadTree[4];
                double h = half / 2;
                children[0] = new QuadTree(cx - h, cy - h, h);
                children[1] = new QuadTree(cx + h, cy - h, h);
                children[2] = new QuadTree(cx - h, cy + h, h);
                children[3] = new QuadTree(cx + h, cy + h, h);
                if (point >= 0) {
                    int old = point;
                    point = -1;
                    child(pts[old][0], pts[old][1]).insert(old, pts[old][0], pts[old][1], pts, depth + 1);
                }
            }
            child(x, y).insert(i, x, y, pts, depth + 1);
        }

        private QuadTree child(double x, double y) {
            return children[(x > cx ? 1 : 0) + (y > cy ? 2 : 0)];
        }

        /** Adds the repulsive force on (x, y) to {@code force}; returns its share of Z. */
        double repulsion(double x, double y, int self, double theta, double[] force) {
            if (count == 0 || (count == 1 && point == self)) {
                return 0;
            }
            double dx = x - massX;
            double dy = y - massY;
            double d2 = dx * dx + dy * dy;
            if (children == null || 2 * half / Math.sqrt(d2) < theta) {
                int n = count;
                if (children == null && point < 0 && d2 == 0) {
                    return 0;
                }
                if (children == null && containsSelf(self)) {
                    n--;
                }
                double q = 1 / (1 + d2);
                force[0] += n * q * q * dx;
                force[1] += n * q * q * dy;
                return n * q;
            }
            double z = 0;
            for (QuadTree c : children) {
                z += c.repulsion(x, y, self, theta, force);
            }
            return z;
        }

        private boolean containsSelf(int self) {
            return point == self;
        }
    }
}
