package io.mugs.engine;

/** A graph the planned executor cannot run (control flow, data-dependent shapes, ...); SameDiff runs it instead. */
final class UnsupportedGraphException extends RuntimeException {

    UnsupportedGraphException(String message) {
        super(message);
    }
}
