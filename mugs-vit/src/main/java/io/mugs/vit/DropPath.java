package io.mugs.vit;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * Stochastic depth (timm {@code DropPath}): each residual branch of each sample is dropped with probability
 * {@code rate} and otherwise scaled by {@code 1 / (1 - rate)}.
 *
 * <p>SameDiff 1.0.0-M2.1 has no train/inference switch and no differentiable dropout, so a training graph
 * multiplies every branch by a mask placeholder {@code [B*T, 1]} (one value per sample, repeated over its T
 * tokens), which this class samples in Java from a seeded stream. Inference graphs have no masks at all.
 *
 * <pre>{@code
 * Map<String, INDArray> feed = DropPath.sample(outputs.dropPath(), batch, outputs.tokensPerImage(), rng);
 * }</pre>
 */
public final class DropPath {

    /** A mask placeholder and the drop probability of its branch. */
    public record Slot(String placeholder, double rate) {
    }

    private DropPath() {
    }

    /** Samples one mask per slot for {@code batch} images of {@code tokensPerImage} tokens each. */
    public static Map<String, INDArray> sample(List<Slot> slots, int batch, int tokensPerImage, SplittableRandom rng,
                                               DataType type) {
        Map<String, INDArray> masks = new LinkedHashMap<>();
        for (Slot slot : slots) {
            double keep = 1.0 - slot.rate();
            double[] rows = new double[batch * tokensPerImage];
            for (int b = 0; b < batch; b++) {
                double value = Math.floor(keep + rng.nextDouble()) / keep;
                java.util.Arrays.fill(rows, b * tokensPerImage, (b + 1) * tokensPerImage, value);
            }
            masks.put(slot.placeholder(), Nd4j.create(rows, new long[] {rows.length, 1}, type));
        }
        return masks;
    }

    /** Masks of ones: a training graph fed these computes exactly what the inference graph computes. */
    public static Map<String, INDArray> keepAll(List<Slot> slots, int batch, int tokensPerImage, DataType type) {
        Map<String, INDArray> masks = new LinkedHashMap<>();
        for (Slot slot : slots) {
            masks.put(slot.placeholder(), Nd4j.ones(type, (long) batch * tokensPerImage, 1));
        }
        return masks;
    }
}
