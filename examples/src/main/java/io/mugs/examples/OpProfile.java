package io.mugs.examples;

import java.util.HashMap;
import java.util.Map;
import org.nd4j.autodiff.listeners.At;
import org.nd4j.autodiff.listeners.BaseListener;
import org.nd4j.autodiff.listeners.Operation;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.autodiff.samediff.internal.SameDiffOp;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.ops.OpContext;

/**
 * A SameDiff listener that sums wall time per op type (or per op type and input shapes), to see where a step goes.
 */
final class OpProfile extends BaseListener {

    private final Map<String, long[]> byOp = new HashMap<>();
    private final boolean withShapes;
    private long start;
    private long total;

    OpProfile() {
        this(false);
    }

    /** @param withShapes key the times by op type and the shapes of its inputs */
    OpProfile(boolean withShapes) {
        this.withShapes = withShapes;
    }

    @Override
    public boolean isActive(Operation operation) {
        return true;
    }

    @Override
    public void preOpExecution(SameDiff sd, At at, SameDiffOp op, OpContext opContext) {
        start = System.nanoTime();
    }

    @Override
    public void opExecution(SameDiff sd, At at, org.nd4j.linalg.dataset.api.MultiDataSet batch, SameDiffOp op,
                            OpContext opContext, INDArray[] outputs) {
        long dt = System.nanoTime() - start;
        total += dt;
        String key = op.getOp().opName();
        if (withShapes) {
            StringBuilder sb = new StringBuilder(key);
            for (INDArray in : opContext.getInputArrays()) {
                sb.append(' ').append(java.util.Arrays.toString(in.shape()));
            }
            key = sb.toString();
        }
        long[] v = byOp.computeIfAbsent(key, k -> new long[2]);
        v[0] += dt;
        v[1]++;
    }

    void reset() {
        byOp.clear();
        total = 0;
    }

    String report(int top) {
        StringBuilder sb = new StringBuilder(String.format("op time %.1f ms%n", total / 1e6));
        byOp.entrySet().stream().sorted((a, b) -> Long.compare(b.getValue()[0], a.getValue()[0])).limit(top)
                .forEach(e -> sb.append(String.format("  %-60s %8.1f ms %5.1f%% (%d calls)%n", e.getKey(),
                        e.getValue()[0] / 1e6, 100.0 * e.getValue()[0] / total, e.getValue()[1])));
        return sb.toString();
    }
}
