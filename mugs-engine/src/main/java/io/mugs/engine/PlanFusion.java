package io.mugs.engine;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.autodiff.samediff.VariableType;
import org.nd4j.autodiff.samediff.internal.SameDiffOp;

/**
 * What the plan-level fusions ({@link GeluFusion}, {@link LayerNormFusion}, {@link AttentionFusion}) share: an index
 * of a plan's op order (who produces and who reads each value, each op's position), the loop that offers every op
 * to a subclass's {@link #match} and splices the fused ops into the order, and the checks a replacement needs.
 *
 * <p>A subclass matches its pattern from one op, adds the ops it takes out to {@code removed} and puts each fused
 * op in {@code replaced} under the op whose place it takes; ops in neither stay where they were.
 *
 * <pre>{@code
 * List<SameDiffOp> fused = new GeluFusion(graph, order, requested).fuse(order);   // order itself when nothing matched
 * }</pre>
 */
abstract class PlanFusion {

    final SameDiff graph;
    final Set<String> requested;
    /** The op that writes each value. */
    final Map<String, SameDiffOp> producer = new HashMap<>();
    /** The ops that read each value, in plan order, each once. */
    final Map<String, List<SameDiffOp>> consumers = new HashMap<>();
    /** Each op's index in the plan order. */
    final Map<SameDiffOp, Integer> position = new HashMap<>();

    PlanFusion(SameDiff graph, List<SameDiffOp> order, Set<String> requested) {
        this.graph = graph;
        this.requested = requested;
        for (SameDiffOp op : order) {
            position.put(op, position.size());
            for (String out : op.getOutputsOfOp()) {
                producer.put(out, op);
            }
            for (String in : new LinkedHashSet<>(PlanInputs.inputs(op))) {
                consumers.computeIfAbsent(in, k -> new ArrayList<>()).add(op);
            }
        }
    }

    /** Tries the pattern starting at {@code op}; records what it replaces in {@code removed} and {@code replaced}. */
    abstract void match(SameDiffOp op, Set<SameDiffOp> removed, Map<SameDiffOp, SameDiffOp> replaced);

    /** {@code order} with every match fused, or {@code order} itself when nothing matched. */
    final List<SameDiffOp> fuse(List<SameDiffOp> order) {
        Set<SameDiffOp> removed = new HashSet<>();
        Map<SameDiffOp, SameDiffOp> replaced = new HashMap<>();
        for (SameDiffOp op : order) {
            if (!removed.contains(op)) {
                match(op, removed, replaced);
            }
        }
        if (replaced.isEmpty()) {
            return order;
        }
        List<SameDiffOp> out = new ArrayList<>(order.size());
        for (SameDiffOp op : order) {
            SameDiffOp fused = replaced.get(op);
            if (fused != null) {
                out.add(fused);
            } else if (!removed.contains(op)) {
                out.add(op);
            }
        }
        return out;
    }

    /** Every output of {@code members} but {@code results} is read only by {@code members} and not requested. */
    final boolean privateValues(Set<SameDiffOp> members, Set<String> results) {
        for (SameDiffOp op : members) {
            for (String v : op.getOutputsOfOp()) {
                if (results.contains(v)) {
                    continue;
                }
                if (requested.contains(v)) {
                    return false;
                }
                for (SameDiffOp reader : consumers.getOrDefault(v, List.of())) {
                    if (!members.contains(reader)) {
                        return false;
                    }
                }
            }
        }
        return true;
    }

    /** Whether {@code name} is computed by an op (a value of the plan, contiguous), not fed or stored. */
    final boolean computed(String name) {
        return graph.getVariable(name).getVariableType() == VariableType.ARRAY && producer.containsKey(name);
    }

    /** The single reader of {@code value} when it has one output, or {@code null}. */
    final SameDiffOp only(String value) {
        List<SameDiffOp> r = consumers.getOrDefault(value, List.of());
        return r.size() == 1 && r.get(0).getOutputsOfOp().size() == 1 ? r.get(0) : null;
    }

    static String in(SameDiffOp op, int i) {
        return PlanInputs.inputs(op).get(i);
    }

    static String out(SameDiffOp op) {
        return op.getOutputsOfOp().get(0);
    }

    /** The input of two-input {@code op} that is not {@code v}. */
    static String other(SameDiffOp op, String v) {
        List<String> in = PlanInputs.inputs(op);
        if (in.size() != 2) {
            return null;
        }
        return in.get(0).equals(v) ? in.get(1) : in.get(0);
    }
}
