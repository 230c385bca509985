// `mode grads`: loss, logits and every parameter gradient of one batch, for cross-framework checks.
package ai.mode.cli;

import ai.mode.model.io.Checkpoint;
import ai.mode.model.io.OutputGuard;
import ai.mode.model.io.SafeDType;
import ai.mode.model.io.SafeTensors;
import ai.mode.model.json.JsonMessages;
import ai.mode.model.nn.LlamaModel;
import ai.mode.model.train.BatchGradients;
import ai.mode.model.train.SavedModels;
import ai.mode.runtime.Backend;
import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonParser;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(
        name = "grads",
        mixinStandardHelpOptions = true,
        description = {
            "Write the loss, logits and every parameter gradient of one batch to a safetensors file.",
            "The tokens file holds B sequences of T+1 token ids (inputs are the first T, targets the last T):",
            "one sequence per line as whitespace-separated integers, or a JSON array of arrays.",
            "Output tensors: loss [1], logits [B,T,V], input_ids and targets [B,T] (as float32),",
            "grad.<parameter name> for every parameter (gradient of the mean token loss)."
        })
public final class GradsCommand implements Callable<Integer> {
    @Option(names = "--checkpoint", required = true, description = "Checkpoint directory (or run folder).")
    Path checkpoint;

    @Option(names = "--tokens", required = true, description = "Token file (see above).")
    Path tokens;

    @Option(names = "--out", required = true, description = "Output .safetensors file.")
    Path out;

    @Mixin
    CommonOptions common;

    @Override
    public Integer call() throws IOException {
        int[][] rows = readTokens(tokens);
        int b = rows.length, t = rows[0].length - 1;
        int[] flat = new int[b * (t + 1)];
        for (int i = 0; i < b; i++) System.arraycopy(rows[i], 0, flat, i * (t + 1), t + 1);
        Checkpoint c = SavedModels.resolve(checkpoint);
        OutputGuard.file(out, "--out", common.force, ModeCliSupport.existing(c.dir(), tokens));
        try (Backend be = common.openBackend();
                LlamaModel model = SavedModels.load(be, c)) {
            int v = model.config().vocabSize();
            for (int id : flat) {
                if (id < 0 || id >= v)
                    throw new IllegalArgumentException(
                            tokens + ": token id " + id + " is outside the vocabulary [0, " + v + ")");
            }
            if (t > model.config().maxSeqLen()) {
                throw new IllegalArgumentException(
                        tokens + ": sequences of " + t + " inputs exceed max_position_embeddings "
                                + model.config().maxSeqLen());
            }
            BatchGradients g = BatchGradients.compute(model, flat, b, t);
            Map<String, String> meta = new LinkedHashMap<>();
            meta.put("format", "mode-grads");
            meta.put("loss", Double.toString(g.loss()));
            meta.put("checkpoint", c.dir().toString());
            meta.put("backend", be.name());
            if (out.getParent() != null) Files.createDirectories(out.getParent());
            SafeTensors.write(out, g.tensors(), meta, SafeDType.F32);
            System.out.printf(
                    "loss %.6f over %d tokens (%d x %d); wrote logits and %d gradients to %s%n",
                    g.loss(), b * t, b, t, model.parameters().size(), out);
        }
        return 0;
    }

    /** Rows of token ids from a text or JSON file; all rows must have the same length >= 2. */
    /** A token id written as a plain integer; anything else ({@code 1.5}, {@code 1e3}, {@code "7"}) is an error. */
    private static int tokenId(String s) {
        if (!s.matches("-?[0-9]+"))
            throw new IllegalArgumentException("'" + s + "' is not a token id (a whole number)");
        try {
            return Integer.parseInt(s);
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("token id " + s + " is out of range");
        }
    }

    static int[][] readTokens(Path file) throws IOException {
        if (!Files.isRegularFile(file)) throw new IllegalArgumentException("tokens file not found: " + file);
        String text;
        try {
            text = Files.readString(file, StandardCharsets.UTF_8).strip();
        } catch (java.nio.charset.CharacterCodingException e) {
            throw new IllegalArgumentException(
                    file + ": not UTF-8 text; a token file holds integers as text, one sequence per line");
        }
        List<int[]> rows = new ArrayList<>();
        try {
            if (text.startsWith("[")) {
                for (JsonElement row : JsonParser.parseString(text).getAsJsonArray()) {
                    JsonArray a = row.getAsJsonArray();
                    int[] r = new int[a.size()];
                    for (int i = 0; i < r.length; i++) r[i] = tokenId(a.get(i).toString());
                    rows.add(r);
                }
            } else {
                for (String line : text.split("\n")) {
                    if (line.isBlank()) continue;
                    String[] parts = line.strip().split("\\s+");
                    int[] r = new int[parts.length];
                    for (int i = 0; i < r.length; i++) r[i] = tokenId(parts[i]);
                    rows.add(r);
                }
            }
        } catch (RuntimeException e) {
            throw new IllegalArgumentException(
                    file + ": not a token file (one sequence of integers per line, or a JSON array of arrays): "
                            + JsonMessages.of(e));
        }
        if (rows.isEmpty()) throw new IllegalArgumentException(file + ": holds no token sequences");
        int len = rows.get(0).length;
        if (len < 2)
            throw new IllegalArgumentException(file + ": sequences need at least 2 tokens (T inputs + 1 target)");
        for (int i = 1; i < rows.size(); i++) {
            if (rows.get(i).length != len) {
                throw new IllegalArgumentException(file + ": sequence " + (i + 1) + " has " + rows.get(i).length
                        + " tokens but the first has " + len + "; all must be equal");
            }
        }
        return rows.toArray(new int[0][]);
    }
}
