package ai.mode.model.train;

import ai.mode.runtime.LossStats;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.io.BufferedWriter;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;

/**
 * Training metrics as JSON lines (one object per step / validation), the input of plots and reports.
 *
 * <p>Appends one JSON object per line to {@code metrics.jsonl}:
 * <pre>
 * {"type":"train","step":12,"loss":5.43,"acc":0.11,"lr":0.0006,"grad_norm":0.93,"tokens_per_s":2011.5,"tokens":49152,"time_s":24.4}
 * {"type":"val","step":50,"val_loss":4.98,"val_ppl":145.5,"val_acc":0.17,"val_tokens":16384}
 * </pre>
 * Other listeners add their own lines through {@link #append} (MoDE runs: {@code "type":"router"}); readers skip
 * types they do not know.
 * On resume the file is first cut back to the resumed step, so it never holds steps twice.
 */
public final class MetricsLog implements Trainer.Listener, AutoCloseable {
    private final Path file;
    private BufferedWriter out;

    /** A log writing to {@code file}, opened when training starts. */
    public MetricsLog(Path file) {
        this.file = file;
    }

    /** Opens the file, keeping only lines of steps before {@code firstStep} (so a resumed run never repeats steps). */
    @Override
    public void onStart(int firstStep, int totalSteps, Trainer.Options options) {
        try {
            open(firstStep - 1);
        } catch (IOException e) {
            throw new UncheckedIOException("could not open metrics file " + file + ": " + e.getMessage(), e);
        }
    }

    private void open(int keepUpToStep) throws IOException {
        close();
        if (file.getParent() != null) Files.createDirectories(file.getParent());
        List<String> kept = new ArrayList<>();
        if (keepUpToStep > 0 && Files.exists(file)) {
            for (String line : Files.readAllLines(file, StandardCharsets.UTF_8)) {
                if (line.isBlank()) continue;
                try {
                    if (JsonParser.parseString(line)
                                    .getAsJsonObject()
                                    .get("step")
                                    .getAsInt()
                            <= keepUpToStep) kept.add(line);
                } catch (RuntimeException malformed) {
                    // a torn last line from a killed run: drop it
                }
            }
        }
        Files.write(file, kept, StandardCharsets.UTF_8);
        out = Files.newBufferedWriter(file, StandardCharsets.UTF_8, StandardOpenOption.APPEND);
    }

    public Path file() {
        return file;
    }

    @Override
    public void onStep(Trainer.StepMetrics m) {
        JsonObject o = new JsonObject();
        o.addProperty("type", "train");
        o.addProperty("step", m.step());
        o.addProperty("loss", m.loss());
        o.addProperty("acc", m.accuracy());
        o.addProperty("lr", m.lr());
        o.addProperty("grad_norm", m.gradNorm());
        o.addProperty("tokens_per_s", Math.round(m.tokensPerSecond() * 10) / 10.0);
        o.addProperty("tokens", m.tokensSeen());
        o.addProperty("time_s", Math.round(m.elapsedSeconds() * 100) / 100.0);
        write(o);
    }

    @Override
    public void onValidation(int step, LossStats s) {
        JsonObject o = new JsonObject();
        o.addProperty("type", "val");
        o.addProperty("step", step);
        o.addProperty("val_loss", s.meanLoss());
        o.addProperty("val_ppl", Math.exp(s.meanLoss()));
        o.addProperty("val_acc", s.accuracy());
        o.addProperty("val_tokens", s.count());
        write(o);
    }

    /** Appends a line of another listener; it must carry {@code "type"} and {@code "step"}. */
    public void append(JsonObject line) {
        if (!line.has("type") || !line.has("step"))
            throw new IllegalArgumentException("a metrics line needs \"type\" and \"step\": " + line);
        write(line);
    }

    private void write(JsonObject o) {
        if (out == null) throw new IllegalStateException("metrics log used before training started");
        try {
            out.write(o.toString());
            out.newLine();
            out.flush();
        } catch (IOException e) {
            throw new UncheckedIOException("could not write metrics to " + file + ": " + e.getMessage(), e);
        }
    }

    @Override
    public void close() throws IOException {
        if (out != null) out.close();
        out = null;
    }
}
