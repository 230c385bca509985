package ai.mode.model.io;

import ai.mode.model.LlamaConfig;
import com.google.gson.Gson;
import com.google.gson.GsonBuilder;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Arrays;
import java.util.Collections;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalLong;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.stream.Stream;
import java.util.zip.CRC32C;

/**
 * A checkpoint directory: Hugging Face-compatible backbone (config.json, model.safetensors, tokenizer.json) plus our
 * own files (trainer_state.safetensors, experts.safetensors, extras) and a manifest recording every file's size and
 * CRC32C. The directory is assembled under a temporary name and renamed into place, so it either exists complete or not
 * at all.
 *
 * <pre>{@code
 * // write (atomic: the directory appears complete or not at all)
 * Checkpoint.builder()
 *     .config(llamaConfig)                 // config.json
 *     .model(weights)                      // model.safetensors, HF names (see TensorNames), F32 by default
 *     .tokenizer(tokenizerJsonBytes)       // tokenizer.json
 *     .trainerState(state)                 // trainer_state.safetensors (moments, step, RNG/data state)
 *     .experts(modeParams, Map.of("mode_config", json))   // experts.safetensors
 *     .writeTo(Path.of("runs/x/step-00000100"));
 *
 * // read (sizes checked against the manifest on open; CRC32C of a file checked when its tensors are read;
 * // tensors validated against config.json and required finite)
 * Checkpoint c = Checkpoint.open(Path.of("runs/x/step-00000100"));
 * LlamaConfig cfg = c.config();
 * NamedTensors w = c.readModel();
 * Optional<TrainerState> s = c.readTrainerState();
 * }</pre>
 *
 * A directory written by Hugging Face tools (no manifest) opens too; {@link #readModel} then also reads sharded
 * weights. Exact resume needs the model stored as F32 (the default).
 */
public final class Checkpoint {

    public static final String CONFIG = "config.json";
    public static final String MODEL = "model.safetensors";
    public static final String TOKENIZER = "tokenizer.json";
    public static final String TRAINER_STATE = TrainerState.FILE;
    public static final String EXPERTS = "experts.safetensors";
    /** Manifest: format, version, optional step, and size + CRC32C of every other file. */
    public static final String MANIFEST = "checkpoint.json";

    static final String MANIFEST_FORMAT = "mode-checkpoint";

    private static final Gson PRETTY =
            new GsonBuilder().setPrettyPrinting().disableHtmlEscaping().create();

    private final Path dir;
    private final OptionalLong step;
    private final Map<String, FileRecord> manifest; // empty for a foreign (HF) directory
    private HfConfig config;
    private final Set<String> verified = ConcurrentHashMap.newKeySet(); // CRC32C checked

    /** Size and checksum of one file as recorded in the manifest. */
    record FileRecord(long bytes, String crc32c) {}

    private Checkpoint(Path dir, OptionalLong step, Map<String, FileRecord> manifest) {
        this.dir = dir;
        this.step = step;
        this.manifest = manifest;
    }

    // ------------------------------------------------------------------------------------------------- writing

    /** A new, empty builder. */
    public static Builder builder() {
        return new Builder();
    }

    /** Test hook called after each file is complete inside the temporary directory. */
    @FunctionalInterface
    interface WriteHook {
        void afterFile(String name) throws IOException;
    }

    /** Collects a checkpoint's contents; {@link #writeTo} writes them. Reusable; not thread-safe. */
    public static final class Builder {
        private HfConfig config;
        private NamedTensors model;
        private SafeDType modelDType = SafeDType.F32;
        private byte[] tokenizerBytes;
        private Path tokenizerFile;
        private TrainerState trainerState;
        private NamedTensors experts;
        private Map<String, String> expertsMetadata = Map.of();
        private final LinkedHashMap<String, byte[]> extraFiles = new LinkedHashMap<>();
        private Long step;
        private WriteHook hook = name -> {};

        private Builder() {}

        /** config.json from a model config (float32 unless the model is stored otherwise). */
        public Builder config(LlamaConfig c) {
            return config(HfConfig.of(c));
        }

        /** config.json, keeping the config's extra fields; torch_dtype is set from the model's storage dtype. */
        public Builder config(HfConfig c) {
            this.config = c;
            return this;
        }

