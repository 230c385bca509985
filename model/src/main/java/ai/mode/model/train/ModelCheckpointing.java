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
import java.util.Map;
import java.util.Optional;
import java.util.function.Consumer;

/**
 * Checkpoints of a training run in the io helper's format, under a CheckpointStore, in one of two kinds:
 *
 * <ul>
 *   <li>{@linkplain #ModelCheckpointing(Path, int, Path) the whole model} (backbone pretraining): every parameter
 *       ({@code model.safetensors}), {@code config.json} and the tokenizer, a Hugging Face model directory as it
 *       stands;
 *   <li>{@linkplain #trainableOnly the trainable parameters} (the MoDE stages and baselines, over a frozen backbone
 *       that stays where it is): only what the run changes, in {@code experts.safetensors}; the run rebuilds the rest
 *       as it did when it started (the same backbone, expert files and seed), and the checkpoint's recorded settings
 *       ({@link RunSettings}) make sure of that.
 * </ul>
 *
 * Both add the optimizer moments + {@link TrainProgress} ({@code trainer_state.safetensors}) and go into
 * {@code root/step-NNNNNNNN/}, keeping the newest {@code keepLast}.
 */
public final class ModelCheckpointing implements Checkpointing {
    /** {@code format} in the metadata of a trainable-only checkpoint's {@code experts.safetensors}. */
    static final String TRAINABLE_FORMAT = "mode-trainable-parameters/1";

    private final CheckpointStore store;
    private final Path tokenizerJson;
    private final boolean wholeModel;
    private Path lastSaved;

    /**
     * Whole-model checkpoints.
     *
     * @param root          checkpoint folder (e.g. {@code runs/base/checkpoints})
     * @param keepLast      how many step directories to keep (0 = all)
     * @param tokenizerJson the tokenizer.json to copy into each checkpoint, or null
     */
    public ModelCheckpointing(Path root, int keepLast, Path tokenizerJson) {
        this(root, keepLast, tokenizerJson, true);
    }

    private ModelCheckpointing(Path root, int keepLast, Path tokenizerJson, boolean wholeModel) {
        this.store = new CheckpointStore(root, keepLast);
        this.tokenizerJson = tokenizerJson;
        this.wholeModel = wholeModel;
    }

    /** Checkpoints of the trainable parameters only (a run over a frozen backbone). */
    public static ModelCheckpointing trainableOnly(Path root, int keepLast) {
        return new ModelCheckpointing(root, keepLast, null, false);
    }

    public CheckpointStore store() {
        return store;
    }

    @Override
    public Path save(CausalLm model, AdamW optimizer, TrainProgress progress) throws IOException {
        Checkpoint.Builder b = Checkpoint.builder()
                .trainerState(new TrainerState(
                        progress.step(),
                        Weights.exportTensors(optimizer.firstMoments()),
                        Weights.exportTensors(optimizer.secondMoments()),
                        progressJson(progress).toString()));
        if (wholeModel) {
            b.config(model.config()).model(Weights.export(model.parameters()));
            if (tokenizerJson != null) b.tokenizer(tokenizerJson);
        } else {
            b.experts(Weights.export(model.trainableParameters()), Map.of("format", TRAINABLE_FORMAT));
        }
        lastSaved = store.save(progress.step(), b);
        return lastSaved;
    }

    @Override
    public Optional<TrainProgress> restoreLatest(CausalLm model, AdamW optimizer, Consumer<TrainProgress> beforeLoading)
            throws IOException {
        Optional<Checkpoint> c = store.latest();
        if (c.isEmpty()) return Optional.empty();
        Checkpoint ck = c.get();
        TrainerState ts = ck.readTrainerState()
                .orElseThrow(() -> new IllegalArgumentException(
                        "checkpoint " + ck.dir() + " has no trainer state, so training cannot resume from it"));
        TrainProgress progress = parseProgress(Math.toIntExact(ts.step()), ts.state());
        beforeLoading.accept(progress);
        List<Parameter> trainable = model.trainableParameters();
        if (wholeModel) {
            if (!ck.config().equals(model.config())) {
                throw new IllegalArgumentException("checkpoint " + ck.dir() + " has model config " + ck.config()
                        + " but this run builds " + model.config() + "; resume with the same model options");
            }
            Weights.load(model.parameters(), ck.readModel(), false);
        } else {
            if (!TRAINABLE_FORMAT.equals(ck.expertsMetadata().get("format")))
                throw new IllegalArgumentException("checkpoint " + ck.dir() + " holds no trainable parameters ("
                        + Checkpoint.EXPERTS + " of format " + TRAINABLE_FORMAT
                        + "); it was not written by this kind of run: choose another --out");
            Weights.load(trainable, ck.readExperts().orElseThrow(), false);
        }
        ts.requireMatches(Weights.export(trainable), ck.dir());
        optimizer.restore(
                Math.toIntExact(ts.step()),
                trainable,
                ts.adamM().asDataMap(),
                ts.adamV().asDataMap());
        lastSaved = ck.dir();
        return Optional.of(progress);
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
        if (p.settings() != null) o.add("settings", p.settings());
        return o;
    }

    static TrainProgress parseProgress(int step, JsonObject o) {
        JsonElement data = o.has("data") ? o.get("data") : JsonNull.INSTANCE;
        double val = o.has("last_val_loss") ? o.get("last_val_loss").getAsDouble() : Double.NaN;
        long seed = o.has("seed") ? o.get("seed").getAsLong() : 0;
        long tokens = o.has("tokens_seen") ? o.get("tokens_seen").getAsLong() : 0;
        String numerics = o.has("numerics") ? o.get("numerics").getAsString() : null;
        JsonObject settings =
                o.has("settings") && o.get("settings").isJsonObject() ? o.getAsJsonObject("settings") : null;
        return new TrainProgress(step, seed, JsonParser.parseString(data.toString()), tokens, val, numerics, settings);
    }
}
