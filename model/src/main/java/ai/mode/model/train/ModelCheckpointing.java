package ai.mode.model.train;

import ai.mode.model.io.Checkpoint;
import ai.mode.model.io.CheckpointStore;
import ai.mode.model.io.TrainerState;
import ai.mode.model.nn.CausalLm;
import ai.mode.model.nn.Parameter;
import com.google.gson.JsonElement;
import com.google.gson.JsonNull;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;

/**
 * Checkpoints of a whole model (backbone pretraining or full fine-tuning) in the io helper's format: HF-compatible
 * config/model/tokenizer plus trainer_state.safetensors, under a CheckpointStore.
 *
 * <p>Saves every model parameter ({@code model.safetensors}), {@code config.json}, the tokenizer and the
 * optimizer moments + {@link TrainProgress} ({@code trainer_state.safetensors}) into
 * {@code root/step-NNNNNNNN/}, keeping the newest {@code keepLast}.
 */
public final class ModelCheckpointing implements Checkpointing {
    private final CheckpointStore store;
    private final Path tokenizerJson;
    private Path lastSaved;

    /**
     * @param root          checkpoint folder (e.g. {@code runs/base/checkpoints})
     * @param keepLast      how many step directories to keep (0 = all)
     * @param tokenizerJson the tokenizer.json to copy into each checkpoint, or null
     */
    public ModelCheckpointing(Path root, int keepLast, Path tokenizerJson) {
        this.store = new CheckpointStore(root, keepLast);
        this.tokenizerJson = tokenizerJson;
    }

    public CheckpointStore store() {
        return store;
    }

    @Override
    public Path save(CausalLm model, AdamW optimizer, TrainProgress progress) throws IOException {
        Checkpoint.Builder b = Checkpoint.builder()
                .config(model.config())
                .model(Weights.export(model.parameters()))
                .trainerState(new TrainerState(
                        progress.step(),
                        Weights.exportTensors(optimizer.firstMoments()),
                        Weights.exportTensors(optimizer.secondMoments()),
                        progressJson(progress).toString()));
        if (tokenizerJson != null) b.tokenizer(tokenizerJson);
        lastSaved = store.save(progress.step(), b);
        return lastSaved;
    }

    @Override
    public Optional<TrainProgress> restoreLatest(CausalLm model, AdamW optimizer) throws IOException {
        Optional<Checkpoint> c = store.latest();
        if (c.isEmpty()) return Optional.empty();
        Checkpoint ck = c.get();
        if (!ck.config().equals(model.config())) {
            throw new IllegalArgumentException("checkpoint " + ck.dir() + " has model config " + ck.config()
                    + " but this run builds " + model.config() + "; resume with the same model options");
        }
        Weights.load(model.parameters(), ck.readModel(), false);
        TrainerState ts = ck.readTrainerState()
                .orElseThrow(() -> new IllegalArgumentException(
                        "checkpoint " + ck.dir() + " has no trainer state, so training cannot resume from it"));
        List<Parameter> trainable = model.trainableParameters();
        ts.requireMatches(Weights.export(trainable), ck.dir());
        optimizer.restore(
                Math.toIntExact(ts.step()),
                trainable,
                ts.adamM().asDataMap(),
                ts.adamV().asDataMap());
        lastSaved = ck.dir();
        return Optional.of(parseProgress(Math.toIntExact(ts.step()), ts.state()));
    }

    @Override
    public Optional<Path> latest() {
        return Optional.ofNullable(lastSaved);
    }

    static JsonObject progressJson(TrainProgress p) {
        JsonObject o = new JsonObject();
        o.addProperty("seed", p.seed());
        o.add("data", p.data() == null ? JsonNull.INSTANCE : p.data());
        o.addProperty("tokens_seen", p.tokensSeen());
        if (Double.isFinite(p.lastValLoss())) o.addProperty("last_val_loss", p.lastValLoss());
        if (p.numerics() != null) o.addProperty("numerics", p.numerics());
        return o;
    }

    static TrainProgress parseProgress(int step, JsonObject o) {
        JsonElement data = o.has("data") ? o.get("data") : JsonNull.INSTANCE;
        double val = o.has("last_val_loss") ? o.get("last_val_loss").getAsDouble() : Double.NaN;
        long seed = o.has("seed") ? o.get("seed").getAsLong() : 0;
        long tokens = o.has("tokens_seen") ? o.get("tokens_seen").getAsLong() : 0;
        String numerics = o.has("numerics") ? o.get("numerics").getAsString() : null;
        return new TrainProgress(step, seed, JsonParser.parseString(data.toString()), tokens, val, numerics);
    }
}
