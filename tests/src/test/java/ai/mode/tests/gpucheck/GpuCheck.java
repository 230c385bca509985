package ai.mode.tests.gpucheck;

import ai.mode.bench.BenchReport;
import ai.mode.bench.Flops;
import ai.mode.bench.GpuSuite;
import ai.mode.bench.TorchPeer;
import ai.mode.bench.TrainBench;
import ai.mode.bindings.CublasLt;
import ai.mode.bindings.CudaDriver;
import ai.mode.bindings.NativeLibraries;
import ai.mode.bindings.NativeLibraries.Library;
import ai.mode.bindings.Nccl;
import ai.mode.bindings.Nvrtc;
import ai.mode.kernels.KernelResources;
import ai.mode.model.LlamaConfig;
import ai.mode.runtime.Backend;
import ai.mode.runtime.Backends;
import ai.mode.runtime.cuda.CudaBackendProvider;
import com.google.gson.JsonObject;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.TreeMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Collectors;
import java.util.stream.Stream;

/**
 * The Java steps of {@code gpu-check.sh} (tools/gpu-bundle), run from the GPU bundle with its own runtime:
 *
 * <ul>
 *   <li>{@code facts}: where each CUDA library was found (or one line naming it and every folder looked in), the
 *       library versions and the device facts; exit status 3 and one line {@code no GPU: <reason>} when no CUDA
 *       device can be used;</li>
 *   <li>{@code train STEPS TOL}: the benchmark model ({@link TrainBench#referenceConfig()}, batch 8 x 256 tokens)
 *       trained STEPS steps from the same initialisation and data on {@code cuda} and on {@code cpu}; fails when
 *       any step's losses differ by more than TOL nats or one is not finite;</li>
 *   <li>{@code trainer-vs-torch PYTHON STEPS}: our trainer on {@code cuda} beside {@code
 *       benchmarks/peers/torch_train.py --device cuda} on the same GPU and model: tokens/s and model FLOP
 *       utilisation against the card's float32 CUDA-core peak (both train in float32);</li>
 *   <li>{@code bench-rows BENCH_JSON}: the GPU benchmark's report holds every reduction row
 *       ({@link GpuSuite#REDUCTION_ROWS}) at {@link GpuSuite#reductionShape()}, measured (not skipped).</li>
 * </ul>
 * Each prints its result as the last line of its output.
 */
public final class GpuCheck {
    private static final int BATCH = 8;
    private static final int SEQ = 256;
    private static final long SEED = 42;

    private GpuCheck() {}

    public static void main(String[] args) {
        String cmd = args.length == 0 ? "" : args[0];
        int status = switch (cmd) {
            case "facts" -> facts();
            case "train" -> train(Integer.parseInt(arg(args, 1)), Double.parseDouble(arg(args, 2)));
            case "trainer-vs-torch" -> trainerVsTorch(arg(args, 1), Integer.parseInt(arg(args, 2)));
            case "bench-rows" -> benchRows(Path.of(arg(args, 1)));
            case "sass" -> sass();
            default ->
                throw new IllegalArgumentException(
                        "unknown step '" + cmd
                                + "'; use facts, train STEPS TOL, trainer-vs-torch PYTHON STEPS, bench-rows BENCH_JSON or sass");
        };
        System.exit(status);
    }

    private static String arg(String[] args, int i) {
        if (i >= args.length) throw new IllegalArgumentException(args[0] + ": argument " + i + " is missing");
        return args[i];
    }

