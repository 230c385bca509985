package ai.mode.bench;

import java.io.PrintWriter;
import java.util.Collection;
import java.util.List;
import java.util.Locale;
import java.util.OptionalDouble;
import org.openjdk.jmh.results.RunResult;
import org.openjdk.jmh.runner.Runner;
import org.openjdk.jmh.runner.RunnerException;
import org.openjdk.jmh.runner.options.CommandLineOptionException;
import org.openjdk.jmh.runner.options.CommandLineOptions;

/**
 * Entry point of the JMH suite: runs it in-process for {@code mode bench --jmh [JMH args]}, then prints each result as
 * a throughput (GFLOP/s, GB/s or ns per call) using the work counts of the benchmark, next to JMH's own report.
 */
public final class JmhLauncher {
    private JmhLauncher() {}

    /** Runs JMH with command-line {@code args}; returns the exit code. */
    public static int run(List<String> args, PrintWriter out) {
        CommandLineOptions opts;
        try {
            opts = new CommandLineOptions(args.toArray(String[]::new));
        } catch (CommandLineOptionException e) {
            throw new IllegalArgumentException("JMH options: " + e.getMessage() + " (mode bench --jmh -h lists them)");
        }
        try {
            if (opts.shouldHelp()) {
                try {
                    opts.showHelp();
                } catch (java.io.IOException e) {
                    throw new java.io.UncheckedIOException(e);
                }
                return 0;
            }
            Runner runner = new Runner(opts);
            if (opts.shouldList()) {
                runner.list();
                return 0;
            }
            int cores = Runtime.getRuntime().availableProcessors();
            out.println("probes on " + cores + " threads before the JMH run:");
            out.flush();
            double peakFlops = PeakProbes.fmaGflops(cores, 5) * 1e9,
                    peakBytes = PeakProbes.copyGBs(cores, 256, 5) * 1e9;
            out.printf(
                    Locale.ROOT, "  FMA loop %.1f GFLOP/s, array copy %.2f GB/s%n", peakFlops / 1e9, peakBytes / 1e9);
            out.flush();
            Collection<RunResult> results = runner.run();
            out.println();
            out.printf(
                    Locale.ROOT,
                    "throughput from the JMH scores (average time per operation), of the all-core peak (%.1f GFLOP/s, %.2f GB/s):%n",
                    peakFlops / 1e9,
                    peakBytes / 1e9);
            for (RunResult r : results) {
                String bench = r.getParams().getBenchmark();
                double score = r.getPrimaryResult().getScore();
                String unit = r.getPrimaryResult().getScoreUnit();
                OptionalDouble seconds = JmhWork.secondsPerOp(score, unit);
                JmhWork.Work w = JmhWork.of(bench, r.getParams()::getParam);
                if (seconds.isEmpty() || w == null) continue;
                double rate = w.amount() / seconds.getAsDouble();
                String shown = switch (w.unit()) {
                    case FLOP ->
                        String.format(Locale.ROOT, "%.1f GFLOP/s  %3.0f%%", rate / 1e9, 100 * rate / peakFlops);
                    case BYTE -> String.format(Locale.ROOT, "%.2f GB/s  %3.0f%%", rate / 1e9, 100 * rate / peakBytes);
                    case CALL -> String.format(Locale.ROOT, "%.1f ns/call", 1e9 / rate);
                    case TOKEN -> String.format(Locale.ROOT, "%.0f tokens/s", rate);
                };
                String params = String.join(
                        " ",
                        r.getParams().getParamsKeys().stream()
                                .map(k -> k + "=" + r.getParams().getParam(k))
                                .toList());
                out.printf(
                        Locale.ROOT, "  %-70s %s%n", shortName(bench) + (params.isEmpty() ? "" : " " + params), shown);
            }
            out.flush();
            return 0;
        } catch (RunnerException e) {
            throw new IllegalStateException("JMH run failed: " + e.getMessage(), e);
        }
    }

    private static String shortName(String fqcn) {
        int dot = fqcn.lastIndexOf('.', fqcn.lastIndexOf('.') - 1);
        return fqcn.substring(dot + 1);
    }
}
