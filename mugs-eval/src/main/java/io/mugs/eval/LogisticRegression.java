package io.mugs.eval;

import io.mugs.engine.optim.AdamW;
import io.mugs.engine.optim.Schedules;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.ops.transforms.Transforms;

/**
 * Logistic regression on frozen features, the semi-supervised protocol of the paper (Appendix B.2.2, after DINO and
 * iBOT): softmax regression trained with AdamW (weight decay 0.05 on the weights, minibatch 1,024, cosine learning
 * rate), the learning rate swept over {0.03, 0.06, 0.10, 0.2} and chosen on a held-out part of the labelled images,
 * never on the test set; the chosen rate is then trained on all labelled images.
 * <pre>
 *   logits = x W^T + b     x [N, D], W [K, D] ~ N(0, 0.01), b [K] = 0
 *   loss   = mean_i -log softmax(logits_i)[y_i]
 * </pre>
 *
 * <pre>{@code
 * LogisticRegression lr = LogisticRegression.paper(100);
 * LogisticRegression.Sweep s = lr.sweep(features, labels, 10, LogisticRegression.PAPER_LRS, split);
 * double[] top1top5 = s.best().accuracy(testFeatures, testLabels);
 * }</pre>
 *
 * @param epochs      passes over the labelled features
 * @param batchSize   minibatch size (1,024 in the paper)
 * @param weightDecay decoupled weight decay of W (0.05 in the paper)
 * @param seed        seed of the initialisation and the order
 */
public record LogisticRegression(int epochs, int batchSize, double weightDecay, long seed) {

    /** The paper's learning-rate sweep. */
    public static final double[] PAPER_LRS = {0.03, 0.06, 0.10, 0.2};

    public LogisticRegression {
        if (epochs < 1 || batchSize < 1 || weightDecay < 0) {
            throw new IllegalArgumentException("epochs and batchSize must be >= 1 and weightDecay >= 0");
        }
    }

    /** Batch 1,024, weight decay 0.05, seed 0. */
    public static LogisticRegression paper(int epochs) {
        return new LogisticRegression(epochs, 1024, 0.05, 0);
    }

    /** A trained classifier. */
    public record Model(INDArray weights, INDArray bias, double lr) {

        /** Top-1 and top-5 accuracy in [0, 1]. */
        public double[] accuracy(INDArray x, int[] y) {
            return LinearProbe.accuracy(x, y, weights, bias);
        }
    }

    /**
     * The sweep: validation top-1 of each learning rate (trained on the fit part), and the best rate retrained on
     * every labelled row.
     */
    public record Sweep(double[] lrs, double[] validationTop1, Model best) {
    }

    /** Trains on all rows of {@code x} with learning rate {@code lr}. */
    public Model train(INDArray x, int[] y, int classes, double lr) {
        INDArray xf = x.castTo(DataType.FLOAT);
        int n = (int) xf.size(0);
        int d = (int) xf.size(1);
        SplittableRandom rng = new SplittableRandom(seed);
        INDArray w = Nd4j.create(DataType.FLOAT, classes, d);
        for (int i = 0; i < w.length(); i++) {
            w.putScalar(i, 0.01 * rng.nextGaussian());
        }
        INDArray b = Nd4j.zeros(DataType.FLOAT, classes);
        Map<String, INDArray> params = new LinkedHashMap<>();
        params.put("weight", w);
        params.put("bias", b);
        AdamW opt = new AdamW(params, name -> 1.0, name -> name.equals("weight"));
        int batch = Math.min(batchSize, n);
        int steps = (n + batch - 1) / batch;
        double[] schedule = Schedules.cosine(lr, 0, epochs, steps, 0, 0);
        int[] order = new int[n];
        for (int i = 0; i < n; i++) {
            order[i] = i;
        }
        int it = 0;
        for (int e = 0; e < epochs; e++) {
            for (int i = n - 1; i > 0; i--) {
                int j = rng.nextInt(i + 1);
                int t = order[i];
                order[i] = order[j];
                order[j] = t;
            }
            for (int s = 0; s < steps; s++, it++) {
                int[] rows = java.util.Arrays.copyOfRange(order, s * batch, Math.min(n, (s + 1) * batch));
                INDArray xb = Nd4j.pullRows(xf, 1, rows);
                INDArray probs = Transforms.softmax(xb.mmul(w.transpose()).addiRowVector(b), false);
                for (int r = 0; r < rows.length; r++) {
                    probs.putScalar(r, y[rows[r]], probs.getDouble(r, y[rows[r]]) - 1);
                }
                probs.divi(rows.length);
                Map<String, INDArray> grads = new LinkedHashMap<>();
                grads.put("weight", probs.transpose().mmul(xb));
                grads.put("bias", probs.sum(0));
                opt.step(grads, schedule[it], weightDecay, 0, name -> false);
            }
        }
        return new Model(w, b, lr);
    }

    /**
     * Sweeps {@code lrs}: trains on the {@code split.fit()} rows, scores on the {@code split.validation()} rows,
     * then retrains the best rate on every row of {@code x}.
     */
    public Sweep sweep(INDArray x, int[] y, int classes, double[] lrs, LabelSubset.Split split) {
        INDArray fitX = Nd4j.pullRows(x.castTo(DataType.FLOAT), 1, split.fit());
        INDArray valX = Nd4j.pullRows(x.castTo(DataType.FLOAT), 1, split.validation());
        int[] fitY = pick(y, split.fit());
        int[] valY = pick(y, split.validation());
        double[] top1 = new double[lrs.length];
        int best = 0;
        for (int i = 0; i < lrs.length; i++) {
            top1[i] = train(fitX, fitY, classes, lrs[i]).accuracy(valX, valY)[0];
            if (top1[i] > top1[best]) {
                best = i;
            }
        }
        return new Sweep(lrs.clone(), top1, train(x, y, classes, lrs[best]));
    }

    static int[] pick(int[] y, int[] rows) {
        int[] out = new int[rows.length];
        for (int i = 0; i < rows.length; i++) {
            out[i] = y[rows[i]];
        }
        return out;
    }

    /** Rows {@code 0..n-1} of {@code x} as a split of positions {@code fit} and {@code validation} of a subset. */
    public static LabelSubset.Split positions(int[] subsetIndices, LabelSubset.Split split) {
        Map<Integer, Integer> position = new LinkedHashMap<>();
        for (int i = 0; i < subsetIndices.length; i++) {
            position.put(subsetIndices[i], i);
        }
        List<int[]> parts = new ArrayList<>();
        for (int[] part : new int[][] {split.fit(), split.validation()}) {
            int[] p = new int[part.length];
            for (int i = 0; i < part.length; i++) {
                p[i] = position.get(part[i]);
            }
            parts.add(p);
        }
        return new LabelSubset.Split(parts.get(0), parts.get(1));
    }
}
