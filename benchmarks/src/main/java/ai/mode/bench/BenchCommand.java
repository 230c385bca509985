// `mode bench`: the quick benchmark suite (machine ceilings, SGEMM beside OpenBLAS, per-op throughput, training
// tokens/s beside PyTorch, GPU kernels where a CUDA device exists) printed as one table and saved as JSON;
// `mode bench --jmh [JMH args]` runs the full JMH suite instead.
package ai.mode.bench;

import ai.mode.bindings.Mkl;
import ai.mode.model.LlamaConfig;
import ai.mode.runtime.Backend;
import ai.mode.runtime.Backends;
import ai.mode.runtime.cpu.CpuBackend;
import ai.mode.runtime.cpu.CpuGemm;
import com.google.gson.JsonObject;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.time.LocalDateTime;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import java.util.concurrent.Callable;
import java.util.function.Function;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Unmatched;

@Command(
        name = "bench",
        mixinStandardHelpOptions = true,
        description = {
            "Benchmarks: machine ceilings, SGEMM beside OpenBLAS, per-op throughput, training tokens/s beside PyTorch,",
            "GPU kernels beside cuBLASLt (where a CUDA device exists). Prints one table and writes JSON.",
            "With --jmh, runs the JMH suite instead; arguments after it go to JMH (e.g. --jmh -f 1 GemmBench)."
        })
public final class BenchCommand implements Callable<Integer> {

    @Spec
    CommandSpec spec;

    @Option(names = "--quick", description = "A short run (under 2 minutes): fewer shapes and steps, shorter timing.")
    boolean quick;

    @Option(
            names = "--threads",
            description = "Threads for our backend, OpenBLAS and PyTorch (default: all cores, ${DEFAULT-VALUE}).")
    int threads = Runtime.getRuntime().availableProcessors();

    @Option(names = "--batch", description = "Sequences per training step (default ${DEFAULT-VALUE}).")
    int batch = 8;

    @Option(names = "--seq", description = "Tokens per sequence (default ${DEFAULT-VALUE}).")
    int seq = 256;

    @Option(names = "--vocab", description = "Vocabulary size of the benchmark model (default ${DEFAULT-VALUE}).")
    int vocab = 4096;

    @Option(names = "--layers", description = "Decoder layers (default ${DEFAULT-VALUE}).")
    int layers = 4;

    @Option(names = "--dim", description = "Model width d_model (default ${DEFAULT-VALUE}).")
    int dim = 256;

    @Option(names = "--heads", description = "Attention heads (default ${DEFAULT-VALUE}).")
    int heads = 4;

    @Option(names = "--ffn", description = "SwiGLU width (default ${DEFAULT-VALUE}).")
    int ffn = 688;

    @Option(names = "--steps", description = "Measured training steps (default: 4 with --quick, else 10).")
    Integer steps;

    @Option(
            names = "--only",
            split = ",",
            description =
                    "Sections to run, from: probes, sgemm, ops, train, torch, mode, generate, gpu (default: all).")
    List<String> only;

    @Option(
            names = "--openblas",
            description =
                    "OpenBLAS peer: bytedeco (jar on our classpath), system, all (both), none, or a path to libopenblas.so (default ${DEFAULT-VALUE}).")
    String openblas = "bytedeco";

    @Option(
            names = "--python",
            description = "Python with torch for the PyTorch peer (default: $MODE_BENCH_PYTHON, else python3).")
    String python;

    @Option(names = "--out", description = "JSON file to write (default: runs/bench/bench-<date>.json).")
    Path out;

    @Option(names = "--markdown", description = "Also write the table as Markdown to this file.")
    Path markdown;

    @Option(
            names = "--repeat",
            description =
                    "Run the suite this many times and report medians (for shared machines; default ${DEFAULT-VALUE}).")
    int repeat = 1;

    @Option(
            names = "--render",
            description =
                    "Print a saved JSON report as the table again (with --markdown: also as Markdown); runs nothing.")
    Path render;

    @Option(
            names = "--jmh",
            description = "Run the JMH suite; the remaining arguments are JMH options and benchmark regexps.")
    boolean jmh;

    @Unmatched
    List<String> unmatched = new ArrayList<>();

