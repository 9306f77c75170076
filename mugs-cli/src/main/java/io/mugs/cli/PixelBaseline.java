package io.mugs.cli;

import io.mugs.data.EvalPreprocessing;
import io.mugs.data.ImageSource;
import io.mugs.eval.KnnClassifier;
import io.mugs.io.InputNormalisation;
import java.io.IOException;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * The baseline pretraining must beat: the same weighted 20-NN (T = 0.07) on normalised pixels, each image resized
 * to the evaluation size and flattened to {@code [C * S * S]}.
 *
 * <pre>{@code
 * double raw = PixelBaseline.knnTop1(train, test, cfg.inputNormalisation());
 * }</pre>
 */
final class PixelBaseline {

    private PixelBaseline() {
    }

    /** Top-1 of the 20-NN on pixels: {@code train} is the memory, {@code test} the queries. */
    static double knnTop1(ImageSource train, ImageSource test, InputNormalisation input) throws IOException {
        return new KnnClassifier(pixels(train, input), train.labels(), Math.max(1, train.classNames().size()))
                .evaluate(pixels(test, input), test.labels(), new int[] {20}, 0.07).get(20).top1();
    }

    /** Normalised pixels as rows, {@code [N, C * S * S]}, each row scaled to unit length (cosine neighbours). */
    static INDArray pixels(ImageSource s, InputNormalisation input) throws IOException {
        INDArray x = normalisedPixels(s, input);
        return x.diviColumnVector(x.norm2(1).reshape(s.size(), 1).addi(1e-12));
    }

    /** Normalised pixels as rows, {@code [N, C * S * S]} (the images' own size when {@code input} is null). */
    static INDArray normalisedPixels(ImageSource s, InputNormalisation input) throws IOException {
        if (input == null) {
            throw new IllegalStateException("pixels need an input normalisation");
        }
        int size = input.imageSize();
        int len = input.channels() * size * size;
        float[] d = new float[s.size() * len];
        for (int i = 0; i < s.size(); i++) {
            EvalPreprocessing.apply(s.load(i), size, input.mean(), input.std(), d, i * len);
        }
        return Nd4j.create(d, new long[] {s.size(), len}, DataType.FLOAT);
    }
}
