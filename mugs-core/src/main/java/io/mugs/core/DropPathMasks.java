package io.mugs.core;

import io.mugs.vit.DropPath;
import java.util.HashMap;
import java.util.Map;
import java.util.SplittableRandom;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * One step's drop-path masks (stochastic depth, reference §1.3) for the whole batch: the global views' masks over
 * {@code 2B} images, then the local views' over {@code N·B}, drawn from one stream seeded per step. Each replica
 * feeds its slice ({@link #shard}), so N replicas drop what one would.
 *
 * <pre>{@code
 * DropPathMasks masks = trainer.dropPathMasks(batch.batchSize());
 * Map<String, INDArray> placeholders = masks.all();    // one replica: every mask by its placeholder name
 * }</pre>
 *
 * @param global mask placeholder name -> [2B·T, 1]: per image 0 or 1/(1 − rate), repeated over its T tokens
 * @param local  mask placeholder name -> [N·B·T', 1], the local views' (empty without local crops)
 */
public record DropPathMasks(Map<String, INDArray> global, Map<String, INDArray> local) {

    /** The masks of {@code model}'s student for a batch of {@code b} images with {@code localCrops} local views. */
    static DropPathMasks draw(MugsModel model, int localCrops, long seed, int b) {
        SplittableRandom rng = new SplittableRandom(seed);
        Map<String, INDArray> global = DropPath.sample(model.globalDropPath(), 2 * b, model.globalTokens(), rng,
                DataType.FLOAT);
        Map<String, INDArray> local = DropPath.sample(model.localDropPath(), localCrops * b, model.localTokens(),
                rng, DataType.FLOAT);
        return new DropPathMasks(global, local);
    }

    /** Replica r's slices, as the student graph's placeholders. */
    Map<String, INDArray> shard(Replicas replicas, int r, int localViews) {
        Map<String, INDArray> out = new HashMap<>(replicas.masks(global, 2, r));
        out.putAll(replicas.masks(local, localViews, r));
        return out;
    }

    /** Every mask, unsliced, as the student graph's placeholders. */
    public Map<String, INDArray> all() {
        Map<String, INDArray> out = new HashMap<>(global);
        out.putAll(local);
        return out;
    }
}
