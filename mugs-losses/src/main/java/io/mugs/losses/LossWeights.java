package io.mugs.losses;

import org.nd4j.autodiff.samediff.SDVariable;

/**
 * How the three granular losses combine into the training loss (reference §3.4).
 * <ul>
 *   <li>{@link Combination#OFFICIAL}: {@code (L_in + L_lg + L_g) / (w_in + w_lg + w_g)} over the losses whose
 *       weight is positive; the weights switch losses on and off and set the divisor but do not multiply
 *       (what the released code does; with weights 1, 1, 1 it is the mean of the three).</li>
 *   <li>{@link Combination#WEIGHTED}: {@code w_in L_in + w_lg L_lg + w_g L_g}, the paper's lambda weighting.</li>
 * </ul>
 * A weight of 0 switches a loss off (the paper's Table 8 ablations).
 *
 * <pre>{@code
 * LossWeights only = new LossWeights(0, 0, 1, LossWeights.Combination.OFFICIAL);   // group loss only (DINO-like)
 * }</pre>
 */
public record LossWeights(double instance, double localGroup, double group, Combination combination) {

    /** See the class documentation. */
    public enum Combination { OFFICIAL, WEIGHTED }

    public LossWeights {
        if (!(instance >= 0 && localGroup >= 0 && group >= 0) || !Double.isFinite(instance + localGroup + group)
                || instance + localGroup + group <= 0) {
            throw new IllegalArgumentException("loss weights must be finite and >= 0 with at least one positive, got "
                    + instance + ", " + localGroup + ", " + group);
        }
    }

    /** Mugs' default: all three losses, official combination. */
    public static LossWeights defaults() {
        return new LossWeights(1, 1, 1, Combination.OFFICIAL);
    }

    public boolean instanceEnabled() {
        return instance > 0;
    }

    public boolean localGroupEnabled() {
        return localGroup > 0;
    }

    public boolean groupEnabled() {
        return group > 0;
    }

    /**
     * Combines the enabled losses; a disabled loss may be passed as {@code null}.
     *
     * @return the scalar training loss
     */
    public SDVariable combine(SDVariable instanceLoss, SDVariable localGroupLoss, SDVariable groupLoss) {
        SDVariable total = null;
        double[] w = {instance, localGroup, group};
        SDVariable[] l = {instanceLoss, localGroupLoss, groupLoss};
        String[] names = {"instance", "local-group", "group"};
        double divisor = 0;
        for (int i = 0; i < 3; i++) {
            if (w[i] <= 0) {
                continue;
            }
            if (l[i] == null) {
                throw new IllegalArgumentException("the " + names[i] + " loss has weight " + w[i] + " but was not built");
            }
            SDVariable term = combination == Combination.WEIGHTED ? l[i].mul(w[i]) : l[i];
            total = total == null ? term : total.add(term);
            divisor += w[i];
        }
        return combination == Combination.OFFICIAL ? total.div(divisor) : total;
    }
}