    /** The sections of a run, in order. */
    static final List<String> SECTIONS = List.of("probes", "sgemm", "ops", "train", "torch", "mode", "generate", "gpu");

    /** Prompt and generated tokens of the generation row (half the context each, as its default 128 + 128). */
    private int generatePrompt() {
        return Math.max(1, seq / 2);
    }

    @Override
    public Integer call() throws IOException {
        PrintWriter o = spec.commandLine().getOut();
        if (jmh) return JmhLauncher.run(unmatched, o);
        if (render != null) {
            if (!java.nio.file.Files.isRegularFile(render))
                throw new IllegalArgumentException("--render " + render + ": no such file");
            BenchReport saved = BenchReport.fromJson(java.nio.file.Files.readString(render));
            o.print(saved.table());
            o.print(Targets.summary(saved));
            if (markdown != null) saved.writeMarkdown(markdown);
            o.flush();
            return 0;
        }
        if (!unmatched.isEmpty()) {
            throw new IllegalArgumentException(
                    "unknown arguments " + unmatched + "; see mode bench --help (JMH options need --jmh first)");
        }
        if (threads < 1) throw new IllegalArgumentException("--threads must be >= 1 (got " + threads + ")");
        if (repeat < 1) throw new IllegalArgumentException("--repeat must be >= 1 (got " + repeat + ")");
        List<String> sections = only == null ? SECTIONS : only;
        for (String s : sections) {
            if (!SECTIONS.contains(s)) {
                throw new IllegalArgumentException(
                        "--only: unknown section '" + s + "'; use " + String.join(", ", SECTIONS));
            }
        }
        LlamaConfig cfg = new LlamaConfig(vocab, dim, layers, heads, heads, ffn, Math.max(seq, 1), 10000f, 1e-5f, true);
        int measuredSteps = steps != null ? steps : quick ? 4 : 10;
        int warmupSteps = quick ? 1 : 2;
        Measure.Budget budget = quick ? Measure.Budget.quick() : Measure.Budget.full();

        BenchReport report = new BenchReport();
        MachineInfo.collect().forEach(report::meta);
        report.meta(
                "command",
                "mode " + String.join(" ", spec.commandLine().getParseResult().originalArgs()));
        report.meta("threads", String.valueOf(threads));
        report.meta(
                "model",
                String.format(
                        Locale.ROOT,
                        "%d layers, d_model %d, %d heads, ffn %d, vocab %d, tied, float32; batch %d x seq %d",
                        layers,
                        dim,
                        heads,
                        ffn,
                        vocab,
                        batch,
                        seq));
        double loadBefore = MachineInfo.loadAverage();
        List<BenchReport> runs = new ArrayList<>();
        for (int run = 1; run <= repeat; run++) {
            if (repeat > 1) progress(o, "run " + run + " of " + repeat);
            BenchReport one = new BenchReport();
            measure(one, o, sections, cfg, budget, warmupSteps, measuredSteps);
            runs.add(one);
        }
        BenchReport measured = BenchReport.medianOf(runs);
        measured.meta().forEach(report::meta);
        if (repeat > 1)
            report.meta(
                    "repeats",
                    repeat
                            + " runs; each value is the median over runs, ours/peer the median of the runs' ratios (listed in the notes)");
        for (String unit : List.of("GFLOP/s", "GB/s")) {
            if (Double.isFinite(measured.ceilingOf(unit))) report.ceiling(unit, measured.ceilingOf(unit));
        }
        measured.rows().forEach(report::add);

        report.meta(
                "load average",
                String.format(
                        Locale.ROOT,
                        "%.2f before, %.2f after (1-minute; above %d means the machine was shared)",
                        loadBefore,
                        MachineInfo.loadAverage(),
                        threads));
        o.println();
        o.print(report.table());
        o.print(Targets.summary(report));
        Path file = out != null
                ? out
                : Path.of(
                        "runs",
                        "bench",
                        "bench-" + LocalDateTime.now().format(DateTimeFormatter.ofPattern("yyyyMMdd-HHmmss"))
                                + ".json");
        report.writeJson(file);
        if (markdown != null) report.writeMarkdown(markdown);
        o.println("wrote " + file + (markdown != null ? " and " + markdown : ""));
        o.flush();
        return 0;
    }

