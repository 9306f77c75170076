package io.mugs.io;

/**
 * An object whose state between training steps goes into checkpoints: FIFO queues, neighbour memories, the group
 * centre, the optimiser, the model. Each one names its own tensors and counters; {@link CheckpointFile} stores
 * whatever they write, so no other class repeats a key layout.
 *
 * <pre>{@code
 * StateDict state = new StateDict();
 * centre.saveState(state.scope("centre"));
 * centre.loadState(state.scope("centre"));
 * }</pre>
 */
public interface Stateful {

    /** Puts this object's tensors (by reference) and counters into {@code into}. */
    void saveState(StateDict into);

    /**
     * Replaces this object's state with the one in {@code from}, which {@link #saveState} of an object built with the
     * same settings wrote.
     *
     * @throws IllegalArgumentException naming the key when something is missing, of another shape, or out of range;
     *                                  nothing is changed then
     */
    void loadState(StateDict from);
}
