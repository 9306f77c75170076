package io.mugs.core;

import io.mugs.data.EvalPreprocessing;
import io.mugs.data.ImageSource;
import io.mugs.data.MultiCropConfig;
import io.mugs.losses.TopK;
import java.io.IOException;
import java.util.Map;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;

/**
 * Weighted k-NN accuracy of backbone features (the DINO protocol; reference §8.1): L2-normalised final-LN CLS
 * features, cosine similarity, the k nearest training features vote for their class with weight exp(sim / T).
 * A compact monitor for training; {@code mugs-eval} holds the full evaluation tools.
 *
 * <pre>{@code
 * INDArray train = KnnEvaluator.features(trainer.model().teacher(), MugsModel.TEACHER_CLS, trainSet, crops, 256);
 * double top1 = KnnEvaluator.accuracy(train, labels(trainSet), test, labels(testSet), 20, 0.07, 10);
 * }</pre>
 */
public final class KnnEvaluator {

    private KnnEvaluator() {
    }

    /** L2-normalised features [n, D] of every image of {@code source}, from graph output {@code output}. */
    public static INDArray features(SameDiff sd, String input, String output, ImageSource source,
                                    MultiCropConfig crops, int batch) throws IOException {
        int size = crops.globalSize();
        int c = crops.channels();
        INDArray out = null;
        for (int start = 0; start < source.size(); start += batch) {
            int n = Math.min(batch, source.size() - start);
            float[] data = new float[n * c * size * size];
            for (int i = 0; i < n; i++) {
                EvalPreprocessing.apply(source.load(start + i), size, crops.mean(), crops.std(), data,
                        i * c * size * size);
            }
            INDArray x = Nd4j.create(data, new long[] {n, c, size, size}, DataType.FLOAT);
            INDArray f = sd.output(Map.of(input, x), output).get(output);
            if (out == null) {
                out = Nd4j.create(DataType.FLOAT, source.size(), f.size(1));
            }
            out.get(NDArrayIndex.interval(start, start + n), NDArrayIndex.all()).assign(f);
        }
        return out.diviColumnVector(out.norm2(1).reshape(out.size(0), 1).addi(1e-12));
    }

    /** Labels of every item of {@code source}. */
    public static int[] labels(ImageSource source) {
        int[] l = new int[source.size()];
        for (int i = 0; i < l.length; i++) {
            l[i] = source.label(i);
        }
        return l;
    }

    /** Top-1 accuracy of the weighted k-NN vote, in [0, 1]; queries processed in chunks of 256. */
    public static double accuracy(INDArray train, int[] trainLabels, INDArray test, int[] testLabels, int k,
                                  double temperature, int classes) {
        int correct = 0;
        for (int start = 0; start < test.size(0); start += 256) {
            int n = (int) Math.min(256, test.size(0) - start);
            INDArray sims = test.get(NDArrayIndex.interval(start, start + n), NDArrayIndex.all())
                    .mmul(train.transpose());
            INDArray idx = TopK.indices(sims, k);
            for (int q = 0; q < n; q++) {
                double[] votes = new double[classes];
                for (int j = 0; j < k; j++) {
                    int nb = idx.getInt(q, j);
                    votes[trainLabels[nb]] += Math.exp(sims.getDouble(q, nb) / temperature);
                }
                int best = 0;
                for (int cl = 1; cl < classes; cl++) {
                    if (votes[cl] > votes[best]) {
                        best = cl;
                    }
                }
                correct += best == testLabels[start + q] ? 1 : 0;
            }
        }
        return (double) correct / test.size(0);
    }
}
