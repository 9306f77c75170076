package io.mugs.eval;

import io.mugs.data.EvalPreprocessing;
import io.mugs.data.ImageSource;
import io.mugs.engine.GraphExecutor;
import io.mugs.vit.VisionTransformer;
import io.mugs.vit.VitOutputs;
import java.io.IOException;
import java.util.List;
import java.util.Map;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;

/**
 * Batched features of a frozen backbone (no drop-path) with the choices the reference evaluations use
 * (reference §8): the final-LN CLS token ({@link Kind#CLS}, k-NN), the concatenated CLS of the last n blocks
 * ({@link Kind#LAST_BLOCKS_CLS}, linear probe of ViT-S) or CLS followed by the mean patch token
 * ({@link Kind#CLS_AND_PATCH_MEAN}). Images go through {@link EvalPreprocessing} (resize, centre crop, normalise).
 *
 * <pre>{@code
 * FeatureExtractor fx = new FeatureExtractor(teacherBackbone, 28, FeatureExtractor.Kind.CLS, 1);
 * INDArray f = fx.extract(testSet, new double[] {0.286}, new double[] {0.353}, 256);   // [n, D]
 * }</pre>
 */
public final class FeatureExtractor {

    private static final org.slf4j.Logger LOG = org.slf4j.LoggerFactory.getLogger(FeatureExtractor.class);

    /** Which feature. */
    public enum Kind { CLS, LAST_BLOCKS_CLS, CLS_AND_PATCH_MEAN }

    private final SameDiff sd;
    private final String input;
    private final String output;
    private final int size;
    private final int channels;
    private GraphExecutor executor;

    /**
     * Adds an inference pass for {@code size x size} images to the backbone's graph, or reuses the one an earlier
     * extractor with the same settings added.
     *
     * @param lastBlocks n for {@link Kind#LAST_BLOCKS_CLS}; ignored otherwise
     */
    public FeatureExtractor(VisionTransformer backbone, int size, Kind kind, int lastBlocks) {
        this.sd = backbone.sameDiff();
        this.size = size;
        this.channels = backbone.config().inChannels();
        String tower = "features_" + kind.name().toLowerCase() + "_" + size + "_" + lastBlocks;
        this.input = backbone.prefix() + tower + "_input";
        String outputName = backbone.prefix() + tower + "/features";
        if (sd.hasVariable(outputName)) {      // the same pass was added before: reuse it
            this.output = outputName;
            return;
        }
        SDVariable x = sd.placeHolder(input, DataType.FLOAT, -1, channels, size, size);
        VitOutputs out = backbone.apply(x, size, size, VisionTransformer.Mode.INFERENCE, tower);
        SDVariable f = switch (kind) {
            case CLS -> out.cls();
            case LAST_BLOCKS_CLS -> {
                List<SDVariable> cls = backbone.intermediateCls(out, lastBlocks);
                yield cls.size() == 1 ? cls.get(0) : sd.concat(1, cls.toArray(new SDVariable[0]));
            }
            case CLS_AND_PATCH_MEAN -> sd.concat(1, out.cls(), out.patchMean());
        };
        this.output = sd.identity(outputName, f).name();
    }

    /** Features of already preprocessed images [B, C, size, size]. */
    public INDArray apply(INDArray images) {
        return run(images).dup();
    }

    /** Frees the engine's buffers of the passes run so far; the next call plans again. */
    public void close() {
        if (executor != null) {
            executor.close();
            executor = null;
        }
    }

    /** The engine's result array (overwritten by the next batch of the same size). */
    private INDArray run(INDArray images) {
        if (executor == null) {
            executor = GraphExecutor.outputs(sd, List.of(output));
        }
        return executor.run(Map.of(input, images)).outputs().get(output);
    }

    /** Features [n, F] of every image of {@code source}, in order; logs progress with ETA on long runs. */
    public INDArray extract(ImageSource source, double[] mean, double[] std, int batch) throws IOException {
        INDArray out = null;
        int per = channels * size * size;
        long t0 = System.nanoTime();
        long lastLog = t0;
        for (int start = 0; start < source.size(); start += batch) {
            long now = System.nanoTime();
            if (now - lastLog > 10_000_000_000L && start > 0) {
                double rate = start / ((now - t0) / 1e9);
                LOG.info(String.format("features: %d/%d images (%.0f %%), %.0f images/s, ETA %.0f s", start,
                        source.size(), 100.0 * start / source.size(), rate, (source.size() - start) / rate));
                lastLog = now;
            }
            int n = Math.min(batch, source.size() - start);
            float[] data = new float[n * per];
            for (int i = 0; i < n; i++) {
                EvalPreprocessing.apply(source.load(start + i), size, mean, std, data, i * per);
            }
            INDArray f = run(Nd4j.create(data, new long[] {n, channels, size, size}, DataType.FLOAT));
            if (out == null) {
                out = Nd4j.create(DataType.FLOAT, source.size(), f.size(1));
            }
            out.get(NDArrayIndex.interval(start, start + n), NDArrayIndex.all()).assign(f);
        }
        if (executor != null) {
            executor.close();   // the buffers of a batch-sized pass; the next extract plans again
        }
        return out;
    }
}
