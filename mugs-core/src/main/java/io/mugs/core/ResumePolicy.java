package io.mugs.core;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import java.util.Set;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * What may change when a run resumes: the one rule, used by the training loop on a run folder and by the
 * checkpoint restore on a single file. It compares recipes only ({@link MugsConfig}); {@link RunSettings}
 * (workers, replicas) may differ on every start and are never compared.
 * <ul>
 *   <li>A run that follows a time budget's {@link BudgetPlan} has the plan's length; its {@code epochs} may not
 *       change.</li>
 *   <li>{@code epochs} may grow, or shrink down to the epochs already trained; the cosine schedules are recomputed
 *       for the new length (one WARN line). Fewer epochs than already trained is refused.</li>
 *   <li>The optimisation settings {@link #OPTIMISATION} (learning rate, weight decay, clipping) may change, e.g. to
 *       go on after a non-finite loss with a lower learning rate: one WARN line names each old and new value, and
 *       the schedules follow the new values from the resumed step on.</li>
 *   <li>Any other difference is refused with one line naming the settings.</li>
 * </ul>
 *
 * <pre>{@code
 * ResumePolicy.check("run folder runs/fm", stored, requested, iteration, stepsPerEpoch);   // throws or logs
 * }</pre>
 */
public final class ResumePolicy {

    /** Recipe fields that may change on resume with a warning (the optimiser's, not the model's or the data's). */
    public static final Set<String> OPTIMISATION = Set.of("lr", "minLr", "weightDecay", "weightDecayEnd", "clipGrad");

    private static final Logger LOG = LoggerFactory.getLogger(ResumePolicy.class);

    private ResumePolicy() {
    }

    /**
     * Accepts resuming a run stored with {@code stored}, {@code iteration} steps into it, with {@code requested}, or
     * refuses it; logs one WARN line per accepted kind of change.
     *
     * @param subject       what is resumed, for the messages ({@code "run folder runs/fm"}, {@code "checkpoint f"})
     * @param stepsPerEpoch steps per epoch of the data being resumed on
     * @throws IllegalArgumentException one line naming the settings that differ and what to do
     */
    public static void check(String subject, MugsConfig stored, MugsConfig requested, long iteration,
                             int stepsPerEpoch) {
        check(subject, stored, requested, iteration, stepsPerEpoch, Optional.empty());
    }

    /**
     * As {@link #check(String, MugsConfig, MugsConfig, long, int)} for a run that follows a time budget's
     * {@code plan}: its length is the plan's steps, and {@code epochs} only sets where its warm-ups end (their
     * fraction of the run), so it may not change.
     */
    public static void check(String subject, MugsConfig stored, MugsConfig requested, long iteration,
                             int stepsPerEpoch, Optional<BudgetPlan> plan) {
        List<String> diff = differences(stored, requested);
        if (plan.isPresent() && diff.contains("epochs")) {
            throw new IllegalArgumentException(String.format(Locale.ROOT, "%s follows a budget plan of %d steps "
                    + "(%s); there epochs (%d) only sets the fraction of the run its warm-ups take, and changing it "
                    + "to %d would move them half-way: resume with the stored epochs, or start a new run folder",
                    subject, plan.get().totalSteps(), BudgetPlan.FILE, stored.epochs(), requested.epochs()));
        }
        List<String> refused = diff.stream().filter(f -> !f.equals("epochs") && !OPTIMISATION.contains(f)).toList();
        if (!refused.isEmpty()) {
            throw new IllegalArgumentException(subject + " holds a run with another configuration (it differs in "
                    + String.join(", ", refused) + "): use a new output folder, or the stored settings (only epochs "
                    + "and the optimisation settings " + String.join(", ", OPTIMISATION.stream().sorted().toList())
                    + " may change on resume)");
        }
        if (diff.contains("epochs")) {
            if ((long) requested.epochs() * stepsPerEpoch < iteration) {
                throw new IllegalArgumentException(String.format(Locale.ROOT, "%s has trained %.2f epochs (%d steps "
                        + "of %d per epoch); --epochs %d would end it before where it is: give at least %d epochs, or "
                        + "use a new output folder", subject, iteration / (double) stepsPerEpoch, iteration,
                        stepsPerEpoch, requested.epochs(), (iteration + stepsPerEpoch - 1) / stepsPerEpoch));
            }
            LOG.warn("{} was set up for {} epochs; continuing to {} epochs. The learning-rate, weight-decay and "
                    + "teacher-momentum schedules are recomputed for {} epochs, so from iteration {} on they follow "
                    + "the new cosine curves (not a continuation of the old ones)", subject, stored.epochs(),
                    requested.epochs(), requested.epochs(), iteration);
        }
        List<String> optimisation = diff.stream().filter(OPTIMISATION::contains).toList();
        if (!optimisation.isEmpty()) {
            JsonNode a = MugsConfig.JSON.valueToTree(stored);
            JsonNode b = MugsConfig.JSON.valueToTree(requested);
            LOG.warn("{}: resuming with other optimisation settings ({}); from iteration {} on the schedules follow "
                    + "the new values", subject, String.join(", ", optimisation.stream()
                    .map(f -> f + " " + a.get(f).asText() + " -> " + b.get(f).asText()).toList()), iteration);
        }
    }

    /** The JSON paths ({@code lr}, {@code vit.depth}, ...) whose values differ between two recipes. */
    public static List<String> differences(MugsConfig a, MugsConfig b) {
        List<String> out = new ArrayList<>();
        diff("", MugsConfig.JSON.valueToTree(a), MugsConfig.JSON.valueToTree(b), out);
        return out;
    }

    private static void diff(String path, JsonNode a, JsonNode b, List<String> out) {
        if (a.isObject() && b.isObject()) {
            for (Iterator<String> it = a.fieldNames(); it.hasNext(); ) {
                String f = it.next();
                diff(path.isEmpty() ? f : path + "." + f, a.get(f), b.path(f), out);
            }
        } else if (!a.equals(b)) {
            out.add(path);
        }
    }
}
