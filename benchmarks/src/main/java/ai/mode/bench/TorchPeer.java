package ai.mode.bench;

import ai.mode.model.LlamaConfig;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.TimeUnit;

/**
 * Runs the PyTorch peer scripts with our settings and reads back their one-line JSON results:
 * benchmarks/peers/torch_train.py (same model, batch, sequence and threads as our trainer) and
 * benchmarks/peers/torch_gemm.py (PyTorch's CPU BLAS, MKL in the official wheels, at our GEMM shapes) and
 * benchmarks/peers/torch_generate.py (greedy decoding with transformers' KV cache, the same model). Finds a Python
 * with PyTorch and runs a peer script; every failure becomes a one-line reason.
 */
public final class TorchPeer {
    /** The training peer (benchmarks/peers; a classpath copy is used outside a checkout). */
    static final String TRAIN_SCRIPT = "torch_train.py";
    /** The SGEMM peer. */
    static final String GEMM_SCRIPT = "torch_gemm.py";
    /** The generation peer (transformers' LlamaForCausalLM.generate with its KV cache). */
    static final String GENERATE_SCRIPT = "torch_generate.py";

    private TorchPeer() {}

    /** What the peer measured, or why it could not. */
    public record Outcome(Optional<JsonObject> result, String reason) {
        static Outcome failed(String why) {
            return new Outcome(Optional.empty(), why);
        }
    }

    /**
     * Runs the script with {@code python}. {@code timeoutSeconds} bounds the whole run (import included).
     */
    public static Outcome run(
            String python, LlamaConfig c, int batch, int seq, int threads, int warmup, int steps, long timeoutSeconds) {
        return run(python, c, batch, seq, threads, warmup, steps, "cpu", timeoutSeconds);
    }

    /** As {@link #run(String, LlamaConfig, int, int, int, int, int, long)}, on PyTorch device {@code device}. */
    public static Outcome run(
            String python,
            LlamaConfig c,
            int batch,
            int seq,
            int threads,
            int warmup,
            int steps,
            String device,
            long timeoutSeconds) {
        return runScript(
                python,
                TRAIN_SCRIPT,
                withModel(
                        c,
                        "--seq",
                        str(seq),
                        "--batch",
                        str(batch),
                        "--threads",
                        str(threads),
                        "--warmup",
                        str(warmup),
                        "--steps",
                        str(steps),
                        "--device",
                        device),
                threads,
                timeoutSeconds);
    }

    /** The model-shape arguments both peer scripts take (vocabulary, widths, heads, RoPE theta, eps), then {@code rest}. */
    private static List<String> withModel(LlamaConfig c, String... rest) {
        List<String> args = new ArrayList<>(List.of(
                "--vocab",
                str(c.vocabSize()),
                "--dim",
                str(c.hiddenSize()),
                "--layers",
                str(c.numLayers()),
                "--heads",
                str(c.numHeads()),
                "--kv-heads",
                str(c.numKvHeads()),
                "--ffn",
                str(c.intermediateSize()),
                "--rope-theta",
                String.valueOf(c.ropeTheta()),
                "--eps",
                String.valueOf(c.rmsNormEps())));
        args.addAll(List.of(rest));
        return args;
    }

    /**
     * Greedy generation of {@code newTokens} after a random prompt of {@code promptTokens} with transformers'
     * LlamaForCausalLM and its KV cache, the same model shape and threads; the result holds
     * {@code prefill_tokens_per_second} and {@code decode_tokens_per_second} (medians over {@code repeats}).
     */
    public static Outcome generate(
            String python,
            LlamaConfig c,
            int promptTokens,
            int newTokens,
            int threads,
            int repeats,
            long timeoutSeconds) {
        return runScript(
                python,
                GENERATE_SCRIPT,
                withModel(
                        c,
                        "--context",
                        str(Math.max(c.maxSeqLen(), promptTokens + newTokens)),
                        "--prompt",
                        str(promptTokens),
                        "--new",
                        str(newTokens),
                        "--threads",
                        str(threads),
                        "--repeats",
                        str(repeats)),
                threads,
                timeoutSeconds);
    }

    /**
     * Times {@code torch.mm} at each case's shape under the same warm-up and measuring seconds as our GEMMs; the
     * result's {@code results} object maps each {@link GemmCase#spec()} to its median seconds and GFLOP/s.
     */
    public static Outcome gemm(
            String python, List<GemmCase> cases, int threads, Measure.Budget budget, long timeoutSeconds) {
        List<String> args = new ArrayList<>(List.of(
                "--threads",
                str(threads),
                "--warmup-seconds",
                String.valueOf(budget.warmupSeconds()),
                "--seconds",
                String.valueOf(budget.measureSeconds()),
                "--min-runs",
                str(budget.minRuns())));
        for (GemmCase g : cases) args.add(g.spec());
        return runScript(python, GEMM_SCRIPT, args, threads, timeoutSeconds);
    }

