package io.mugs.core;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.Set;

/**
 * How one start of a run executes, as opposed to what it trains ({@link MugsConfig}, the recipe a checkpoint must
 * match): these may differ on every start of the same run, and a resume never compares them. Batches, losses and
 * the state do not depend on them (replicas: up to float rounding, see docs/data-parallel.md).
 *
 * <pre>{@code
 * RunSettings run = RunSettings.defaults().withReplicas(2);
 * Pretraining.fit(config, run, data, outputDir, listeners);
 * RunSettings same = RunSettings.defaults().with("workers=4", "replicas=2");   // the command line's --set
 * }</pre>
 *
 * @param workers  data-loading threads (2); the loader prepares up to {@code 2 * workers} batches ahead
 * @param replicas data-parallel replicas sharing one state (1); each runs {@code batchSize / replicas} images of every
 *                 step in its own thread (docs/data-parallel.md); the batch must split evenly
 * @param budgetMinutes training minutes to lay the schedules over (0, the default: none, the schedules span
 *                 {@code epochs}): the first start measures the step time and writes a {@link BudgetPlan}, which
 *                 every later start of the run folder follows ({@code mugs pretrain --budget-minutes};
 *                 docs/time-budget.md)
 */
public record RunSettings(int workers, int replicas, double budgetMinutes) {

    /** The names {@link #with} accepts, as in {@code --set workers=4}. */
    public static final Set<String> NAMES = Set.of("workers", "replicas");

    public RunSettings {
        if (workers < 1) {
            throw new IllegalArgumentException("Invalid run settings: workers must be >= 1, got " + workers);
        }
        if (replicas < 1) {
            throw new IllegalArgumentException("Invalid run settings: replicas must be >= 1, got " + replicas);
        }
        if (!(budgetMinutes >= 0) || !Double.isFinite(budgetMinutes)) {
            throw new IllegalArgumentException("Invalid run settings: the budget must be positive minutes (or 0 for "
                    + "none), got " + budgetMinutes);
        }
    }

    /** Settings without a time budget. */
    public RunSettings(int workers, int replicas) {
        this(workers, replicas, 0);
    }

    /** Two loader threads, one replica, no time budget. */
    public static RunSettings defaults() {
        return new RunSettings(2, 1);
    }

    /**
     * What the {@code mugs} launcher and the benchmarks start with: two replicas where two are faster than one (the
     * CPU backend with at least two cores available to this process, the planned engine and a batch that splits
     * evenly: 1.14-1.24x the images/s of one replica on the 2-core machine of docs/performance.md, "Both cores"),
     * otherwise one; two loader threads; no time budget. A process pinned to one core ({@code taskset -c 0}) gets one.
     */
    public static RunSettings forThisMachine(int batchSize) {
        boolean two = !io.mugs.engine.Backend.isCuda() && Runtime.getRuntime().availableProcessors() >= 2
                && batchSize % 2 == 0 && !"samediff".equalsIgnoreCase(System.getProperty("mugs.engine", "planned"));
        return new RunSettings(2, two ? 2 : 1);
    }

    public RunSettings withWorkers(int workers) {
        return new RunSettings(workers, replicas, budgetMinutes);
    }

    public RunSettings withReplicas(int replicas) {
        return new RunSettings(workers, replicas, budgetMinutes);
    }

    /** These settings with the schedules laid over {@code minutes} of training (see {@link BudgetPlan}). */
    public RunSettings withBudgetMinutes(double minutes) {
        if (!(minutes > 0)) {
            throw new IllegalArgumentException("the budget must be positive minutes, got " + minutes);
        }
        return new RunSettings(workers, replicas, minutes);
    }

    /** True when {@code assignment} ({@code path=value}) names a run setting rather than a recipe field. */
    public static boolean names(String assignment) {
        int eq = assignment.indexOf('=');
        return eq > 0 && NAMES.contains(assignment.substring(0, eq).trim());
    }

    /** These settings with {@code name=value} assignments applied ({@code "workers=4"}), validated. */
    public RunSettings with(String... assignments) {
        ObjectNode node = MugsConfig.JSON.valueToTree(this);
        for (String a : assignments) {
            if (!names(a)) {
                throw new IllegalArgumentException("'" + a + "': run settings are " + String.join(", ",
                        NAMES.stream().sorted().toList()) + " (as name=value)");
            }
            int eq = a.indexOf('=');
            String text = a.substring(eq + 1).trim();
            JsonNode value;
            try {
                value = MugsConfig.JSON.readTree(text);
            } catch (JsonProcessingException e) {
                value = null;
            }
            if (value == null || !value.isIntegralNumber() || !value.canConvertToInt()) {
                throw new IllegalArgumentException("'" + a + "': " + a.substring(0, eq).trim()
                        + " must be an integer, got '" + text + "'");
            }
            node.set(a.substring(0, eq).trim(), value);
        }
        return new RunSettings(node.get("workers").intValue(), node.get("replicas").intValue(), budgetMinutes);
    }

    /**
     * Requires the global batch of {@code config} to split evenly over the replicas.
     *
     * @throws IllegalArgumentException naming the remainder and two batch sizes that would split
     */
    public void requireSplits(MugsConfig config) {
        int b = config.batchSize();
        if (b % replicas != 0) {
            throw new IllegalArgumentException("Invalid run settings: batchSize " + b + " does not split evenly over "
                    + replicas + " replicas (remainder " + b % replicas + "): make batchSize a multiple of replicas, "
                    + "e.g. " + (b - b % replicas) + " or " + (b - b % replicas + replicas));
        }
    }
}