        /** model.safetensors in float32 (bit-exact). Names and shapes must match the config when both are given. */
        public Builder model(NamedTensors weights) {
            return model(weights, SafeDType.F32);
        }

        /** model.safetensors stored as F32, F16 or BF16 (the latter two round; resume is then not exact). */
        public Builder model(NamedTensors weights, SafeDType storage) {
            if (!storage.isWritable()) throw new IllegalArgumentException("cannot store the model as " + storage);
            this.model = weights;
            this.modelDType = storage;
            return this;
        }

        /** tokenizer.json from bytes. */
        public Builder tokenizer(byte[] json) {
            this.tokenizerBytes = json.clone();
            this.tokenizerFile = null;
            return this;
        }

        /** tokenizer.json copied from a file. */
        public Builder tokenizer(Path file) {
            this.tokenizerFile = file;
            this.tokenizerBytes = null;
            return this;
        }

        /** trainer_state.safetensors; also sets the manifest step unless {@link #step} was called. */
        public Builder trainerState(TrainerState s) {
            this.trainerState = s;
            return this;
        }

        /** experts.safetensors (MoDE expert and gate parameters, F32) with a metadata string map. */
        public Builder experts(NamedTensors params, Map<String, String> metadata) {
            this.experts = params;
            this.expertsMetadata = Map.copyOf(metadata);
            return this;
        }

        /** Any other small file (e.g. a MoDE config or metrics snapshot), by plain file name. */
        public Builder file(String name, byte[] content) {
            checkPlainName(name);
            if (Arrays.asList(CONFIG, MODEL, TOKENIZER, TRAINER_STATE, EXPERTS, MANIFEST)
                    .contains(name)) {
                throw new IllegalArgumentException(name + " is written by its own builder method");
            }
            extraFiles.put(name, content.clone());
            return this;
        }

        /** The step recorded in the manifest. */
        public Builder step(long step) {
            this.step = step;
            return this;
        }

        Builder hook(WriteHook h) {
            this.hook = h;
            return this;
        }

        /**
         * Writes the checkpoint to {@code dir} atomically: files go into a temporary sibling directory, are forced to
         * disk, and the directory is renamed to {@code dir}. An existing {@code dir} is replaced (it is moved aside
         * first and deleted after). On failure nothing under the name {@code dir} changes.
         */
        public Path writeTo(Path dir) throws IOException {
            validate();
            Path target = dir.toAbsolutePath().normalize();
            requireReplaceable(target);
            AtomicFiles.writeDirectory(target, temp -> {
                LinkedHashMap<String, FileRecord> records = new LinkedHashMap<>();
                if (config != null) {
                    HfConfig c = model != null ? config.withTorchDtype(modelDType.torchName()) : config;
                    put(temp, CONFIG, c.toJsonString().getBytes(StandardCharsets.UTF_8), records);
                }
                if (model != null) {
                    putTensors(temp, MODEL, model, Map.of("format", "pt"), modelDType, records);
                }
                if (experts != null) {
                    putTensors(temp, EXPERTS, experts, expertsMetadata, SafeDType.F32, records);
                }
                if (tokenizerBytes != null || tokenizerFile != null) {
                    byte[] bytes = tokenizerBytes != null ? tokenizerBytes : Files.readAllBytes(tokenizerFile);
                    put(temp, TOKENIZER, bytes, records);
                }
                if (trainerState != null) {
                    trainerState.write(temp.resolve(TRAINER_STATE));
                    records.put(TRAINER_STATE, record(temp.resolve(TRAINER_STATE)));
                    hook.afterFile(TRAINER_STATE);
                }
                for (Map.Entry<String, byte[]> e : extraFiles.entrySet()) put(temp, e.getKey(), e.getValue(), records);
                Long manifestStep =
                        step != null ? step : trainerState != null ? Long.valueOf(trainerState.step()) : null;
                writeForced(
                        temp.resolve(MANIFEST),
                        manifestJson(manifestStep, records).getBytes(StandardCharsets.UTF_8));
                hook.afterFile(MANIFEST);
            });
            return target;
        }

        /** Refuses to replace anything but a checkpoint this package wrote (or an empty directory). */
        private static void requireReplaceable(Path target) throws IOException {
            if (!Files.exists(target, LinkOption.NOFOLLOW_LINKS)) return;
            boolean replaceable = Files.isDirectory(target, LinkOption.NOFOLLOW_LINKS)
                    && (Files.isRegularFile(target.resolve(MANIFEST)) || isEmptyDirectory(target));
            if (!replaceable) {
                throw new FileAlreadyExistsException(
                        target.toString(),
                        null,
                        "exists and is not a checkpoint written by MoDE-J; choose another path or remove it");
            }
        }