    private static int facts() {
        NativeLibraries libs = NativeLibraries.system();
        for (Library lib : List.of(Library.CUDA_DRIVER, Library.CUBLASLT, Library.NCCL, Library.NVRTC)) {
            Optional<String> problem = libs.problem(lib);
            if (problem.isEmpty()) {
                NativeLibraries.Loaded l = libs.load(lib);
                System.out.println("library " + lib.description() + ": " + l.soname() + " from " + l.origin());
            } else {
                String looked = libs.searchDirs().stream()
                        .filter(Files::isDirectory)
                        .map(Object::toString)
                        .collect(Collectors.joining(", "));
                System.out.println("library " + lib.description() + " MISSING: " + problem.get() + "; looked in "
                        + (looked.isEmpty() ? "no existing folder" : looked) + ", then the system loader");
            }
        }
        Nvrtc.unavailableReason().ifPresentOrElse(r -> {}, () -> {
            int[] v = Nvrtc.get().version();
            System.out.println("NVRTC version " + v[0] + "." + v[1]);
        });
        if (CublasLt.unavailableReason().isEmpty())
            System.out.println("cuBLASLt version " + CublasLt.get().version());
        if (Nccl.unavailableReason().isEmpty()) {
            System.out.println("NCCL version " + Nccl.versionString(Nccl.get().version()));
        }
        CudaBackendProvider cuda = new CudaBackendProvider();
        if (!cuda.available()) {
            System.out.println("no GPU: " + cuda.unavailableReason());
            return 3;
        }
        CudaDriver d = CudaDriver.get();
        int driver = d.driverVersion();
        for (int i = 0; i < d.deviceCount(); i++) {
            int dev = d.device(i);
            int cc = d.computeCapability(dev);
            System.out.printf(
                    Locale.ROOT,
                    "GPU %d: %s, compute capability %d.%d, %d SMs at %d MHz, %.1f GiB, L2 %d MiB, driver CUDA %d.%d,"
                            + " float32 CUDA-core peak %.1f TFLOP/s%n",
                    i,
                    d.deviceName(dev),
                    cc / 10,
                    cc % 10,
                    d.deviceAttribute(CudaDriver.ATTR_MULTIPROCESSOR_COUNT, dev),
                    d.deviceAttribute(CudaDriver.ATTR_CLOCK_RATE_KHZ, dev) / 1000,
                    d.deviceTotalMemory(dev) / (double) (1L << 30),
                    d.deviceAttribute(CudaDriver.ATTR_L2_CACHE_SIZE, dev) >> 20,
                    driver / 1000,
                    driver % 1000 / 10,
                    fp32Peak(d, dev) / 1e12);
        }
        return 0;
    }

    /**
     * The float32 CUDA-core peak, FLOP/s: SMs x FP32 lanes per SM x 2 (fused multiply-add) x clock; 64 lanes on
     * compute capability 8.0 (A100), 128 on 8.6 and newer (H100, H200: 132 SMs at 1.98 GHz give 66.9 TFLOP/s).
     */
    private static double fp32Peak(CudaDriver d, int dev) {
        int lanes = d.computeCapability(dev) == 80 ? 64 : 128;
        return (double) d.deviceAttribute(CudaDriver.ATTR_MULTIPROCESSOR_COUNT, dev)
                * lanes
                * 2
                * d.deviceAttribute(CudaDriver.ATTR_CLOCK_RATE_KHZ, dev)
                * 1e3;
    }

    private static TrainBench.Result trainOn(String backend, int warmup, int steps) {
        try (Backend be = Backends.create(backend, Runtime.getRuntime().availableProcessors())) {
            return TrainBench.run(be, TrainBench.referenceConfig(), BATCH, SEQ, warmup, steps, SEED);
        }
    }

    private static int train(int steps, double tol) {
        TrainBench.Result gpu = trainOn("cuda", 0, steps);
        TrainBench.Result cpu = trainOn("cpu", 0, steps);
        double worst = 0;
        int worstStep = -1;
        for (int i = 0; i < steps; i++) {
            double diff = Math.abs(gpu.losses()[i] - cpu.losses()[i]);
            if (!(diff <= worst)) {
                worst = diff;
                worstStep = i + 1;
            }
        }
        boolean ok = worst <= tol;
        System.out.printf(
                Locale.ROOT,
                "train %d steps (batch %d x %d): loss cuda %.5f -> %.5f, cpu %.5f -> %.5f; largest step difference"
                        + " %.2e at step %d (tolerance %.0e): %s; tokens/s cuda %.0f, cpu %.0f%n",
                steps,
                BATCH,
                SEQ,
                gpu.firstLoss(),
                gpu.lastLoss(),
                cpu.firstLoss(),
                cpu.lastLoss(),
                worst,
                worstStep,
                tol,
                ok ? "agree" : "DIFFER",
                gpu.tokensPerSecond(),
                cpu.tokensPerSecond());
        return ok ? 0 : 1;
    }

