package ai.mode.cli;

import ai.mode.model.train.Trainer;
import ai.mode.runtime.LossStats;
import java.io.PrintStream;
import java.time.Duration;
import me.tongfei.progressbar.ConsoleProgressBarConsumer;
import me.tongfei.progressbar.ProgressBar;
import me.tongfei.progressbar.ProgressBarBuilder;
import me.tongfei.progressbar.ProgressBarStyle;

/**
 * Trainer listener that shows training progress to a person on stderr: a progress bar with loss and tokens/s on a
 * terminal, otherwise (logs, CI) a plain line every so often; nothing with {@code --quiet}.
 */
final class ConsoleReporter implements Trainer.Listener, AutoCloseable {
    private final String task;
    private final boolean quiet;
    private final boolean terminal;
    private final PrintStream err;
    private ProgressBar bar;
    private int total;
    private int lineEvery;
    private double lastVal = Double.NaN;
    private double smoothedTps = Double.NaN;

    ConsoleReporter(String task, boolean quiet, PrintStream err) {
        this.task = task;
        this.quiet = quiet;
        this.err = err;
        this.terminal = System.console() != null && System.console().isTerminal();
    }

    @Override
    public void onStart(int firstStep, int totalSteps, Trainer.Options options) {
        total = totalSteps;
        lineEvery = Math.max(1, totalSteps / 20);
        if (quiet) return;
        if (terminal) {
            bar = new ProgressBarBuilder()
                    .setTaskName(task)
                    .setInitialMax(totalSteps)
                    .setStyle(ProgressBarStyle.ASCII)
                    .setConsumer(new ConsoleProgressBarConsumer(err))
                    .setUpdateIntervalMillis(500)
                    .startsFrom(firstStep - 1, Duration.ZERO)
                    .build();
        } else {
            err.printf("%s: steps %d..%d, %d tokens/step%n", task, firstStep, totalSteps, options.tokensPerStep());
        }
    }

    @Override
    public void onStep(Trainer.StepMetrics m) {
        // throughput smoothed over recent steps (single steps vary with JIT warm-up and other load)
        smoothedTps = Double.isNaN(smoothedTps) ? m.tokensPerSecond() : 0.8 * smoothedTps + 0.2 * m.tokensPerSecond();
        if (quiet) return;
        String msg = String.format(
                "loss %.3f%s %6s tok/s",
                m.loss(), Double.isNaN(lastVal) ? "" : String.format(" val %.3f", lastVal), compact(smoothedTps));
        if (bar != null) {
            bar.stepTo(m.step());
            bar.setExtraMessage(msg);
        } else if (m.step() % lineEvery == 0 || m.step() == total) {
            err.printf(
                    "%s: step %d/%d  %s  lr %.2e  |g| %.2f  %.0fs%n",
                    task, m.step(), total, msg, m.lr(), m.gradNorm(), m.elapsedSeconds());
        }
    }

    @Override
    public void onValidation(int step, LossStats s) {
        lastVal = s.meanLoss();
        if (!quiet && bar == null) {
            err.printf(
                    "%s: step %d validation loss %.4f  ppl %.2f  acc %.2f%%%n",
                    task, step, s.meanLoss(), Math.exp(s.meanLoss()), 100 * s.accuracy());
        }
    }

    @Override
    public void onEnd(int lastStep) {
        close();
    }

    @Override
    public void close() {
        if (bar != null) bar.close();
        bar = null;
    }

    static String compact(double v) {
        return v >= 10_000 ? String.format("%.1fk", v / 1000) : String.format("%.0f", v);
    }
}
