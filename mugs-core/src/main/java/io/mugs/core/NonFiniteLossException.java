package io.mugs.core;

/** Thrown when a step's loss is NaN or infinite; the step's update is not applied and no checkpoint is written. */
public final class NonFiniteLossException extends RuntimeException {

    private static final long serialVersionUID = 1L;

    public NonFiniteLossException(String message) {
        super(message);
    }
}