    /** Modules with tensor-core kernels, and the entry-point prefix of those kernels. */
    private static final Map<String, String> TENSOR_CORE_KERNELS = Map.of(
            "gemm/gemm",
            "mode_gemm_wmma_",
            "grouped/grouped",
            "mode_groupedgemm_",
            "attention_wmma/attention_wmma",
            "mode_attention_wmma");

    /**
     * Where cuobjdump exists (CUDA toolkits on the lent machines; not the build machine's nvcc): disassembles the
     * embedded fatbins and checks that every tensor-core entry point's SASS, for every architecture in them, holds
     * HMMA instructions. 3 (skipped) without cuobjdump or fatbins.
     */
    private static int sass() {
        Optional<Path> tool = Stream.concat(
                        Stream.of(System.getenv().getOrDefault("PATH", "").split(":"))
                                .map(Path::of),
                        Stream.of("/usr/local/cuda/bin").map(Path::of))
                .map(dir -> dir.resolve("cuobjdump"))
                .filter(Files::isExecutable)
                .findFirst();
        if (tool.isEmpty()) {
            System.out.println("cuobjdump not found (PATH, /usr/local/cuda/bin): SASS not checked");
            return 3;
        }
        boolean ok = true;
        int checked = 0;
        for (Map.Entry<String, String> e : TENSOR_CORE_KERNELS.entrySet()) {
            Optional<byte[]> fatbin = KernelResources.fatbin(e.getKey());
            if (fatbin.isEmpty()) {
                System.out.println("no fatbin for " + e.getKey() + " (built without nvcc): SASS not checked");
                return 3;
            }
            Map<String, Integer> hmma = new TreeMap<>(); // "sm_90a mode_x" -> HMMA instructions
            try {
                Path file = Files.createTempFile("mode-sass-", ".fatbin");
                try {
                    Files.write(file, fatbin.get());
                    Process p = new ProcessBuilder(tool.get().toString(), "-sass", file.toString())
                            .redirectErrorStream(true)
                            .start();
                    String arch = "?", function = null;
                    for (String line :
                            new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).split("\n")) {
                        Matcher a = Pattern.compile("code for (sm_[0-9a-z]+)").matcher(line);
                        Matcher f = Pattern.compile("Function : (\\S+)").matcher(line);
                        if (a.find()) arch = a.group(1);
                        if (f.find()) {
                            function = f.group(1);
                            if (function.startsWith(e.getValue())) hmma.putIfAbsent(arch + " " + function, 0);
                        }
                        if (function != null && function.startsWith(e.getValue()) && line.contains("HMMA"))
                            hmma.merge(arch + " " + function, 1, Integer::sum);
                    }
                    if (p.waitFor() != 0) {
                        System.out.println("cuobjdump failed on " + e.getKey());
                        return 1;
                    }
                } finally {
                    Files.deleteIfExists(file);
                }
            } catch (java.io.IOException ex) {
                System.out.println("cuobjdump on " + e.getKey() + ": " + ex.getMessage());
                return 1;
            } catch (InterruptedException ex) {
                Thread.currentThread().interrupt();
                return 1;
            }
            for (Map.Entry<String, Integer> k : hmma.entrySet()) {
                System.out.println(k.getKey() + ": " + k.getValue() + " HMMA");
                ok &= k.getValue() > 0;
                checked++;
            }
        }
        System.out.println((ok ? "every" : "NOT every") + " tensor-core kernel has HMMA in its SASS (" + checked
                + " kernel x architecture pairs)");
        return ok && checked > 0 ? 0 : 1;
    }

    private static int trainerVsTorch(String python, int steps) {
        LlamaConfig cfg = TrainBench.referenceConfig();
        CudaDriver d = CudaDriver.get();
        double peak = fp32Peak(d, d.device(0));
        double flops = Flops.trainStep(cfg, BATCH, SEQ);
        TrainBench.Result ours = trainOn("cuda", 3, steps);
        double oursMfu = flops / ours.medianSeconds() / peak;
        TorchPeer.Outcome torch = TorchPeer.run(python, cfg, BATCH, SEQ, 1, 3, steps, "cuda", 45);
        if (torch.result().isEmpty()) {
            System.out.printf(
                    Locale.ROOT,
                    "trainer on cuda: ours %.0f tokens/s (MFU %.2f%% of float32 peak); PyTorch not run: %s%n",
                    ours.tokensPerSecond(),
                    100 * oursMfu,
                    torch.reason());
            return 1;
        }
        JsonObject t = torch.result().get();
        double torchSeconds = t.get("median_step_seconds").getAsDouble();
        System.out.printf(
                Locale.ROOT,
                "trainer on cuda (%s, batch %d x %d, float32): ours %.0f tokens/s (MFU %.2f%%), PyTorch %s %.0f"
                        + " tokens/s (MFU %.2f%%): ours/PyTorch %.2fx%n",
                t.has("device_name") ? t.get("device_name").getAsString() : "cuda",
                BATCH,
                SEQ,
                ours.tokensPerSecond(),
                100 * oursMfu,
                t.get("torch_version").getAsString(),
                t.get("tokens_per_second").getAsDouble(),
                100 * flops / torchSeconds / peak,
                ours.tokensPerSecond() / t.get("tokens_per_second").getAsDouble());
        return 0;
    }

    private static int benchRows(Path benchJson) {
        BenchReport report;
        try {
            report = BenchReport.fromJson(Files.readString(benchJson));
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read the GPU benchmark's report " + benchJson, e);
        }
        List<String> problems = reductionRowProblems(report, GpuSuite.reductionShape());
        if (!problems.isEmpty()) {
            System.out.println("reduction rows: " + String.join("; ", problems));
            return 1;
        }
        System.out.println("reduction rows at " + GpuSuite.reductionShape() + ": "
                + report.rows().stream()
                        .filter(r -> r.group().equals("gpu") && GpuSuite.REDUCTION_ROWS.contains(r.name()))
                        .map(r -> String.format(
                                Locale.ROOT,
                                "%s %.2f %s (%.0f%% of copy bandwidth)",
                                r.name(),
                                r.value(),
                                r.unit(),
                                100 * r.ofPeak()))
                        .collect(Collectors.joining(", ")));
        return 0;
    }

    /**
     * What is wrong with the reduction rows of a GPU benchmark report: each of {@link GpuSuite#REDUCTION_ROWS} must be
     * a {@code gpu} row whose shape starts with {@code shape}, with a positive rate; empty when all are there.
     */
    static List<String> reductionRowProblems(BenchReport report, String shape) {
        List<String> problems = new ArrayList<>();
        for (String name : GpuSuite.REDUCTION_ROWS) {
            Optional<BenchReport.Row> row = report.rows().stream()
                    .filter(r -> r.group().equals("gpu") && r.name().equals(name))
                    .findFirst();
            if (row.isEmpty()) {
                problems.add("'" + name + "' is missing");
            } else if (!(row.get().value() > 0)) {
                problems.add("'" + name + "' did not run: " + row.get().note());
            } else if (!row.get().shape().startsWith(shape)) {
                problems.add("'" + name + "' ran at " + row.get().shape() + ", not " + shape);
            }
        }
        return problems;
    }
}