    /** Runs peer script {@code name} with {@code args} and parses the last line of its output as JSON. */
    private static Outcome runScript(String python, String name, List<String> args, int threads, long timeoutSeconds) {
        Path script;
        try {
            script = scriptPath(name);
        } catch (IOException e) {
            return Outcome.failed("cannot stage the PyTorch peer script " + name + ": " + e.getMessage());
        }
        List<String> cmd = new ArrayList<>(List.of(python, script.toString()));
        cmd.addAll(args);
        ProcessBuilder pb = new ProcessBuilder(cmd);
        pb.environment().put("OMP_NUM_THREADS", str(threads));
        pb.environment().put("MKL_NUM_THREADS", str(threads));
        pb.redirectErrorStream(false);
        try {
            Process p = pb.start();
            byte[][] captured = new byte[2][];
            Thread errReader = Thread.ofPlatform().start(() -> captured[1] = readAll(p.getErrorStream()));
            captured[0] = readAll(p.getInputStream());
            if (!p.waitFor(timeoutSeconds, TimeUnit.SECONDS)) {
                p.destroyForcibly();
                return Outcome.failed("PyTorch peer " + name + " did not finish within " + timeoutSeconds + " s");
            }
            errReader.join();
            String out = new String(captured[0], StandardCharsets.UTF_8).strip();
            String err = captured[1] == null ? "" : new String(captured[1], StandardCharsets.UTF_8).strip();
            if (p.exitValue() != 0) {
                return Outcome.failed("PyTorch peer " + name + " (" + python + ") failed with exit " + p.exitValue()
                        + ": " + lastLine(err));
            }
            String json = lastLine(out);
            try {
                return new Outcome(Optional.of(JsonParser.parseString(json).getAsJsonObject()), "");
            } catch (RuntimeException e) {
                return Outcome.failed("PyTorch peer " + name + " printed no JSON result: " + json);
            }
        } catch (IOException e) {
            return Outcome.failed(
                    "cannot run " + python + " (" + e.getMessage() + "); pass --python PATH to a Python with torch");
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return Outcome.failed("interrupted");
        }
    }

    /** Whether {@code python} can import torch; empty when it can, else a one-line reason. */
    public static Optional<String> checkImportable(String python) {
        try {
            Process p = new ProcessBuilder(python, "-c", "import torch; print(torch.__version__)")
                    .redirectErrorStream(true)
                    .start();
            String out = new String(readAll(p.getInputStream()), StandardCharsets.UTF_8).strip();
            if (!p.waitFor(120, TimeUnit.SECONDS)) {
                p.destroyForcibly();
                return Optional.of(python + " did not import torch within 120 s");
            }
            return p.exitValue() == 0
                    ? Optional.empty()
                    : Optional.of(python + " cannot import torch (" + lastLine(out)
                            + "); install it, e.g. pip install torch, or pass --python");
        } catch (IOException e) {
            return Optional.of(
                    "no " + python + " to run the PyTorch peer (" + e.getMessage() + "); pass --python PATH");
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return Optional.of("interrupted");
        }
    }

    /** The repository's copy of script {@code name} if we run from a checkout, else the classpath copy written to a temp file. */
    static Path scriptPath(String name) throws IOException {
        String root = System.getProperty("mode.repo.root");
        for (Path candidate : new Path[] {
            root == null ? null : Path.of(root, "benchmarks/peers", name), Path.of("benchmarks/peers", name)
        }) {
            if (candidate != null && Files.isRegularFile(candidate)) return candidate.toAbsolutePath();
        }
        try (InputStream in = TorchPeer.class.getResourceAsStream("/ai/mode/bench/" + name)) {
            if (in == null) throw new IOException(name + " is neither in benchmarks/peers nor on the classpath");
            Path tmp = Files.createTempFile("mode-torch-peer", ".py");
            tmp.toFile().deleteOnExit();
            Files.write(tmp, in.readAllBytes());
            return tmp;
        }
    }

    private static byte[] readAll(InputStream in) {
        try (in) {
            return in.readAllBytes();
        } catch (IOException e) {
            return new byte[0];
        }
    }

    static String lastLine(String s) {
        String[] lines = s.strip().split("\n");
        return lines.length == 0 ? "" : lines[lines.length - 1].strip();
    }

    private static String str(int v) {
        return Integer.toString(v);
    }
}
