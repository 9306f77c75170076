package io.mugs.engine.optim;

import io.mugs.engine.ParameterKernels;
import io.mugs.io.StateDict;
import io.mugs.io.Stateful;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Predicate;
import java.util.function.ToDoubleFunction;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.ops.impl.updaters.AdamUpdater;
import org.nd4j.linalg.factory.Nd4j;

/**
 * PyTorch's {@code torch.optim.AdamW} (betas 0.9/0.999, eps 1e-8) with Mugs' parameter groups, per-tensor
 * gradient clipping and last-layer freezing (reference §6), applied in place to SameDiff arrays.
 * <pre>
 *   g <- g * min(1, clip / (||g|| + 1e-6))                         per parameter tensor
 *   p <- p (1 - lr_p wd_p)                                          decoupled weight decay
 *   m <- b1 m + (1 - b1) g;  v <- b2 v + (1 - b2) g^2
 *   p <- p - lr_p / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
 * </pre>
 * lr_p = lr x 0.2 for the patch embedding ({@code patchEmbedLrMult}); wd_p = 0 for biases and 1-D parameters
 * (the reference's {@code no_wd} groups; {@code cls_token} and {@code pos_embed} keep weight decay). Frozen
 * parameters (the group head's last layer during the first epochs) get neither the step nor the decay. On the CPU
 * backend each tensor's step is one pass of {@link ParameterKernels#adamW} after its norm (Java kernel {@code update},
 * on by default); otherwise, and on CUDA, ND4J's ops. The general
 * constructor takes any per-parameter learning-rate scale and decay rule (fine-tuning's layer-wise decay:
 * lr_p = lr x scale(p), wd_p = wd when decays(p), else 0).
 *
 * <pre>{@code
 * AdamW opt = new AdamW(params, name -> name.contains("patch_embed"), 0.2);
 * opt.step(grads, lr, wd, 3.0, name -> frozen);
 * }</pre>
 */
public final class AdamW implements Stateful {

    private static final double BETA1 = 0.9;
    private static final double BETA2 = 0.999;
    private static final double EPS = 1e-8;

    /** Per-parameter state: first and second moments and the step count. */
    public static final class State {
        final INDArray m;
        final INDArray v;
        long step;

        State(INDArray m, INDArray v, long step) {
            this.m = m;
            this.v = v;
            this.step = step;
        }

        public INDArray firstMoment() {
            return m;
        }

        public INDArray secondMoment() {
            return v;
        }

        public long step() {
            return step;
        }
    }

    private final Map<String, INDArray> params;
    private final Map<String, State> state = new LinkedHashMap<>();
    private final ToDoubleFunction<String> lrScale;
    private final Predicate<String> decays;

    /**
     * Pretraining's groups.
     *
     * @param params           parameter name -> live array (updated in place)
     * @param patchEmbed       which parameters get {@code patchEmbedLrMult}
     */
    public AdamW(Map<String, INDArray> params, Predicate<String> patchEmbed, double patchEmbedLrMult) {
        this(params, name -> patchEmbed.test(name) ? patchEmbedLrMult : 1.0, name -> decays(name, params.get(name)));
    }

    /**
     * Any groups.
     *
     * @param params  parameter name -> live array (updated in place)
     * @param lrScale the learning-rate multiplier of each parameter
     * @param decays  which parameters get weight decay
     */
    public AdamW(Map<String, INDArray> params, ToDoubleFunction<String> lrScale, Predicate<String> decays) {
        this.params = params;
        this.lrScale = lrScale;
        this.decays = decays;
        for (Map.Entry<String, INDArray> e : params.entrySet()) {
            state.put(e.getKey(), new State(e.getValue().ulike().assign(0), e.getValue().ulike().assign(0), 0));
        }
    }

    /** True for parameters that get weight decay: not a bias and more than one dimension. */
    public static boolean decays(String name, INDArray param) {
        return !name.endsWith(".bias") && param.rank() > 1;
    }

    /** The learning-rate multiplier of parameter {@code name}. */
    public double lrScale(String name) {
        return lrScale.applyAsDouble(name);
    }

