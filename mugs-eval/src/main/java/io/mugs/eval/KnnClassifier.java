package io.mugs.eval;

import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.indexing.NDArrayIndex;

/**
 * Weighted k-NN classification of frozen features, the DINO protocol (reference §8.1): features L2-normalised,
 * cosine similarity, the k most similar training features vote for their class with weight exp(sim / T).
 * Several k are evaluated in one pass (the top max(k) neighbours are found once per query), and queries are
 * processed in chunks so memory stays at {@code chunk x trainSize} similarities (1.28 M x 10 k works).
 *
 * <pre>{@code
 * KnnClassifier knn = new KnnClassifier(trainFeatures, trainLabels, 10);
 * Map<Integer, KnnClassifier.Accuracy> acc = knn.evaluate(testFeatures, testLabels, new int[] {10, 20, 100, 200}, 0.07);
 * }</pre>
 */
public final class KnnClassifier {

    /** Top-1 and top-5 accuracy in [0, 1]. */
    public record Accuracy(double top1, double top5) {
    }

    private final INDArray train;
    private final int[] labels;
    private final int classes;
    private final int chunk;

    /**
     * @param trainFeatures [n, d], normalised here (a copy)
     * @param trainLabels   class of each row, in [0, classes)
     */
    public KnnClassifier(INDArray trainFeatures, int[] trainLabels, int classes) {
        this(trainFeatures, trainLabels, classes, 256);
    }

    public KnnClassifier(INDArray trainFeatures, int[] trainLabels, int classes, int chunk) {
        if (trainFeatures.rank() != 2 || trainFeatures.size(0) != trainLabels.length) {
            throw new IllegalArgumentException("train features must be [n, d] with one label per row, got "
                    + Arrays.toString(trainFeatures.shape()) + " and " + trainLabels.length + " labels");
        }
        for (int l : trainLabels) {
            if (l < 0 || l >= classes) {
                throw new IllegalArgumentException("label " + l + " outside [0, " + classes + ")");
            }
        }
        this.train = normalise(trainFeatures.castTo(DataType.FLOAT));
        this.labels = trainLabels.clone();
        this.classes = classes;
        this.chunk = chunk;
    }

    static INDArray normalise(INDArray x) {
        INDArray n = x.norm2(1).reshape(x.size(0), 1).addi(1e-12);
        return x.divColumnVector(n);
    }

    /** Accuracy for each k (k = 20, T = 0.07 is the DINO standard). */
    public Map<Integer, Accuracy> evaluate(INDArray testFeatures, int[] testLabels, int[] ks, double temperature) {
        if (testFeatures.size(0) != testLabels.length || testFeatures.size(1) != train.size(1)) {
            throw new IllegalArgumentException("test features must be [m, " + train.size(1) + "] with one label per "
                    + "row, got " + Arrays.toString(testFeatures.shape()) + " and " + testLabels.length + " labels");
        }
        int maxK = Arrays.stream(ks).max().orElseThrow();
        if (maxK > train.size(0)) {
            throw new IllegalArgumentException("k = " + maxK + " exceeds the " + train.size(0) + " training features");
        }
        INDArray test = normalise(testFeatures.castTo(DataType.FLOAT));
        int[] top1 = new int[ks.length];
        int[] top5 = new int[ks.length];
        int m = (int) test.size(0);
        for (int start = 0; start < m; start += chunk) {
            int n = Math.min(chunk, m - start);
            INDArray sims = test.get(NDArrayIndex.interval(start, start + n), NDArrayIndex.all())
                    .mmul(train.transpose());
            float[] s = sims.dup('c').data().asFloat();
            int cols = (int) train.size(0);
            for (int q = 0; q < n; q++) {
                int[] nearest = topK(s, q * cols, cols, maxK);
                for (int ki = 0; ki < ks.length; ki++) {
                    double[] votes = new double[classes];
                    for (int j = 0; j < ks[ki]; j++) {
                        votes[labels[nearest[j]]] += Math.exp(s[q * cols + nearest[j]] / temperature);
                    }
                    int[] order = ranking(votes);
                    int truth = testLabels[start + q];
                    top1[ki] += order[0] == truth ? 1 : 0;
                    for (int r = 0; r < Math.min(5, classes); r++) {
                        if (order[r] == truth) {
                            top5[ki]++;
                            break;
                        }
                    }
                }
            }
        }
        Map<Integer, Accuracy> out = new LinkedHashMap<>();
        for (int ki = 0; ki < ks.length; ki++) {
            out.put(ks[ki], new Accuracy((double) top1[ki] / m, (double) top5[ki] / m));
        }
        return out;
    }

    /** Class indices by descending votes (ties: lower class first). */
    private static int[] ranking(double[] votes) {
        Integer[] idx = new Integer[votes.length];
        for (int i = 0; i < idx.length; i++) {
            idx[i] = i;
        }
        Arrays.sort(idx, (a, b) -> votes[b] != votes[a] ? Double.compare(votes[b], votes[a]) : Integer.compare(a, b));
        return Arrays.stream(idx).mapToInt(Integer::intValue).toArray();
    }

    /** Indices of the k largest of s[off .. off+len), largest first (ties: lower index first). */
    static int[] topK(float[] s, int off, int len, int k) {
        float[] best = new float[k];
        int[] idx = new int[k];
        Arrays.fill(idx, -1);
        for (int j = 0; j < len; j++) {
            float v = s[off + j];
            if (idx[k - 1] < 0 || v > best[k - 1]) {
                int p = k - 1;
                while (p > 0 && (idx[p - 1] < 0 || best[p - 1] < v)) {
                    best[p] = best[p - 1];
                    idx[p] = idx[p - 1];
                    p--;
                }
                best[p] = v;
                idx[p] = j;
            }
        }
        return idx;
    }
}
