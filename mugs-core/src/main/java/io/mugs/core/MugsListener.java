package io.mugs.core;

/**
 * Callbacks of the training loop: progress, metrics, checkpoints, monitors (ready-made ones and preset bundles are
 * in {@code MugsListeners}).
 */
public interface MugsListener {

    /** Once, before the first step of a fit (after a resume, before its first new step). */
    default void onFitStart(MugsTrainer trainer) {
    }

    /** After every step. */
    default void onStep(MugsTrainer trainer, StepResult result) {
    }

    /** After the last step of an epoch ({@code trainer.epoch()} is already the next one). */
    default void onEpochEnd(MugsTrainer trainer, int epoch) {
    }

    /** Once, after the last epoch. */
    default void onFitEnd(MugsTrainer trainer) {
    }
}
