package io.mugs.losses;

import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;

/**
 * In-graph top-k neighbour retrieval from a {@link NeighbourMemory} fed as two placeholders (its raw rows and
 * its normalised rows), so the student's local-group query needs no second forward pass:
 * <pre>
 *   idx = topk(normalize(u) . normalisedRows^T, k)      [B, k] INT, no gradient
 *   neighbours = rows[idx]                              [B, k, D]
 * </pre>
 * Gradients flow to u only through the aggregator, never through the lookup, as in the reference.
 *
 * <pre>{@code
 * SDVariable rows = sd.placeHolder("mem", FLOAT, -1, D), normed = sd.placeHolder("mem_n", FLOAT, -1, D);
 * SDVariable nbrs = NeighbourLookup.neighbours(sd, outputs.tokenMean(), normed, rows, 8);
 * feed.put("mem", memory.contents()); feed.put("mem_n", memory.normalisedContents());
 * }</pre>
 */
public final class NeighbourLookup {

    private NeighbourLookup() {
    }

    /**
     * @param query          u [B, D]
     * @param normalisedRows [K, D] unit rows
     * @param rows           [K, D]
     * @return [B, k, D]
     */
    public static SDVariable neighbours(SameDiff sd, SDVariable query, SDVariable normalisedRows, SDVariable rows,
                                        int k) {
        SDVariable similarity = sd.mmul(HeadLayers.l2Normalise(sd, query), normalisedRows, false, true, false);
        SDVariable indices = TopK.inGraph(sd, similarity, k);                          // [B, k]
        return sd.gather(rows, indices, 0);                                                   // [B, k, D]
    }
}
