package io.mugs.core;

import java.util.LinkedHashMap;
import java.util.Map;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import sun.misc.Signal;
import sun.misc.SignalHandler;

/**
 * SIGINT (Ctrl-C) and SIGTERM while {@link MugsTrainer#fit} steps: the first one asks the loop to write a checkpoint
 * at the current step and stop ({@link TrainingInterruptedException}); a second one ends the process at once
 * (a checkpoint write it cuts short leaves only a {@code .tmp} file, removed on the next start). Outside the
 * training loop the JVM's own handlers apply. Installed by {@code Pretraining.fit} for the loop and removed after it.
 */
final class StopSignals implements AutoCloseable {

    private static final Logger LOG = LoggerFactory.getLogger(MugsTrainer.class);
    private static final String[] NAMES = {"INT", "TERM"};

    private final Map<Signal, SignalHandler> previous = new LinkedHashMap<>();
    private volatile String pending;

    private StopSignals() {
    }

    /** Installs the handlers; when a signal cannot be handled here (an embedding JVM's choice), it is left as is. */
    static StopSignals install() {
        StopSignals s = new StopSignals();
        for (String name : NAMES) {
            try {
                Signal sig = new Signal(name);
                s.previous.put(sig, Signal.handle(sig, s::handle));
            } catch (IllegalArgumentException | UnsupportedOperationException e) {
                LOG.debug("cannot handle SIG{} ({}): it ends the run without a checkpoint", name, e.getMessage());
            }
        }
        return s;
    }

    private void handle(Signal sig) {
        if (pending != null) {
            System.err.println("SIG" + sig.getName() + " again: exiting without waiting for the checkpoint");
            Runtime.getRuntime().halt(exitCode(sig.getName()));
        }
        pending = sig.getName();
        System.err.println("SIG" + sig.getName() + ": writing a checkpoint after the current step, then exiting "
                + "(send it again to exit at once)");
    }

    /** The signal received ("INT" or "TERM"), or null. */
    String pending() {
        return pending;
    }

    /** 128 + the signal's number, as a shell reports a process the signal ended. */
    static int exitCode(String signal) {
        return switch (signal) {
            case "INT" -> 130;
            case "TERM" -> 143;
            default -> 1;
        };
    }

    @Override
    public void close() {
        previous.forEach((sig, handler) -> {
            try {
                Signal.handle(sig, handler);
            } catch (IllegalArgumentException e) {
                // the signal could not be handled to begin with
            }
        });
    }
}
