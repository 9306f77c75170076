package io.mugs.losses;

import java.util.Arrays;
import java.util.HashMap;
import java.util.Map;
import org.nd4j.autodiff.listeners.At;
import org.nd4j.autodiff.listeners.BaseListener;
import org.nd4j.autodiff.listeners.Listener;
import org.nd4j.autodiff.listeners.Operation;
import org.nd4j.autodiff.samediff.SDIndex;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.autodiff.samediff.internal.SameDiffOp;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.concurrency.AffinityManager;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.ops.OpContext;
import org.nd4j.linalg.factory.Nd4j;

/**
 * Top-k indices along the last dimension, computed in Java, eagerly or inside a SameDiff graph.
 *
 * <p>ND4J 1.0.0-M2.1's {@code top_k} is unusable here: {@code sd.nn.topK} ignores k, and the native op took 44 s
 * for 1,536 queries over a 65,536-row memory (a partial selection in Java takes 0.45 s). Inside a graph this class
 * therefore adds a cheap placeholder op of shape [N, k] after the similarity matrix and attaches a listener that,
 * when the similarity has been computed, overwrites that op's output with the Java top-k, before any consumer
 * reads it. The indices are INT, so no gradient flows through the selection.
 *
 * <pre>{@code
 * SDVariable idx = TopK.inGraph(sd, similarity, 8);   // [N, 8] INT, largest first
 * INDArray idx = TopK.indices(similarityArray, 8);    // eager
 * }</pre>
 */
public final class TopK {

    private TopK() {
    }

    /**
     * Indices of the k largest entries of each row, largest first (ties: lower index first).
     *
     * @param scores [N, M]
     * @return [N, k] INT
     */
    public static INDArray indices(INDArray scores, int k) {
        if (scores.rank() != 2 || k < 1 || k > scores.size(1)) {
            throw new IllegalArgumentException("top-k needs a [N, M] matrix and 1 <= k <= M, got "
                    + Arrays.toString(scores.shape()) + " and k = " + k);
        }
        int n = (int) scores.size(0);
        int m = (int) scores.size(1);
        // Read the scores in place when they are a plain float matrix (the graph's similarity, which may sit at an
        // offset of a larger buffer); copy otherwise.
        boolean inPlace = scores.dataType() == DataType.FLOAT && scores.ordering() == 'c'
                && scores.stride(1) == 1 && scores.stride(0) == m;
        INDArray plain = inPlace ? scores : scores.castTo(DataType.FLOAT).dup('c');
        Nd4j.getAffinityManager().ensureLocation(plain, AffinityManager.Location.HOST);   // CUDA: copy to host
        java.nio.FloatBuffer all = plain.data().asNioFloat();
        int[] out = new int[n * k];
        float[] best = new float[k];
        int[] bestIndex = new int[k];
        for (int r = 0; r < n; r++) {
            Arrays.fill(best, Float.NEGATIVE_INFINITY);
            Arrays.fill(bestIndex, -1);
            int off = (int) plain.offset() + r * m;
            float floor = Float.NEGATIVE_INFINITY;
            int filled = 0;
            for (int j = 0; j < m; j++) {
                float v = all.get(off + j);
                if (filled < k || v > floor) {
                    int p = Math.min(filled, k - 1);
                    while (p > 0 && (bestIndex[p - 1] < 0 || best[p - 1] < v)) {
                        best[p] = best[p - 1];
                        bestIndex[p] = bestIndex[p - 1];
                        p--;
                    }
                    best[p] = v;
                    bestIndex[p] = j;
                    filled = Math.min(filled + 1, k);
                    floor = filled == k ? best[k - 1] : Float.NEGATIVE_INFINITY;
                }
            }
            System.arraycopy(bestIndex, 0, out, r * k, k);
        }
        return Nd4j.createFromArray(out).reshape(n, k);
    }

    /**
     * Graph op: indices [N, k] (INT) of the k largest entries of each row of {@code scores} [N, M].
     */
    public static SDVariable inGraph(SameDiff sd, SDVariable scores, int k) {
        SDVariable slot = scores.get(SDIndex.all(), SDIndex.interval(0, k)).castTo(DataType.INT);
        Filler.attach(sd).register(scores.name(), slot.name(), k);
        return slot;
    }

    /** The listener that fills the placeholder ops of {@link #inGraph}. One per SameDiff instance. */
    static final class Filler extends BaseListener {
        private final Map<String, String> slotOfScores = new HashMap<>();
        private final Map<String, Integer> kOfSlot = new HashMap<>();
        private final Map<String, INDArray> pending = new HashMap<>();

        static synchronized Filler attach(SameDiff sd) {
            for (Listener l : sd.getListeners()) {
                if (l instanceof Filler f) {
                    return f;
                }
            }
            Filler f = new Filler();
            sd.addListeners(f);
            return f;
        }

        void register(String scores, String slot, int k) {
            slotOfScores.put(scores, slot);
            kOfSlot.put(slot, k);
        }

        @Override
        public boolean isActive(Operation operation) {
            return true;
        }

        @Override
        public void opExecution(SameDiff sd, At at, org.nd4j.linalg.dataset.api.MultiDataSet batch, SameDiffOp op,
                                OpContext opContext, INDArray[] outputs) {
            for (int i = 0; i < op.getOutputsOfOp().size(); i++) {
                String name = op.getOutputsOfOp().get(i);
                String slot = slotOfScores.get(name);
                if (slot != null) {
                    pending.put(slot, indices(outputs[i], kOfSlot.get(slot)));
                }
                INDArray result = pending.remove(name);
                if (result != null) {
                    outputs[i].assign(result);
                }
            }
        }
    }
}
