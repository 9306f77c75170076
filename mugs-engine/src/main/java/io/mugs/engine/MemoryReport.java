package io.mugs.engine;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.function.BooleanSupplier;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.slf4j.LoggerFactory;

/**
 * With {@code -Dmugs.engine.memoryReport=true}: while a plan is built, the values alive at its peak, summed by the
 * type of the op that produced them, logged once the plan is complete. Shows what a graph keeps for its backward
 * pass.
 */
final class MemoryReport {

    private record Entry(String label, long bytes, BooleanSupplier released) {
    }

    private final List<Entry> live = new ArrayList<>();
    private Map<String, Long> atPeak = new HashMap<>();
    private long peak;

    /** A report when the system property asks for one, otherwise {@code null}. */
    static MemoryReport ifEnabled() {
        return Boolean.getBoolean("mugs.engine.memoryReport") ? new MemoryReport() : null;
    }

    /** A new value produced by an op of type {@code label}, alive until {@code released} says otherwise. */
    void add(String label, INDArray array, BooleanSupplier released) {
        live.add(new Entry(label, array.length() * array.dataType().width(), released));
    }

    /** Called after each op: remembers the live set when it is the largest so far. */
    void sample() {
        live.removeIf(e -> e.released().getAsBoolean());
        long bytes = live.stream().mapToLong(Entry::bytes).sum();
        if (bytes > peak) {
            peak = bytes;
            atPeak = new HashMap<>();
            for (Entry e : live) {
                atPeak.merge(e.label(), e.bytes(), Long::sum);
            }
        }
    }

    void log() {
        StringBuilder sb = new StringBuilder("values alive at the peak, " + peak / (1 << 20) + " MiB:");
        atPeak.entrySet().stream().sorted((x, y) -> Long.compare(y.getValue(), x.getValue())).limit(25)
                .forEach(e -> sb.append(String.format("%n  %-24s %8.1f MiB", e.getKey(), e.getValue() / 1048576.0)));
        LoggerFactory.getLogger(ExecutionPlan.class).info(sb.toString());
    }
}