        private static boolean isEmptyDirectory(Path dir) throws IOException {
            try (Stream<Path> s = Files.list(dir)) {
                return s.findAny().isEmpty();
            }
        }

        private void validate() {
            if (config != null && model != null) {
                String problem = HfImport.shapeProblem(model, config.model());
                if (problem != null) throw new IllegalArgumentException("model does not match its config: " + problem);
            }
            refuseNonFinite(MODEL, model == null ? Optional.empty() : model.firstNonFinite(""));
            refuseNonFinite(EXPERTS, experts == null ? Optional.empty() : experts.firstNonFinite(""));
            refuseNonFinite(TRAINER_STATE, trainerState == null ? Optional.empty() : trainerState.firstNonFinite());
            if (config == null
                    && model == null
                    && experts == null
                    && trainerState == null
                    && extraFiles.isEmpty()
                    && tokenizerBytes == null
                    && tokenizerFile == null) {
                throw new IllegalArgumentException("checkpoint is empty: give at least one of config, model, experts, "
                        + "trainer state, tokenizer or file");
            }
        }

        private static void refuseNonFinite(String file, Optional<String> problem) {
            if (problem.isPresent()) throw new NonFiniteTensorException(file, problem.get());
        }

        private void put(Path temp, String name, byte[] bytes, Map<String, FileRecord> records) throws IOException {
            writeForced(temp.resolve(name), bytes);
            records.put(name, record(temp.resolve(name)));
            hook.afterFile(name);
        }

        private void putTensors(
                Path temp,
                String name,
                NamedTensors t,
                Map<String, String> meta,
                SafeDType storage,
                Map<String, FileRecord> records)
                throws IOException {
            Path file = temp.resolve(name);
            try (FileChannel ch = FileChannel.open(file, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
                SafeTensors.writeTo(ch, t, meta, storage);
                ch.force(true);
            }
            records.put(name, record(file));
            hook.afterFile(name);
        }
    }

    private static void writeForced(Path file, byte[] bytes) throws IOException {
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
            AtomicFiles.writeFully(ch, ByteBuffer.wrap(bytes));
            ch.force(true);
        }
    }

    private static String manifestJson(Long step, Map<String, FileRecord> records) {
        JsonObject o = new JsonObject();
        o.addProperty("format", MANIFEST_FORMAT);
        o.addProperty("version", 1);
        if (step != null) o.addProperty("step", step);
        JsonObject files = new JsonObject();
        for (Map.Entry<String, FileRecord> e : records.entrySet()) {
            JsonObject f = new JsonObject();
            f.addProperty("bytes", e.getValue().bytes());
            f.addProperty("crc32c", e.getValue().crc32c());
            files.add(e.getKey(), f);
        }
        o.add("files", files);
        return PRETTY.toJson(o) + "\n";
    }

    private static FileRecord record(Path file) throws IOException {
        return new FileRecord(Files.size(file), crc32c(file));
    }

