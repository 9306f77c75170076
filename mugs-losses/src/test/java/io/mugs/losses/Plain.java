package io.mugs.losses;

import io.mugs.vit.Initializers;
import java.util.SplittableRandom;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/** Plain-Java double-precision helpers for the independent reference computations of the tests. */
final class Plain {

    private Plain() {
    }

    static double[][] matrix(INDArray a) {
        return a.castTo(DataType.DOUBLE).toDoubleMatrix();
    }

    static double[][] weight(SameDiff sd, String name) {
        return matrix(sd.getArrForVarName(name));
    }

    static double[] vector(SameDiff sd, String name) {
        return sd.getArrForVarName(name).castTo(DataType.DOUBLE).toDoubleVector();
    }

    /** x W^T (+ b), W [out, in]. */
    static double[][] linear(double[][] x, double[][] w, double[] b) {
        double[][] y = new double[x.length][w.length];
        for (int i = 0; i < x.length; i++) {
            for (int o = 0; o < w.length; o++) {
                double s = b == null ? 0 : b[o];
                for (int k = 0; k < x[i].length; k++) {
                    s += x[i][k] * w[o][k];
                }
                y[i][o] = s;
            }
        }
        return y;
    }

    static double[][] gelu(double[][] x) {
        double[][] y = new double[x.length][];
        for (int i = 0; i < x.length; i++) {
            y[i] = new double[x[i].length];
            for (int k = 0; k < x[i].length; k++) {
                y[i][k] = 0.5 * x[i][k] * (1 + org.apache.commons.math3.special.Erf.erf(x[i][k] / Math.sqrt(2)));
            }
        }
        return y;
    }

    static double[][] normalise(double[][] x) {
        double[][] y = new double[x.length][];
        for (int i = 0; i < x.length; i++) {
            double n = 0;
            for (double v : x[i]) {
                n += v * v;
            }
            n = Math.max(Math.sqrt(n), 1e-12);
            y[i] = new double[x[i].length];
            for (int k = 0; k < x[i].length; k++) {
                y[i][k] = x[i][k] / n;
            }
        }
        return y;
    }

    /** Training-mode batch norm over rows (biased variance, eps 1e-5). */
    static double[][] batchNorm(double[][] x, double[] g, double[] b) {
        int n = x.length;
        int d = x[0].length;
        double[][] y = new double[n][d];
        for (int k = 0; k < d; k++) {
            double mean = 0;
            for (double[] row : x) {
                mean += row[k] / n;
            }
            double var = 0;
            for (double[] row : x) {
                var += (row[k] - mean) * (row[k] - mean) / n;
            }
            for (int i = 0; i < n; i++) {
                y[i][k] = (x[i][k] - mean) / Math.sqrt(var + 1e-5) * g[k] + b[k];
            }
        }
        return y;
    }

    static double dot(double[] a, double[] b) {
        double s = 0;
        for (int i = 0; i < a.length; i++) {
            s += a[i] * b[i];
        }
        return s;
    }

    static double[] logSoftmax(double[] x) {
        double max = Double.NEGATIVE_INFINITY;
        for (double v : x) {
            max = Math.max(max, v);
        }
        double z = 0;
        for (double v : x) {
            z += Math.exp(v - max);
        }
        double lse = max + Math.log(z);
        double[] y = new double[x.length];
        for (int i = 0; i < x.length; i++) {
            y[i] = x[i] - lse;
        }
        return y;
    }

    static INDArray randn(long seed, long... shape) {
        return Initializers.normal(new SplittableRandom(seed), DataType.DOUBLE, shape);
    }

    static INDArray unitRows(long seed, long rows, long dim) {
        INDArray a = randn(seed, rows, dim);
        return a.diviColumnVector(a.norm2(1).reshape(rows, 1));
    }

    static double maxAbsDiff(double[][] expected, INDArray actual) {
        double m = 0;
        for (int i = 0; i < expected.length; i++) {
            for (int k = 0; k < expected[i].length; k++) {
                m = Math.max(m, Math.abs(expected[i][k] - actual.getDouble(i, k)));
            }
        }
        return m;
    }

    static INDArray ones(long... shape) {
        return Nd4j.ones(DataType.DOUBLE, shape);
    }
}
