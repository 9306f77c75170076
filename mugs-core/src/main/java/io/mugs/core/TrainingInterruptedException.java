package io.mugs.core;

import java.nio.file.Path;

/**
 * {@link MugsTrainer#fit} stopped on SIGINT or SIGTERM after writing a checkpoint at the current step; rerunning
 * the same fit resumes from it exactly. {@link #exitCode()} is the shell's code for the signal (130 for SIGINT, 143
 * for SIGTERM), which the {@code mugs} command exits with.
 */
public final class TrainingInterruptedException extends RuntimeException {

    private final String signal;
    private final transient Path checkpoint;

    TrainingInterruptedException(String signal, Path checkpoint, String message) {
        super(message);
        this.signal = signal;
        this.checkpoint = checkpoint;
    }

    /** "INT" or "TERM". */
    public String signal() {
        return signal;
    }

    /** The checkpoint written at the step where the signal arrived. */
    public Path checkpoint() {
        return checkpoint;
    }

    /** 128 + the signal's number: 130 for SIGINT, 143 for SIGTERM. */
    public int exitCode() {
        return StopSignals.exitCode(signal);
    }
}
