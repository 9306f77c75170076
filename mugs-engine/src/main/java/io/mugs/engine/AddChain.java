package io.mugs.engine;

import java.util.ArrayList;
import java.util.List;
import org.nd4j.autodiff.samediff.internal.SameDiffOp;

/**
 * A sum of values as SameDiff's backward writes it: a chain of {@code add} ops summing some values, each term read
 * by its add only, in any grouping, and at most one value from outside ({@code extra}, e.g. the gradient a residual
 * connection adds). {@code adds} are in plan order, {@code result} is the last add's output. {@link LayerNormFusion}
 * matches the sums that give dc and dx with it.
 *
 * <pre>{@code
 * AddChain dx = AddChain.match(fusion, List.of(dx1, dx2), true);   // null when the terms are not summed that way
 * }</pre>
 */
record AddChain(List<SameDiffOp> adds, String result, String extra) {

    /**
     * The adds that sum {@code terms}, each term read by its add only, in any grouping; with {@code allowExtra}, one
     * add may bring in a value from outside. {@code null} when the terms are not summed that way.
     */
    static AddChain match(PlanFusion plan, List<String> terms, boolean allowExtra) {
        List<String> frontier = new ArrayList<>(terms);
        List<SameDiffOp> adds = new ArrayList<>();
        String extra = null;
        while (frontier.size() > 1) {
            boolean merged = false;
            for (String v : frontier) {
                SameDiffOp add = onlyAdd(plan, v);
                if (add == null) {
                    return null;
                }
                String o = PlanFusion.other(add, v);
                if (o != null && !o.equals(v) && frontier.contains(o)) {
                    frontier.remove(v);
                    frontier.remove(o);
                    frontier.add(PlanFusion.out(add));
                    adds.add(add);
                    merged = true;
                    break;
                }
            }
            if (merged) {
                continue;
            }
            if (!allowExtra || extra != null) {
                return null;
            }
            // The earliest of the terms' adds brings the outside value in (a later one may read an earlier sum).
            String v = frontier.get(0);
            for (String t : frontier) {
                if (plan.position.get(onlyAdd(plan, t)) < plan.position.get(onlyAdd(plan, v))) {
                    v = t;
                }
            }
            SameDiffOp add = onlyAdd(plan, v);
            String o = PlanFusion.other(add, v);
            if (o == null || o.equals(v) || plan.producer.get(o) != null && adds.contains(plan.producer.get(o))) {
                return null;
            }
            extra = o;
            frontier.remove(v);
            frontier.add(PlanFusion.out(add));
            adds.add(add);
        }
        adds.sort((a, b) -> Integer.compare(plan.position.get(a), plan.position.get(b)));
        return new AddChain(adds, frontier.get(0), extra);
    }

    private static SameDiffOp onlyAdd(PlanFusion plan, String v) {
        SameDiffOp add = plan.only(v);
        return add != null && add.getOp().opName().equals("add") && PlanInputs.inputs(add).size() == 2 ? add : null;
    }
}
