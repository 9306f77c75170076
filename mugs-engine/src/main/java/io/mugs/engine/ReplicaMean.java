package io.mugs.engine;

import java.util.regex.Pattern;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * Batch means over the rows of every data-parallel replica (PyTorch's {@code SyncBatchNorm} statistics), as a mark
 * in the graph and a hook in the executor. A graph builder computes a batch mean with {@link #rows}: an ordinary
 * {@code mean(x, dim 0, keepDims)} whose name carries the mark {@value #MARK}. An executor given a {@link Hook}
 * ({@link GraphExecutor#replicaMean}) calls it on each marked value right after computing it, and on each marked
 * value's gradient right after computing that; with no hook (one replica) nothing changes, not even the op count.
 *
 * <p>Forward: with R replicas of n rows each, replica r computes its local mean {@code m_r [1, d]} and the hook
 * replaces it, in place, by {@code m = (1/R) Σ_s m_s}, the mean of all R·n rows (equal n; unequal row counts are
 * refused by the hook). Backward: let the step's loss be {@code L = (1/R) Σ_r L_r} (the replicas' gradients are
 * averaged by the gradient all-reduce) and {@code g_r = ∂L_r/∂m} the gradient that reaches {@code m} in replica r's
 * graph. Then {@code ∂L/∂m_s = (1/R) Σ_r g_r · ∂m/∂m_s = ḡ/R} with {@code ḡ = (1/R) Σ_r g_r}; replica s must
 * contribute {@code R · ∂L/∂m_s = ḡ} through its own rows, since its gradients are divided by R in the all-reduce. So
 * the hook replaces the gradient arriving at the mean by its mean over the replicas, and the averaged gradient is the
 * gradient of the whole batch's loss exactly (what {@code SyncBatchNorm}'s backward does with its all-reduced
 * {@code sum_dy} and {@code sum_dy_xmu}).
 *
 * <p>The official Mugs code converts the heads' batch norms to {@code SyncBatchNorm} when there are any
 * ({@code main.py} 474-479: {@code nn.SyncBatchNorm.convert_sync_batchnorm} on the student and the teacher, and wraps
 * the teacher in DDP for it), as DINO does.
 *
 * <pre>{@code
 * SDVariable mean = ReplicaMean.rows(sd, x);                        // [N, d] -> [1, d], marked
 * GraphExecutor student = GraphExecutor.gradients(sd, outputs, params)
 *         .replicaMean(new ReplicaMean.Hook() {
 *             public void forward(INDArray m, long rows) { ... all-reduce mean, check equal rows ... }
 *             public void backward(INDArray g) { communicator.allReduceMean(List.of(g)); }
 *         });
 * }</pre>
 */
public final class ReplicaMean {

    /** The mark in the name of a batch mean to take over every replica's rows. */
    public static final String MARK = "replica_mean";

    private static final Pattern MARKED = Pattern.compile("(.*/)?" + MARK + "(_\\d+)?");

    private ReplicaMean() {
    }

    /** What an executor calls at marked values; both calls must reach every replica in the same order. */
    public interface Hook {

        /**
         * Replaces {@code mean [1, d]}, in place, by its mean over the replicas.
         *
         * @param rows the rows this replica averaged; every replica must have averaged as many
         */
        void forward(INDArray mean, long rows);

        /** Replaces {@code gradient [1, d]} (of a marked mean), in place, by its mean over the replicas. */
        void backward(INDArray gradient);
    }

    /** {@code x [N, d]}'s mean over its rows, {@code [1, d]}, marked to be taken over every replica's rows. */
    public static SDVariable rows(SameDiff sd, SDVariable x) {
        String scope = sd.currentNameScope() == null ? "" : sd.currentNameScope() + "/";
        String name = MARK;
        for (int i = 1; sd.hasVariable(scope + name); i++) {
            name = MARK + "_" + i;
        }
        return x.mean(name, true, 0);
    }

    /** Whether {@code name} is a value made by {@link #rows}. */
    public static boolean marked(String name) {
        return MARKED.matcher(name).matches();
    }
}