    /** Whether parameter {@code name} gets weight decay. */
    public boolean decays(String name) {
        return decays.test(name);
    }

    /** The moments and step count of each parameter (for checkpoints). */
    public Map<String, State> state() {
        return state;
    }

    /** Assigns one parameter's state (the assignment part of {@link #loadState}). */
    private void restore(String name, INDArray m, INDArray v, long step) {
        State s = state.get(name);
        if (s == null) {
            throw new IllegalArgumentException("no parameter " + name);
        }
        s.m.assign(m);
        s.v.assign(v);
        s.step = step;
    }

    /** {@code m/NAME}, {@code v/NAME} (each of the parameter's shape) and the counter {@code step/NAME}. */
    @Override
    public void saveState(StateDict into) {
        state.forEach((name, s) -> {
            into.putTensor("m/" + name, s.m);
            into.putTensor("v/" + name, s.v);
            into.putCounter("step/" + name, s.step);
        });
    }

    @Override
    public void loadState(StateDict from) {
        Map<String, INDArray[]> moments = new LinkedHashMap<>();
        Map<String, Long> steps = new LinkedHashMap<>();
        state.forEach((name, s) -> {     // everything checked before anything is assigned
            moments.put(name, new INDArray[] {from.tensor("m/" + name, s.m.shape()),
                    from.tensor("v/" + name, s.v.shape())});
            steps.put(name, from.counter("step/" + name, 0, Long.MAX_VALUE));
        });
        moments.forEach((name, mv) -> restore(name, mv[0], mv[1], steps.get(name)));
    }

    /**
     * One update.
     *
     * @param grads  parameter name -> gradient (overwritten: clipped, then replaced by the update)
     * @param clip   per-tensor gradient-norm limit; 0 disables clipping
     * @param frozen parameters to leave untouched this step
     * @return the names of the parameters whose gradient was clipped
     */
    public List<String> step(Map<String, INDArray> grads, double lr, double weightDecay, double clip,
                             Predicate<String> frozen) {
        List<String> clipped = new ArrayList<>();
        for (Map.Entry<String, INDArray> e : params.entrySet()) {
            String name = e.getKey();
            INDArray g = grads.get(name);
            if (g == null || frozen.test(name)) {
                continue;
            }
            INDArray p = e.getValue();
            double lrP = lr * lrScale.applyAsDouble(name);
            State s = state.get(name);
            if (ParameterKernels.covers(p, g, s.m, s.v)) {
                double scale = 1;
                if (clip > 0) {
                    double ratio = clip / (Math.sqrt(ParameterKernels.sumOfSquares(g)) + 1e-6);
                    if (ratio < 1) {
                        scale = ratio;
                        clipped.add(name);
                    }
                }
                s.step++;
                ParameterKernels.adamW(p, g, s.m, s.v, new ParameterKernels.AdamWStep(scale,
                        decays.test(name) ? 1 - lrP * weightDecay : 1, BETA1, BETA2,
                        lrP / (1 - Math.pow(BETA1, s.step)), Math.sqrt(1 - Math.pow(BETA2, s.step)), EPS));
                continue;
            }
            if (clip > 0) {
                double norm = g.norm2Number().doubleValue();
                double ratio = clip / (norm + 1e-6);
                if (ratio < 1) {
                    g.muli(ratio);
                    clipped.add(name);
                }
            }
            if (decays.test(name)) {
                p.muli(1 - lrP * weightDecay);
            }
            s.step++;
            // ND4J's fused adam_updater (in place, no temporaries): update = lr sqrt(1-b2^t)/(1-b1^t) m / (sqrt(v)
            // + eps'); with eps' = eps sqrt(1-b2^t) this is PyTorch's lr/(1-b1^t) m / (sqrt(v)/sqrt(1-b2^t) + eps).
            double bc2 = 1 - Math.pow(BETA2, s.step);
            Nd4j.exec(new AdamUpdater(g, s.v, s.m, lrP, BETA1, BETA2, EPS * Math.sqrt(bc2), (int) (s.step - 1)));
            p.subi(g);
        }
        return clipped;
    }
}
