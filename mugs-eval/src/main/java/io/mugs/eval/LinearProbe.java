package io.mugs.eval;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.ops.transforms.Transforms;

/**
 * A linear classifier on frozen features (reference §8.2): one Linear layer initialised N(0, 0.01) with zero bias,
 * softmax cross-entropy, SGD with momentum 0.9, cosine learning-rate decay over the epochs, no weight decay by
 * default. {@link #sweep} trains one classifier per learning rate and reports each on the validation features.
 *
 * <pre>{@code
 * List<LinearProbe.Result> r = new LinearProbe(100, 256, 0.0, 0).sweep(trainX, trainY, valX, valY, 10,
 *                                                                       new double[] {0.001, 0.01, 0.1});
 * }</pre>
 *
 * @param epochs      passes over the training features
 * @param batchSize   minibatch size
 * @param weightDecay L2 weight decay (0 in the reference)
 * @param seed        seed of initialisation and shuffling
 */
public record LinearProbe(int epochs, int batchSize, double weightDecay, long seed) {

    /** Validation accuracy of the classifier trained with {@code lr}. */
    public record Result(double lr, double top1, double top5, INDArray weights, INDArray bias) {
    }

    public LinearProbe {
        if (epochs < 1 || batchSize < 1 || weightDecay < 0) {
            throw new IllegalArgumentException("epochs and batchSize must be >= 1 and weightDecay >= 0");
        }
    }

    /** Trains one classifier per learning rate; results in the order of {@code lrs}. */
    public List<Result> sweep(INDArray trainX, int[] trainY, INDArray valX, int[] valY, int classes, double[] lrs) {
        List<Result> out = new ArrayList<>();
        for (double lr : lrs) {
            out.add(train(trainX, trainY, valX, valY, classes, lr));
        }
        return out;
    }

    /** Trains with one learning rate and evaluates on the validation features. */
    public Result train(INDArray trainX, int[] trainY, INDArray valX, int[] valY, int classes, double lr) {
        INDArray x = trainX.castTo(DataType.FLOAT);
        int n = (int) x.size(0);
        int d = (int) x.size(1);
        SplittableRandom rng = new SplittableRandom(seed);
        INDArray w = Nd4j.create(DataType.FLOAT, classes, d);
        for (int i = 0; i < w.length(); i++) {
            w.putScalar(i, 0.01 * rng.nextGaussian());
        }
        INDArray b = Nd4j.zeros(DataType.FLOAT, classes);
        INDArray vw = w.ulike().assign(0);
        INDArray vb = b.ulike().assign(0);
        int steps = (n + batchSize - 1) / batchSize;
        int total = epochs * steps;
        int it = 0;
        int[] order = new int[n];
        for (int i = 0; i < n; i++) {
            order[i] = i;
        }
        for (int e = 0; e < epochs; e++) {
            for (int i = n - 1; i > 0; i--) {
                int j = rng.nextInt(i + 1);
                int t = order[i];
                order[i] = order[j];
                order[j] = t;
            }
            for (int s = 0; s < steps; s++, it++) {
                int from = s * batchSize;
                int to = Math.min(n, from + batchSize);
                int[] rows = java.util.Arrays.copyOfRange(order, from, to);
                INDArray xb = Nd4j.pullRows(x, 1, rows);
                INDArray probs = Transforms.softmax(xb.mmul(w.transpose()).addiRowVector(b), false);
                for (int r = 0; r < rows.length; r++) {
                    probs.putScalar(r, trainY[rows[r]], probs.getDouble(r, trainY[rows[r]]) - 1);
                }
                probs.divi(rows.length);
                INDArray gw = probs.transpose().mmul(xb);
                if (weightDecay > 0) {
                    gw.addi(w.mul(weightDecay));
                }
                INDArray gb = probs.sum(0);
                double lrNow = 0.5 * lr * (1 + Math.cos(Math.PI * it / total));
                vw.muli(0.9).addi(gw);
                vb.muli(0.9).addi(gb);
                w.subi(vw.mul(lrNow));
                b.subi(vb.mul(lrNow));
            }
        }
        double[] acc = accuracy(valX, valY, w, b);
        return new Result(lr, acc[0], acc[1], w, b);
    }

    /** Top-1 and top-5 accuracy of a linear classifier. */
    public static double[] accuracy(INDArray x, int[] y, INDArray w, INDArray b) {
        INDArray logits = x.castTo(DataType.FLOAT).mmul(w.transpose()).addiRowVector(b);
        int top1 = 0;
        int top5 = 0;
        int classes = (int) w.size(0);
        for (int i = 0; i < y.length; i++) {
            double truth = logits.getDouble(i, y[i]);
            int above = 0;
            for (int c = 0; c < classes; c++) {
                double v = logits.getDouble(i, c);
                if (v > truth || (v == truth && c < y[i])) {
                    above++;
                }
            }
            top1 += above == 0 ? 1 : 0;
            top5 += above < 5 ? 1 : 0;
        }
        return new double[] {(double) top1 / y.length, (double) top5 / y.length};
    }
}
