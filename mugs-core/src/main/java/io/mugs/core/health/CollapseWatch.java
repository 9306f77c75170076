package io.mugs.core.health;

import java.util.Locale;
import java.util.Optional;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Watches the {@link RepresentationHealth} read-outs of a run and warns once when a collapse signature appears,
 * with the numbers and what to change.
 *
 * <p>Signatures (each needs {@link #PATIENCE} consecutive readings, so one odd batch does not warn):
 * <ul>
 *   <li>complete collapse: the teacher's standard deviation per dimension below 20 % of {@code 1/sqrt(d)};</li>
 *   <li>dimensional collapse: the teacher's effective rank below 2 (the batch on a line);</li>
 *   <li>a few prototypes taking every image: the entropy of the teacher's mean prototype distribution below 25 %
 *       of {@code log K} (with K = 1024, the batch on fewer than about 6 prototypes; a run without centring gets
 *       there within 120 steps, docs/training-health.md);</li>
 *   <li>uniform prototypes: the teacher's mean per-image entropy above 95 % of {@code log K} after the
 *       temperature warm-up.</li>
 * </ul>
 *
 * <pre>{@code
 * CollapseWatch watch = new CollapseWatch(256, 1024);
 * watch.observe(reading).ifPresent(log::warn);      // at most one warning per run
 * }</pre>
 */
public final class CollapseWatch {

    /** Consecutive readings a signature must hold before the warning. */
    public static final int PATIENCE = 3;

    private static final Logger LOG = LoggerFactory.getLogger(CollapseWatch.class);

    private final int dim;
    private final int prototypes;
    private int streak;
    private String lastKind;
    private boolean warned;

    /**
     * @param dim        width of the watched embeddings (the instance head's output)
     * @param prototypes number of group prototypes K, or 0 when the group loss is off
     */
    public CollapseWatch(int dim, int prototypes) {
        if (dim < 1 || prototypes < 0) {
            throw new IllegalArgumentException("dim must be >= 1 and prototypes >= 0, got " + dim + " and "
                    + prototypes);
        }
        this.dim = dim;
        this.prototypes = prototypes;
    }

    /** One reading of the teacher's health; a NaN field means "not measured". */
    public record Reading(long iteration, double std, double effectiveRank, double entropyOfMean,
                          double meanEntropy, boolean temperatureWarmedUp) {
    }

    /** The warning, once, when a signature has held for {@link #PATIENCE} readings; empty otherwise. */
    public Optional<String> observe(Reading r) {
        if (warned) {
            return Optional.empty();
        }
        String message = signature(r);
        String kind = message == null ? null : message.substring(0, message.indexOf(" at step "));
        if (kind == null) {
            streak = 0;
            lastKind = null;
            return Optional.empty();
        }
        streak = kind.equals(lastKind) ? streak + 1 : 1;
        lastKind = kind;
        if (streak < PATIENCE) {
            return Optional.empty();
        }
        warned = true;
        return Optional.of(message);
    }

    /** As {@link #observe}, logging the warning at WARN. */
    public void observeAndLog(Reading r) {
        observe(r).ifPresent(LOG::warn);
    }

    private String signature(Reading r) {
        double healthyStd = 1 / Math.sqrt(dim);
        double logK = prototypes > 0 ? Math.log(prototypes) : Double.NaN;
        if (r.std() < 0.2 * healthyStd) {
            return String.format(Locale.ROOT, "representation collapse at step %d: the teacher's std per dimension "
                    + "is %.4f, healthy is about %.4f (1/sqrt(%d)); the embeddings have gone to one point. Check "
                    + "that the centring (group loss) or the queue (instance loss) is on, lower the learning rate or "
                    + "raise momentumTeacher, and restart from an earlier checkpoint", r.iteration(), r.std(),
                    healthyStd, dim);
        }
        if (r.effectiveRank() < 2) {
            return String.format(Locale.ROOT, "dimensional collapse at step %d: the teacher's embeddings have "
                    + "effective rank %.2f (a batch on a line); raise the instance loss weight or the queue size, "
                    + "or lower the learning rate", r.iteration(), r.effectiveRank());
        }
        if (prototypes > 0 && r.entropyOfMean() < 0.25 * logK) {
            return String.format(Locale.ROOT, "prototype collapse at step %d: the entropy of the teacher's mean "
                    + "prototype distribution is %.3f nats of at most %.3f (the batch sits on about %.0f of the %d "
                    + "prototypes); the centre is not keeping up: lower centreMomentum or raise teacherTemp",
                    r.iteration(), r.entropyOfMean(), logK, Math.exp(r.entropyOfMean()), prototypes);
        }
        if (prototypes > 0 && r.temperatureWarmedUp() && r.meanEntropy() > 0.95 * logK) {
            return String.format(Locale.ROOT, "uniform prototypes at step %d: the teacher's per-image prototype "
                    + "entropy is %.3f nats of at most %.3f (every image spread over all prototypes); lower the "
                    + "teacherTemp", r.iteration(), r.meanEntropy(), logK);
        }
        return null;
    }
}
