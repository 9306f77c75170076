package io.mugs.core;

/**
 * Thrown when an update leaves a student parameter NaN or infinite although the loss was finite (an infinite or
 * huge learning rate, an overflow in the optimiser). The teacher, the queues and the memories are not touched by that
 * step and no checkpoint is written, so the newest checkpoint in the run folder is the last good state.
 */
public final class NonFiniteWeightsException extends RuntimeException {

    private static final long serialVersionUID = 1L;

    public NonFiniteWeightsException(String message) {
        super(message);
    }
}