    /** Why the peers' Python cannot import torch (empty: it can); checked once per command, null until then. */
    private Optional<String> torchMissing;

    /**
     * Runs one PyTorch peer with the Python of --python, else $MODE_BENCH_PYTHON, else python3. When that Python
     * cannot import torch, or the peer fails, the report gets a skipped row (group, name) with the reason.
     */
    private Optional<JsonObject> torchPeer(
            BenchReport report,
            PrintWriter o,
            String group,
            String name,
            String what,
            Function<String, TorchPeer.Outcome> run) {
        String py = python != null
                ? python
                : Optional.ofNullable(System.getenv("MODE_BENCH_PYTHON")).orElse("python3");
        if (torchMissing == null) torchMissing = TorchPeer.checkImportable(py);
        if (torchMissing.isPresent()) {
            report.add(BenchReport.Row.skipped(group, name, torchMissing.get()));
            return Optional.empty();
        }
        progress(o, group + ": " + what + " (" + py + ")");
        TorchPeer.Outcome res = run.apply(py);
        if (res.result().isEmpty()) report.add(BenchReport.Row.skipped(group, name, res.reason()));
        return res.result();
    }

    /** One pass over the selected sections, rows and library facts into {@code report}. */
    private void measure(
            BenchReport report,
            PrintWriter o,
            List<String> sections,
            LlamaConfig cfg,
            Measure.Budget budget,
            int warmupSteps,
            int measuredSteps) {

        double peakGflops = Double.NaN, peakGBs = Double.NaN;
        if (sections.contains("probes")
                || sections.contains("sgemm")
                || sections.contains("ops")
                || sections.contains("train")) {
            progress(o, "probes: FMA throughput and memory copy on " + threads + " threads");
            peakGflops = PeakProbes.fmaGflops(threads, quick ? 3 : 7);
            peakGBs = PeakProbes.copyGBs(threads, 256, quick ? 3 : 7);
            report.ceiling("GFLOP/s", peakGflops).ceiling("GB/s", peakGBs);
            report.add(BenchReport.Row.of(
                    "probe", "fma loop (Vector API)", threads + " threads", Double.NaN, peakGflops, "GFLOP/s", 1.0));
            report.add(BenchReport.Row.of(
                    "probe", "array copy 256 MB", threads + " threads", Double.NaN, peakGBs, "GB/s", 1.0));
        }

        // `be` is the backend users get (its gemm op runs oneMKL on Intel CPUs where it loads); `vectorGemm` always
        // runs
        // our Vector API SGEMM, for the SGEMM target and for a training row beside oneMKL's.
        try (Backend be = Backends.create("cpu", threads);
                CpuBackend vectorGemm = new CpuBackend(threads, CpuGemm.VECTOR)) {
            boolean mklGemm = be instanceof CpuBackend cb && cb.usesMkl();
            if (be instanceof CpuBackend cb) {
                report.meta(
                        "cpu backend",
                        cb.threads() + " threads, " + cb.kernelDescription() + " kernels, gemm op: "
                                + cb.gemmDescription());
            }
            CpuSuite suite = new CpuSuite(vectorGemm, budget);
            if (sections.contains("sgemm")) {
                List<GemmCase> cases = new ArrayList<>(GemmCase.modelShapes(cfg, batch * seq));
                cases.addAll(quick ? GemmCase.squares(512, 1024) : GemmCase.squares(256, 512, 1024, 2048));
                List<String> peers = switch (openblas) {
                    case "none" -> List.of();
                    case "all" ->
                        OpenBlas.systemLibrary().isPresent() ? List.of("bytedeco", "system") : List.of("bytedeco");
                    default -> List.of(openblas);
                };
                if (peers.isEmpty()) {
                    progress(o, "sgemm: " + cases.size() + " shapes, no peer");
                    suite.sgemm(cases, null, peakGflops).forEach(report::add);
                }
                List<BenchReport.Row> ours = new ArrayList<>();
                for (String peer : peers) {
                    try (OpenBlas blas = OpenBlas.load(peer)) {
                        blas.setThreads(threads);
                        report.meta("openblas " + blas.source(), blas.describe());
                        progress(
                                o,
                                "sgemm: " + cases.size() + " shapes beside "
                                        + blas.config().trim());
                        for (BenchReport.Row r : suite.sgemm(cases, blas, peakGflops)) {
                            report.add(r.withPeer("OpenBLAS " + blas.source(), r.peerValue()));
                            if (ours.size() < cases.size()) ours.add(r);
                        }
                    }
                }
                if (sections.contains("torch") && !ours.isEmpty()) {
                    // A reference, not a target: PyTorch's CPU BLAS (MKL) at the same shapes, beside the timings above.
                    torchPeer(
                                    report,
                                    o,
                                    "sgemm",
                                    "MKL peer",
                                    cases.size() + " shapes through PyTorch's BLAS",
                                    py -> TorchPeer.gemm(py, cases, threads, budget, 60L * cases.size() + 120))
                            .ifPresent(j -> {
                                String name = j.get("blas").getAsString().toUpperCase(Locale.ROOT) + " (torch "
                                        + j.get("torch_version").getAsString() + ")";
                                JsonObject results = j.getAsJsonObject("results");
                                for (int i = 0; i < cases.size(); i++) {
                                    BenchReport.Row r = ours.get(i);
                                    report.add(BenchReport.Row.of(
                                                    r.group(),
                                                    r.name(),
                                                    r.shape(),
                                                    r.seconds(),
                                                    r.value(),
                                                    r.unit(),
                                                    r.ofPeak())
                                            .withPeer(
                                                    name,
                                                    results.getAsJsonObject(
                                                                    cases.get(i).spec())
                                                            .get("gflops")
                                                            .getAsDouble()));
                                }
                            });
                }
            }
            if (sections.contains("ops")) {
                progress(o, "ops: attention, RMSNorm, SwiGLU, cross-entropy, AdamW at the model's shapes");
                suite.ops(cfg, batch, seq, peakGflops, peakGBs).forEach(report::add);
            }
            Optional<JsonObject> torch = Optional.empty();
            if (sections.contains("torch")) {
                torch = torchPeer(
                        report,
                        o,
                        "train",
                        "PyTorch peer",
                        "PyTorch peer, " + (warmupSteps + measuredSteps) + " steps",
                        py -> TorchPeer.run(
                                py, cfg, batch, seq, threads, warmupSteps, measuredSteps, quick ? 300 : 1200));
                torch.ifPresent(j -> report.meta(
                        "pytorch",
                        "torch " + j.get("torch_version").getAsString() + ", "
                                + j.get("blas").getAsString() + ", "
                                + j.get("cpu_capability").getAsString() + ", AdamW "
                                + j.get("adamw").getAsString()
                                + ", eager, " + j.get("threads").getAsInt() + " threads"));
            }
            if (sections.contains("train")) {
                // the backend as shipped first, then the other GEMM provider (where oneMKL loads), so the default
                // provider of this CPU is checked against the alternative in the same run
                String shipped = mklGemm ? "oneMKL GEMM" : "Vector API GEMM";
                report.add(trainRow(
                        o,
                        be,
                        "training step, " + shipped + " (default)",
                        cfg,
                        warmupSteps,
                        measuredSteps,
                        peakGflops,
                        torch));
                if (mklGemm) {
                    report.add(trainRow(
                            o,
                            vectorGemm,
                            "training step, Vector API GEMM",
                            cfg,
                            warmupSteps,
                            measuredSteps,
                            peakGflops,
                            torch));
                } else if (Mkl.unavailableReason().isEmpty()) {
                    try (CpuBackend mkl = new CpuBackend(threads, CpuGemm.MKL)) {
                        report.add(trainRow(
                                o,
                                mkl,
                                "training step, oneMKL GEMM",
                                cfg,
                                warmupSteps,
                                measuredSteps,
                                peakGflops,
                                torch));
                    }
                }
            } else if (torch.isPresent()) {
                JsonObject j = torch.get();
                report.add(BenchReport.Row.of(
                        "train",
                        "PyTorch only",
                        batch + "x" + seq,
                        j.get("median_step_seconds").getAsDouble(),
                        j.get("tokens_per_second").getAsDouble(),
                        "tokens/s",
                        Double.NaN));
            }
            if (sections.contains("mode")) {
                progress(o, "mode: MoDE block, batched vs one-by-one experts, MoDE training");
                ModeBench.rows(be, cfg, batch, seq, budget, warmupSteps, measuredSteps)
                        .forEach(report::add);
            }
            if (sections.contains("generate")) generateRow(report, o, be, cfg, sections.contains("torch"));
        }

        if (sections.contains("gpu")) {
            Optional<String> why = GpuSuite.unavailableReason();
            if (why.isPresent()) {
                report.add(BenchReport.Row.skipped("gpu", "kernels", "no CUDA device: " + why.get()));
            } else {
                progress(o, "gpu: kernels and cuBLASLt");
                GpuSuite.run(cfg, batch, seq, quick).forEach(report::add);
            }
        }
    }

