package io.mugs.cli;

import io.mugs.core.MugsListener;
import io.mugs.core.MugsTrainer;
import io.mugs.core.StepResult;
import java.io.PrintStream;
import java.time.Duration;
import me.tongfei.progressbar.ConsoleProgressBarConsumer;
import me.tongfei.progressbar.ProgressBar;
import me.tongfei.progressbar.ProgressBarBuilder;
import me.tongfei.progressbar.ProgressBarStyle;

/**
 * A terminal progress bar over all steps of a fit, with the ETA, images per second and the current epoch and loss.
 * A resumed run starts the bar at the checkpoint's step and its recorded training time, so the ETA stays honest.
 *
 * <pre>{@code
 * listeners.add(new ProgressBarListener(System.out));
 * }</pre>
 */
final class ProgressBarListener implements MugsListener {

    private final PrintStream stream;
    private ProgressBar bar;

    ProgressBarListener(PrintStream stream) {
        this.stream = stream;
    }

    @Override
    public void onFitStart(MugsTrainer t) {
        long total = t.totalSteps();
        bar = new ProgressBarBuilder().setTaskName("pretrain").setInitialMax(total).setStyle(ProgressBarStyle.ASCII)
                .setConsumer(new ConsoleProgressBarConsumer(stream)).setUpdateIntervalMillis(500)
                .setUnit(" steps", 1).showSpeed()
                .startsFrom(t.iteration(), Duration.ofMillis(Math.round(t.trainingSeconds() * 1000)))
                .build();
    }

    @Override
    public void onStep(MugsTrainer t, StepResult r) {
        bar.stepTo(r.iteration() + 1);
        bar.setExtraMessage(String.format(" epoch %d, loss %.4f", r.epoch() + 1, r.loss()));
    }

    @Override
    public void onFitEnd(MugsTrainer t) {
        if (bar != null) {
            bar.close();
        }
    }
}
