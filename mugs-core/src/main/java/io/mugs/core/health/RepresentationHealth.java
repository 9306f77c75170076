package io.mugs.core.health;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * Label-free read-outs of a batch of embeddings and prototype outputs that tell a learning run from a collapsing or
 * stalled one. Every statistic is computed on the host in double precision from small step outputs (a batch of
 * embeddings [B, d], prototype scores [B, K]); none enters a graph or a gradient.
 *
 * <ul>
 *   <li>{@link #stdPerDimension}: the standard deviation over the batch of each dimension of the L2-normalised
 *       embeddings, averaged over the dimensions. Complete collapse (every image on one point) gives 0; embeddings
 *       spread evenly over the sphere give about {@code 1/sqrt(d)} (SimSiam, Chen and He 2021, §4.1).</li>
 *   <li>{@link #effectiveRank}: {@code exp(H(p))} with {@code p_i = s_i / sum_j s_j} over the singular values
 *       {@code s} of the centred batch (Roy and Vetterli 2007). Dimensional collapse (the embeddings on a
 *       low-dimensional subspace) shows here before {@link #stdPerDimension} moves: 1 for a batch on a line,
 *       {@code min(B - 1, d)} for a batch spread evenly in every direction.</li>
 *   <li>{@link #entropyOfMean} and {@link #meanEntropy}: for prototype probabilities [B, K], the entropy of the
 *       batch-mean distribution and the mean of the per-image entropies (nats). DINO's two collapse modes (Caron
 *       et al. 2021, §5.3): one prototype dominating (entropy of the mean near 0) and the uniform output (the mean
 *       per-image entropy near {@code log K}); healthy training keeps the first high and the second low.</li>
 *   <li>{@link #agreement}: the fraction of images whose highest-scoring prototype is the same for the teacher and
 *       the student.</li>
 *   <li>{@link #positiveAndHardestNegative}: for the instance loss, the mean cosine similarity of each query to its
 *       positive key and the mean of its largest cosine similarity to any negative in the queue; a gap that closes
 *       means the instance task has become impossible or trivial.</li>
 * </ul>
 *
 * <pre>{@code
 * double spread = RepresentationHealth.stdPerDimension(teacherKeys);          // [2B, 256] -> ~0.0625 when healthy
 * double rank = RepresentationHealth.effectiveRank(teacherKeys);
 * }</pre>
 */
public final class RepresentationHealth {

    private RepresentationHealth() {
    }

    /** Mean over dimensions of the batch standard deviation (population, divisor B) of the L2-normalised rows. */
    public static double stdPerDimension(INDArray embeddings) {
        double[][] z = normalisedRows(embeddings);
        int b = z.length;
        int d = z[0].length;
        double sum = 0;
        for (int j = 0; j < d; j++) {
            double mean = 0;
            for (double[] row : z) {
                mean += row[j];
            }
            mean /= b;
            double var = 0;
            for (double[] row : z) {
                var += (row[j] - mean) * (row[j] - mean);
            }
            sum += Math.sqrt(var / b);
        }
        return sum / d;
    }

    /**
     * The effective rank of a batch [B, d]: exp of the entropy of its normalised singular values, after removing
     * the batch mean. The singular values come from the eigenvalues of the smaller Gram matrix (B x B or d x d),
     * by Jacobi rotations in double precision.
     */
    public static double effectiveRank(INDArray embeddings) {
        double[][] z = rows(embeddings);
        int b = z.length;
        int d = z[0].length;
        for (int j = 0; j < d; j++) {
            double mean = 0;
            for (double[] row : z) {
                mean += row[j];
            }
            mean /= b;
            for (double[] row : z) {
                row[j] -= mean;
            }
        }
        double[][] gram;
        if (b <= d) {
            gram = new double[b][b];
            for (int i = 0; i < b; i++) {
                for (int k = i; k < b; k++) {
                    double s = dot(z[i], z[k]);
                    gram[i][k] = s;
                    gram[k][i] = s;
                }
            }
        } else {
            gram = new double[d][d];
            for (double[] row : z) {
                for (int i = 0; i < d; i++) {
                    for (int k = i; k < d; k++) {
                        gram[i][k] += row[i] * row[k];
                    }
                }
            }
            for (int i = 0; i < d; i++) {
                for (int k = 0; k < i; k++) {
                    gram[i][k] = gram[k][i];
                }
            }
        }
        double[] eigen = SymmetricEigen.values(gram);
        double largest = 0;
        for (double e : eigen) {
            largest = Math.max(largest, e);
        }
        // Eigenvalues that are zero in exact arithmetic come out near eps * largest; their square roots (about
        // 1e-8 of the largest singular value) would add spurious entropy, so they count as zero.
        double floor = 1e-12 * largest;
        double total = 0;
        double[] s = new double[eigen.length];
        for (int i = 0; i < eigen.length; i++) {
            s[i] = eigen[i] > floor ? Math.sqrt(eigen[i]) : 0;
            total += s[i];
        }
        if (total == 0) {
            return 0;
        }
        double entropy = 0;
        for (double v : s) {
            double p = v / total;
            if (p > 0) {
                entropy -= p * Math.log(p);
            }
        }
        return Math.exp(entropy);
    }

    /** Entropy (nats) of the mean of the rows of {@code probabilities} [B, K] (each row sums to 1). */
    public static double entropyOfMean(INDArray probabilities) {
        double[][] p = rows(probabilities);
        double[] mean = new double[p[0].length];
        for (double[] row : p) {
            for (int k = 0; k < row.length; k++) {
                mean[k] += row[k] / p.length;
            }
        }
        return entropy(mean);
    }

    /** Mean over rows of the entropy (nats) of each row of {@code probabilities} [B, K]. */
    public static double meanEntropy(INDArray probabilities) {
        double[][] p = rows(probabilities);
        double sum = 0;
        for (double[] row : p) {
            sum += entropy(row);
        }
        return sum / p.length;
    }

    /** Fraction of rows whose arg-max column is the same in {@code teacher} and {@code student} (both [B, K]). */
    public static double agreement(INDArray teacher, INDArray student) {
        double[][] t = rows(teacher);
        double[][] s = rows(student);
        if (t.length != s.length || t[0].length != s[0].length) {
            throw new IllegalArgumentException("teacher and student scores must have the same shape, got ["
                    + t.length + ", " + t[0].length + "] and [" + s.length + ", " + s[0].length + "]");
        }
        int same = 0;
        for (int i = 0; i < t.length; i++) {
            if (argMax(t[i]) == argMax(s[i])) {
                same++;
            }
        }
        return (double) same / t.length;
    }

    /**
     * Mean cosine similarity of each query [B, d] to its positive key [B, d] (row i to row i), and the mean over
     * queries of the largest cosine similarity to any row of {@code negatives} [Q, d].
     *
     * @return {@code {positive, hardestNegative}}
     */
    public static double[] positiveAndHardestNegative(INDArray queries, INDArray keys, INDArray negatives) {
        double[][] q = normalisedRows(queries);
        double[][] k = normalisedRows(keys);
        if (negatives.rank() != 2 || negatives.size(0) < 1 || negatives.size(1) != q[0].length) {
            throw new IllegalArgumentException("expected negatives [Q, " + q[0].length + "] with Q >= 1, got shape "
                    + java.util.Arrays.toString(negatives.shape()));
        }
        if (q.length != k.length) {
            throw new IllegalArgumentException("one positive key per query: " + q.length + " queries, " + k.length
                    + " keys");
        }
        double positive = 0;
        for (int i = 0; i < q.length; i++) {
            positive += dot(q[i], k[i]);
        }
        // [B, Q] cosines as one double-precision product: a queue of 4096 is 0.5 M dot products.
        INDArray n = negatives.castTo(DataType.DOUBLE).dup('c');
        n.diviColumnVector(org.nd4j.linalg.ops.transforms.Transforms.max(n.norm2(1).reshape(-1, 1), 1e-12));
        INDArray qn = Nd4j.createFromArray(q);
        INDArray largest = qn.mmul(n.transpose()).max(1);
        double hardest = largest.sumNumber().doubleValue();
        for (INDArray a : new INDArray[] {n, qn, largest}) {
            a.close();
        }
        return new double[] {positive / q.length, hardest / q.length};
    }

    static double entropy(double[] p) {
        double h = 0;
        for (double v : p) {
            if (v > 0) {
                h -= v * Math.log(v);
            }
        }
        return h;
    }

    private static int argMax(double[] row) {
        int best = 0;
        for (int i = 1; i < row.length; i++) {
            if (row[i] > row[best]) {
                best = i;
            }
        }
        return best;
    }

    private static double dot(double[] a, double[] b) {
        double s = 0;
        for (int i = 0; i < a.length; i++) {
            s += a[i] * b[i];
        }
        return s;
    }

    private static double[][] normalisedRows(INDArray x) {
        double[][] z = rows(x);
        for (double[] row : z) {
            double norm = Math.sqrt(dot(row, row));
            double scale = 1 / Math.max(norm, 1e-12);
            for (int j = 0; j < row.length; j++) {
                row[j] *= scale;
            }
        }
        return z;
    }

    private static double[][] rows(INDArray x) {
        if (x.rank() != 2 || x.size(0) < 1 || x.size(1) < 1) {
            throw new IllegalArgumentException("expected a batch [B, d] with B, d >= 1, got shape "
                    + java.util.Arrays.toString(x.shape()));
        }
        // One bulk copy: INDArray.toDoubleMatrix goes row by row, about 1 s for a 4096-row queue.
        INDArray c = x.castTo(DataType.DOUBLE).dup('c');
        double[] flat = c.data().asDouble();
        int b = (int) x.size(0);
        int d = (int) x.size(1);
        double[][] out = new double[b][];
        for (int i = 0; i < b; i++) {
            out[i] = java.util.Arrays.copyOfRange(flat, i * d, (i + 1) * d);
        }
        c.close();
        return out;
    }
}