    /**
     * The generation row: greedy decode tokens/s of {@link GenerateBench} on {@code be}, beside transformers'
     * LlamaForCausalLM.generate with its KV cache on the CPU (same model, prompt, new tokens and threads), into
     * {@code report} (with a skipped row naming the reason when the peer cannot run).
     */
    private void generateRow(BenchReport report, PrintWriter o, Backend be, LlamaConfig cfg, boolean withTorch) {
        int prompt = generatePrompt(), fresh = Math.max(2, seq - prompt), repeats = quick ? 2 : 5;
        String shape = prompt + "+" + fresh + " tokens";
        Optional<JsonObject> torch = withTorch
                ? torchPeer(
                        report,
                        o,
                        "generate",
                        "PyTorch peer",
                        "transformers generate, " + shape,
                        py -> TorchPeer.generate(py, cfg, prompt, fresh, threads, repeats, quick ? 300 : 900))
                : Optional.empty();
        progress(o, "generate: our Generator with its key/value cache, " + shape);
        GenerateBench.Result r = GenerateBench.run(be, cfg, prompt, fresh, repeats, 42);
        BenchReport.Row row = BenchReport.Row.of(
                        "generate",
                        "greedy decode, KV cache",
                        shape,
                        1 / r.decodeTokensPerSecond(),
                        r.decodeTokensPerSecond(),
                        "tokens/s",
                        Double.NaN)
                .withNote(String.format(
                        Locale.ROOT,
                        "prefill %.0f tokens/s%s",
                        r.prefillTokensPerSecond(),
                        torch.map(j -> String.format(
                                        Locale.ROOT,
                                        "; PyTorch prefill %.0f tokens/s (transformers %s)",
                                        j.get("prefill_tokens_per_second").getAsDouble(),
                                        j.get("transformers_version").getAsString()))
                                .orElse("")));
        if (torch.isPresent())
            row = row.withPeer(
                    "PyTorch " + torch.get().get("torch_version").getAsString(),
                    torch.get().get("decode_tokens_per_second").getAsDouble());
        report.add(row);
    }