    /** CRC32C of a file's content as 8 lowercase hex digits. */
    static String crc32c(Path file) throws IOException {
        CRC32C crc = new CRC32C();
        ByteBuffer buf = ByteBuffer.allocateDirect(1 << 20);
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            while (ch.read(buf.clear()) > 0) crc.update(buf.flip());
        }
        return HexFormat.of().toHexDigits((int) crc.getValue());
    }

    private static void checkPlainName(String name) {
        if (name == null
                || name.isEmpty()
                || name.equals(".")
                || name.equals("..")
                || name.contains("/")
                || name.contains("\\")
                || name.startsWith(AtomicFiles.TEMP_PREFIX)
                || name.chars().anyMatch(Character::isISOControl)) {
            throw new IllegalArgumentException(
                    "invalid checkpoint file name " + SafeTensorsReader.quote(String.valueOf(name))
                            + ": use a plain file name without path separators");
        }
    }

    // ------------------------------------------------------------------------------------------------- reading

    /**
     * Opens a checkpoint directory. With a manifest, every listed file must exist with the recorded size (a
     * truncated or missing file is reported here); without one (a Hugging Face directory), config.json or
     * model.safetensors must exist.
     */
    public static Checkpoint open(Path dir) throws IOException {
        if (!Files.isDirectory(dir)) {
            throw new CheckpointFormatException(
                    dir, Files.exists(dir) ? "not a directory" : "checkpoint directory not found");
        }
        Path manifestFile = dir.resolve(MANIFEST);
        if (!Files.exists(manifestFile)) {
            if (!Files.exists(dir.resolve(CONFIG)) && !Files.exists(dir.resolve(MODEL))) {
                throw new CheckpointFormatException(
                        dir, "not a checkpoint directory (no " + MANIFEST + ", " + CONFIG + " or " + MODEL + ")");
            }
            return new Checkpoint(dir, OptionalLong.empty(), Map.of());
        }
        JsonObject m = parseManifest(manifestFile);
        LinkedHashMap<String, FileRecord> records = new LinkedHashMap<>();
        OptionalLong step = OptionalLong.empty();
        try {
            if (!MANIFEST_FORMAT.equals(stringOrNull(m, "format"))
                    || m.get("version").getAsInt() != 1) {
                throw new CheckpointFormatException(manifestFile, "not a version-1 " + MANIFEST_FORMAT + " manifest");
            }
            if (m.has("step")) {
                long s = m.get("step").getAsBigDecimal().longValueExact();
                if (s < 0) throw new CheckpointFormatException(manifestFile, "negative step " + s);
                step = OptionalLong.of(s);
            }
            for (Map.Entry<String, JsonElement> e : m.getAsJsonObject("files").entrySet()) {
                JsonObject f = e.getValue().getAsJsonObject();
                String name = e.getKey();
                try {
                    checkPlainName(name);
                } catch (IllegalArgumentException bad) {
                    throw new CheckpointFormatException(manifestFile, bad.getMessage());
                }
                records.put(
                        name,
                        new FileRecord(
                                f.get("bytes").getAsBigDecimal().longValueExact(),
                                f.get("crc32c").getAsString()));
            }
        } catch (CheckpointFormatException e) {
            throw e;
        } catch (RuntimeException e) {
            throw new CheckpointFormatException(
                    manifestFile,
                    "malformed manifest (" + CheckpointFormatException.firstLine(e) + "); the checkpoint is damaged",
                    e);
        }
        for (Map.Entry<String, FileRecord> e : records.entrySet()) {
            Path f = dir.resolve(e.getKey());
            if (!Files.isRegularFile(f)) {
                throw new CheckpointFormatException(
                        f, "missing, but listed in " + MANIFEST + "; the checkpoint is incomplete");
            }
            long size = Files.size(f);
            if (size != e.getValue().bytes()) {
                throw new CheckpointFormatException(
                        f,
                        "size " + size + " bytes differs from the "
                                + e.getValue().bytes() + " recorded in " + MANIFEST
                                + "; the file was truncated or modified: " + remedy(dir));
            }
        }
        return new Checkpoint(dir, step, Collections.unmodifiableMap(records));
    }

    private static JsonObject parseManifest(Path file) throws IOException {
        try {
            JsonElement e = StrictJson.parse(Files.readString(file, StandardCharsets.UTF_8));
            if (!e.isJsonObject()) throw new IllegalStateException("not a JSON object");
            return e.getAsJsonObject();
        } catch (IOException | RuntimeException e) {
            if (e instanceof java.nio.file.NoSuchFileException) throw e;
            throw new CheckpointFormatException(
                    file,
                    "not valid JSON (" + CheckpointFormatException.firstLine(e) + "); the checkpoint is damaged",
                    e);
        }
    }

    private static String stringOrNull(JsonObject o, String key) {
        JsonElement e = o.get(key);
        return e != null && e.isJsonPrimitive() ? e.getAsString() : null;
    }

    /** The directory. */
    public Path dir() {
        return dir;
    }

    /** The step recorded in the manifest, if any. */
    public OptionalLong step() {
        return step;
    }

    /** Whether the directory holds a file of this name. */
    public boolean has(String fileName) {
        return Files.isRegularFile(dir.resolve(fileName));
    }

    /** Whether the checkpoint has a manifest (written by this package rather than another tool). */
    public boolean hasManifest() {
        return !manifest.isEmpty();
    }

    /** config.json, read and validated once. */
    public synchronized HfConfig hfConfig() throws IOException {
        if (config == null) config = HfConfig.read(dir.resolve(CONFIG));
        return config;
    }

    /** The model shape from config.json. */
    public LlamaConfig config() throws IOException {
        return hfConfig().model();
    }

    /** The backbone weights as float32, every tensor checked against config.json (see {@link HfImport}). */
    public NamedTensors readModel() throws IOException {
        verifyChecksum(MODEL);
        NamedTensors w = HfImport.loadWeights(dir, config());
        requireFinite(MODEL, w.firstNonFinite(""));
        return w;
    }

    /** The trainer state, if the checkpoint has one (checksum verified, moments finite). */
    public Optional<TrainerState> readTrainerState() throws IOException {
        if (!has(TRAINER_STATE)) return Optional.empty();
        verifyChecksum(TRAINER_STATE);
        TrainerState s = TrainerState.read(dir.resolve(TRAINER_STATE));
        requireFinite(TRAINER_STATE, s.firstNonFinite());
        return Optional.of(s);
    }

    /** The MoDE expert/gate parameters, if the checkpoint has them (checksum verified, values finite). */
    public Optional<NamedTensors> readExperts() throws IOException {
        if (!has(EXPERTS)) return Optional.empty();
        verifyChecksum(EXPERTS);
        NamedTensors e = SafeTensors.read(dir.resolve(EXPERTS));
        requireFinite(EXPERTS, e.firstNonFinite(""));
        return Optional.of(e);
    }

    private void requireFinite(String file, Optional<String> problem) throws CheckpointFormatException {
        if (problem.isPresent()) {
            throw new CheckpointFormatException(
                    dir.resolve(file),
                    problem.get() + "; the checkpoint was saved from a diverged run: " + remedy(dir));
        }
    }

    /** The {@code __metadata__} of experts.safetensors (empty map if there is no such file). */
    public Map<String, String> expertsMetadata() throws IOException {
        if (!has(EXPERTS)) return Map.of();
        try (SafeTensorsReader r = SafeTensorsReader.open(dir.resolve(EXPERTS))) {
            return r.metadata();
        }
    }

    /** tokenizer.json bytes, if present. */
    public Optional<byte[]> readTokenizer() throws IOException {
        return has(TOKENIZER) ? Optional.of(Files.readAllBytes(dir.resolve(TOKENIZER))) : Optional.empty();
    }

    /** Any file of the checkpoint by plain name. */
    public byte[] readFile(String name) throws IOException {
        checkPlainName(name);
        Path f = dir.resolve(name);
        if (!Files.isRegularFile(f)) throw new CheckpointFormatException(f, "not found in checkpoint");
        return Files.readAllBytes(f);
    }

    /**
     * Recomputes every file's CRC32C and compares it with the manifest; detects silent corruption that format
     * validation cannot (a flipped bit inside tensor data). A directory without a manifest passes trivially.
     */
    public void verifyChecksums() throws IOException {
        for (String name : manifest.keySet()) verifyChecksum(name);
    }

    /**
     * Checks one file's CRC32C against the manifest, once per instance (the readers call it before loading tensors).
     * A file the manifest does not list (a Hugging Face directory) passes.
     */
    private void verifyChecksum(String name) throws IOException {
        FileRecord r = manifest.get(name);
        if (r == null || verified.contains(name)) return;
        Path f = dir.resolve(name);
        String actual = crc32c(f);
        if (!actual.equals(r.crc32c())) {
            throw new CheckpointFormatException(
                    f,
                    "CRC32C " + actual + " differs from " + r.crc32c() + " recorded in " + MANIFEST
                            + "; the file is corrupted: " + remedy(dir));
        }
        verified.add(name);
    }

    /** What to do about a damaged checkpoint: use the newest earlier step-N checkpoint beside it, if there is one. */
    private static String remedy(Path dir) {
        Path abs = dir.toAbsolutePath().normalize();
        return CheckpointStore.earlierThan(abs)
                .map(p ->
                        "use the earlier checkpoint " + p + " (to resume from it, move " + abs + " out of its folder)")
                .orElse("no earlier checkpoint is beside it; restore the directory from a copy or train again");
    }

    @Override
    public String toString() {
        return "Checkpoint[" + dir + "]";
    }
}
