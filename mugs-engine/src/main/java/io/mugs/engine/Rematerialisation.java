package io.mugs.engine;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.nd4j.autodiff.samediff.internal.SameDiffOp;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * Planning step 2c, rematerialisation: a large fused GELU output {@code y = gelu(x)} is freed after its forward reader
 * and computed again from {@code x} just before its backward reader, instead of staying alive through the whole pass.
 * In a transformer MLP, {@code y} feeds {@code fc2} (forward) and {@code fc2}'s {@code matmul_bp} (for its weight
 * gradient), and {@code x} stays alive anyway for the GELU's own backward: keeping both costs 4 times the hidden
 * width per token (ViT-S at batch 2 per replica: 111 MiB of the student pass's 605 MiB peak), recomputing costs one
 * GELU pass per block.
 *
 * <p>A GELU qualifies when its output has exactly two readers, a {@code matmul} and a later {@code matmul_bp}, its
 * input has a reader after the {@code matmul_bp} (so recomputing keeps nothing alive that was not), and its output
 * has at least {@link #MIN_ELEMENTS} elements (smaller ones, as in the {@code fm} presets, stay: the extra pass would
 * cost more time than their memory is worth). {@code -Dmugs.engine.rematerialise=false} turns it off.
 *
 * <pre>{@code
 * Rematerialisation remat = new Rematerialisation(order);
 * if (remat.candidate(op)) ...          // a qualifying GELU, before it runs
 * remat.before(reader)                  // the recomputations to run just before reader
 * }</pre>
 */
final class Rematerialisation {

    /** Outputs of at least this many elements are recomputed (4 MiB of floats). */
    static final long MIN_ELEMENTS = 1L << 20;

    private final Map<SameDiffOp, SameDiffOp> backwardReader = new HashMap<>();
    private final Map<SameDiffOp, List<SameDiffOp>> pending = new HashMap<>();

    Rematerialisation(List<SameDiffOp> order) {
        Map<String, List<Integer>> readers = new HashMap<>();
        for (int i = 0; i < order.size(); i++) {
            for (String in : PlanInputs.inputs(order.get(i))) {
                List<Integer> r = readers.computeIfAbsent(in, k -> new ArrayList<>());
                if (r.isEmpty() || r.get(r.size() - 1) != i) {
                    r.add(i);
                }
            }
        }
        for (SameDiffOp op : order) {
            if (!(op.getOp() instanceof FusedGeluOp gelu) || gelu.backward || PlanInputs.inputs(op).size() != 1) {
                continue;
            }
            String x = PlanInputs.inputs(op).get(0);
            List<Integer> yReaders = readers.getOrDefault(PlanFusion.out(op), List.of());
            if (yReaders.size() != 2) {
                continue;
            }
            SameDiffOp forward = order.get(yReaders.get(0));
            SameDiffOp backward = order.get(yReaders.get(1));
            List<Integer> xReaders = readers.getOrDefault(x, List.of());
            if (forward.getOp().opName().equals("matmul") && backward.getOp().opName().equals("matmul_bp")
                    && !xReaders.isEmpty() && xReaders.get(xReaders.size() - 1) > yReaders.get(1)) {
                backwardReader.put(op, backward);
            }
        }
    }

    /** Whether the planner recomputes large GELU outputs ({@code -Dmugs.engine.rematerialise}, default true). */
    static boolean enabled() {
        return !"false".equalsIgnoreCase(System.getProperty("mugs.engine.rematerialise"));
    }

    /**
     * Whether {@code gelu}'s output, of {@code x}'s length, is recomputed before its backward reader; if so, the
     * recomputation is queued for that reader.
     */
    boolean recompute(SameDiffOp gelu, INDArray x) {
        SameDiffOp reader = backwardReader.get(gelu);
        if (reader == null || x == null || x.length() < MIN_ELEMENTS) {
            return false;
        }
        SameDiffOp again = SameDiffOp.builder().name(gelu.getName() + "/again").op(new FusedGeluOp(false))
                .inputsToOp(PlanInputs.inputs(gelu)).outputsOfOp(gelu.getOutputsOfOp()).build();
        pending.computeIfAbsent(reader, k -> new ArrayList<>()).add(again);
        return true;
    }

    /** The recomputations to run just before {@code reader} (each writes the value its reader reads). */
    List<SameDiffOp> before(SameDiffOp reader) {
        List<SameDiffOp> r = pending.remove(reader);
        return r == null ? List.of() : r;
    }
}