    /** One training row: our trainer on {@code be}, beside the PyTorch peer when it ran. */
    private BenchReport.Row trainRow(
            PrintWriter o,
            Backend be,
            String name,
            LlamaConfig cfg,
            int warmupSteps,
            int measuredSteps,
            double peakGflops,
            Optional<JsonObject> torch) {
        progress(o, "train: our trainer (" + name + "), " + (warmupSteps + measuredSteps) + " steps");
        TrainBench.Result r = TrainBench.run(be, cfg, batch, seq, warmupSteps, measuredSteps, 42);
        long flops = Flops.trainStep(cfg, batch, seq);
        BenchReport.Row row = BenchReport.Row.of(
                        "train",
                        name,
                        batch + "x" + seq,
                        r.medianSeconds(),
                        r.tokensPerSecond(),
                        "tokens/s",
                        flops / r.medianSeconds() / 1e9 / peakGflops)
                .withNote(String.format(
                        Locale.ROOT,
                        "%.1f GFLOP/s model FLOPs; loss %.3f -> %.3f",
                        flops / r.medianSeconds() / 1e9,
                        r.firstLoss(),
                        r.lastLoss()));
        if (torch.isPresent())
            row = row.withPeer(
                    "PyTorch " + torch.get().get("torch_version").getAsString(),
                    torch.get().get("tokens_per_second").getAsDouble());
        return row;
    }

    private static void progress(PrintWriter o, String what) {
        o.println("mode bench: " + what);
        o.flush();
    }
}
