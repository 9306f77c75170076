package io.mugs.io;

import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * The checkpoint form of stateful objects: named tensors and named integer counters, as PyTorch's {@code
 * state_dict}. Each object writes and reads its own short names inside a {@link #scope}; the owner of the scopes
 * (the trainer) composes them, and one file format ({@link CheckpointFile}) stores the whole dictionary.
 *
 * <pre>{@code
 * StateDict all = new StateDict();
 * queue.saveState(all.scope("instance_queue"));      // instance_queue/rows, instance_queue/pointer
 * queue.loadState(all.scope("instance_queue"));      // checks names and shapes, then assigns
 * }</pre>
 *
 * Reading is strict: a missing name or a tensor of another shape is an {@link IllegalArgumentException} naming the
 * full key and both shapes, so a damaged or foreign file is reported before anything is half-loaded.
 */
public final class StateDict {

    private final Map<String, INDArray> tensors;
    private final Map<String, Long> counters;
    private final String prefix;

    public StateDict() {
        this(new LinkedHashMap<>(), new LinkedHashMap<>(), "");
    }

    /** A dictionary over existing maps of full names (as read from a file). */
    public StateDict(Map<String, INDArray> tensors, Map<String, Long> counters) {
        this(new LinkedHashMap<>(tensors), new LinkedHashMap<>(counters), "");
    }

    private StateDict(Map<String, INDArray> tensors, Map<String, Long> counters, String prefix) {
        this.tensors = tensors;
        this.counters = counters;
        this.prefix = prefix;
    }

    /** A view in which every name is prefixed by {@code name + "/"}; writes go to the same dictionary. */
    public StateDict scope(String name) {
        if (name.isEmpty() || name.contains("/")) {
            throw new IllegalArgumentException("a scope is one non-empty name without '/', got '" + name + "'");
        }
        return new StateDict(tensors, counters, prefix + name + "/");
    }

    /** Stores {@code value} by reference (the file writer copies it out). */
    public void putTensor(String name, INDArray value) {
        tensors.put(prefix + name, value);
    }

    public void putCounter(String name, long value) {
        counters.put(prefix + name, value);
    }

    /** True when a tensor of that name is present in this scope. */
    public boolean hasTensor(String name) {
        return tensors.containsKey(prefix + name);
    }

    /** The tensor {@code name}, which must have exactly {@code shape}. */
    public INDArray tensor(String name, long... shape) {
        INDArray t = tensors.get(prefix + name);
        if (t == null) {
            throw new IllegalArgumentException("no tensor '" + prefix + name + "'");
        }
        if (!Arrays.equals(t.shape(), shape)) {
            throw new IllegalArgumentException("tensor '" + prefix + name + "' has shape " + Arrays.toString(t.shape())
                    + ", expected " + Arrays.toString(shape));
        }
        return t;
    }

    /** The counter {@code name}, which must lie in {@code [min, max]}. */
    public long counter(String name, long min, long max) {
        Long v = counters.get(prefix + name);
        if (v == null) {
            throw new IllegalArgumentException("no counter '" + prefix + name + "'");
        }
        if (v < min || v > max) {
            throw new IllegalArgumentException("counter '" + prefix + name + "' is " + v + ", outside [" + min + ", "
                    + max + "]");
        }
        return v;
    }

    /**
     * Checks that this dictionary has every tensor of {@code expected} with the same shape and every counter of it,
     * so that a load that follows cannot stop half-way.
     *
     * @throws IllegalArgumentException naming the first missing or mis-shaped key
     */
    public void requireLike(StateDict expected) {
        expected.tensors.forEach((name, t) -> new StateDict(tensors, counters, "").tensor(name, t.shape()));
        for (String name : expected.counters.keySet()) {
            if (!counters.containsKey(name)) {
                throw new IllegalArgumentException("no counter '" + name + "'");
            }
        }
    }

    /** Every tensor by full name, in insertion order (read-only). */
    public Map<String, INDArray> tensors() {
        return Collections.unmodifiableMap(tensors);
    }

    /** Every counter by full name, in insertion order (read-only). */
    public Map<String, Long> counters() {
        return Collections.unmodifiableMap(counters);
    }
}
