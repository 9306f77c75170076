package io.mugs.losses;

/**
 * Which (teacher view t, student view s) pairs a Mugs loss compares, and their weights (reference §2.3).
 *
 * <p>Teacher views t in {0, 1} (the two weak globals); student views s in {0 .. V-1}: s = 0, 1 are the student
 * globals, s >= 2 the local crops. Pairs with s == t are skipped (a DINO leftover kept by the reference).
 * <ul>
 *   <li>{@link Weighting#OFFICIAL}: loss = 1/2 (mean over the 2 global pairs + mean over the 2(V-2) local
 *       pairs), as the released code computes it. With no local crops the reference divides by zero; here the
 *       loss is then the mean over the global pairs.</li>
 *   <li>{@link Weighting#UNIFORM}: DINO's plain mean over all pairs.</li>
 * </ul>
 *
 * <pre>{@code
 * MultiCropPairing p = new MultiCropPairing(2 + 10, MultiCropPairing.Weighting.OFFICIAL);
 * double w = p.weight(0, 5);   // 1/40
 * }</pre>
 *
 * @param studentViews V = 2 globals + number of local crops
 */
public record MultiCropPairing(int studentViews, Weighting weighting) {

    /** Number of teacher views. */
    public static final int TEACHER_VIEWS = 2;

    /** How pair losses are averaged. */
    public enum Weighting { OFFICIAL, UNIFORM }

    public MultiCropPairing {
        if (studentViews < 2) {
            throw new IllegalArgumentException("need at least the 2 student global views, got " + studentViews);
        }
    }

    public int localViews() {
        return studentViews - 2;
    }

    /** Weight of pair (t, s) in the loss; 0 for skipped pairs. The weights sum to 1. */
    public double weight(int t, int s) {
        if (t < 0 || t >= TEACHER_VIEWS || s < 0 || s >= studentViews) {
            throw new IndexOutOfBoundsException("pair (" + t + ", " + s + ") outside 2 x " + studentViews);
        }
        if (s == t) {
            return 0;
        }
        int globalPairs = 2;
        int localPairs = 2 * localViews();
        if (weighting == Weighting.UNIFORM) {
            return 1.0 / (globalPairs + localPairs);
        }
        if (localPairs == 0) {
            return 1.0 / globalPairs;
        }
        return s < 2 ? 0.5 / globalPairs : 0.5 / localPairs;
    }

    /** The weights as {@code double[2][V]}. */
    public double[][] weights() {
        double[][] w = new double[TEACHER_VIEWS][studentViews];
        for (int t = 0; t < TEACHER_VIEWS; t++) {
            for (int s = 0; s < studentViews; s++) {
                w[t][s] = weight(t, s);
            }
        }
        return w;
    }
}
