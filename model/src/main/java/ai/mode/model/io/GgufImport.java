package ai.mode.model.io;

import ai.mode.model.LlamaConfig;
import ai.mode.model.RopeScaling;
import ai.mode.model.io.TensorNames.LayerTensor;
import ai.mode.model.text.StrictUtf8;
import ai.mode.model.tokenizer.SentencePieceBpe;
import ai.mode.runtime.RopeFrequencies;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.math.BigDecimal;
import java.math.MathContext;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Reads a Llama model from a GGUF file (the llama.cpp format, versions 2 and 3): the metadata becomes the config, the
 * tensors are dequantized to float32 (F32, F16, BF16, Q8_0 and Q4_0) under Hugging Face names, the q and k rows that
 * llama.cpp's converter permuted to interleaved rotary pairs are put back into Hugging Face's halves, and a
 * SentencePiece ("llama") vocabulary in the metadata becomes a {@code tokenizer.json}.
 *
 * <p>Everything is checked before it is used (magic, version, every length, count, type and tensor range against the
 * file size) and every problem is a one-line {@link CheckpointFormatException} naming the file, the key or tensor and
 * the byte offset where it applies.
 */
public final class GgufImport {

    private GgufImport() {}

    /** The imported model, and its tokenizer's {@code tokenizer.json} (null with a reason when none was converted). */
    public record Result(HfImport.Model model, byte[] tokenizerJson, String tokenizerNote) {}

    private static final int MAGIC = 0x46554747; // "GGUF"
    private static final ValueLayout.OfInt I32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfLong I64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfShort I16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfDouble F64 =
            ValueLayout.JAVA_DOUBLE_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    /** ggml tensor types this reader dequantizes: id, name, elements per block, bytes per block. */
    private enum GgmlType {
        F32(0, 1, 4),
        F16(1, 1, 2),
        Q4_0(2, 32, 18),
        Q8_0(8, 32, 34),
        BF16(30, 1, 2);
        final int id, block, bytes;

        GgmlType(int id, int block, int bytes) {
            this.id = id;
            this.block = block;
            this.bytes = bytes;
        }

        static GgmlType of(int id) {
            for (GgmlType t : values()) if (t.id == id) return t;
            return null;
        }
    }

    private static final String[] KNOWN_TYPE_NAMES = {
        "F32", "F16", "Q4_0", "Q4_1", null, null, "Q5_0", "Q5_1", "Q8_0", "Q8_1", "Q2_K", "Q3_K", "Q4_K", "Q5_K",
        "Q6_K", "Q8_K", "IQ2_XXS", "IQ2_XS", "IQ3_XXS", "IQ1_S", "IQ4_NL", "IQ3_S", "IQ2_S", "IQ4_XS", "I8", "I16",
        "I32", "I64", "F64", "IQ1_M", "BF16"
    };

    private record TensorEntry(String name, long[] ne, int type, long offset, long infoAt) {}

    /** The original context of Meta's Llama 3.1/3.2, for llama3 scaling from a file that does not record it. */
    private static final int LLAMA3_CONTEXT = 8192;

    /** Reads {@code file}. */
    public static Result load(Path file) throws IOException {
        try (Arena arena = Arena.ofConfined();
                FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            MemorySegment seg = ch.map(FileChannel.MapMode.READ_ONLY, 0, ch.size(), arena);
            return new Parser(file, seg).parse();
        } catch (NoSuchFileException e) {
            throw new CheckpointFormatException(file, "not found");
        }
    }

    private static final class Parser {
        final Path file;
        final MemorySegment seg;
        long pos;

        Parser(Path file, MemorySegment seg) {
            this.file = file;
            this.seg = seg;
        }

        CheckpointFormatException fail(String message) {
            return new CheckpointFormatException(file, message);
        }

        void need(long n, String what) throws CheckpointFormatException {
            if (n < 0 || pos + n > seg.byteSize() || pos + n < pos) {
                throw fail("offset " + pos + ": " + what + " needs " + n + " bytes but the file ends at "
                        + seg.byteSize() + "; the file is truncated or not GGUF");
            }
        }

        int i32(String what) throws CheckpointFormatException {
            need(4, what);
            int v = seg.get(I32, pos);
            pos += 4;
            return v;
        }

        long i64(String what) throws CheckpointFormatException {
            need(8, what);
            long v = seg.get(I64, pos);
            pos += 8;
            return v;
        }

        String string(String what) throws CheckpointFormatException {
            long at = pos;
            long len = i64(what + " length");
            need(len, what);
            byte[] b = seg.asSlice(pos, len).toArray(ValueLayout.JAVA_BYTE);
            pos += len;
            try {
                return StrictUtf8.decode(b);
            } catch (StrictUtf8.InvalidException e) {
                throw fail("offset " + at + ": " + what + " is not valid UTF-8");
            }
        }

        /** One metadata value of GGUF type {@code type}: Long, Double, Boolean, String or List. */
        Object value(int type, String key, boolean inArray) throws CheckpointFormatException {
            return switch (type) {
                case 0, 1 -> {
                    need(1, key);
                    long v = type == 0
                            ? seg.get(ValueLayout.JAVA_BYTE, pos) & 0xFF
                            : seg.get(ValueLayout.JAVA_BYTE, pos);
                    pos += 1;
                    yield v;
                }
                case 2, 3 -> {
                    need(2, key);
                    short s = seg.get(I16, pos);
                    pos += 2;
                    yield type == 2 ? (long) (s & 0xFFFF) : (long) s;
                }
                case 4 -> Integer.toUnsignedLong(i32(key));
                case 5 -> (long) i32(key);
                case 6 -> {
                    need(4, key);
                    float f = seg.get(F32, pos);
                    pos += 4;
                    yield (double) f;
                }
                case 7 -> {
                    need(1, key);
                    byte b = seg.get(ValueLayout.JAVA_BYTE, pos);
                    pos += 1;
                    if (b != 0 && b != 1) throw fail("offset " + (pos - 1) + ": " + key + " holds bool " + b);
                    yield b == 1;
                }
                case 8 -> string(key);
                case 9 -> {
                    if (inArray) throw fail("offset " + pos + ": " + key + " nests arrays, which is not supported");
                    int elementType = i32(key + " element type");
                    long count = i64(key + " element count");
                    if (count < 0 || count > seg.byteSize() - pos) {
                        throw fail("offset " + (pos - 8) + ": " + key + " claims " + count
                                + " elements, more than the file can hold");
                    }
                    List<Object> list = new ArrayList<>((int) Math.min(count, 1 << 20));
                    for (long i = 0; i < count; i++) list.add(value(elementType, key, true));
                    yield list;
                }
                case 10, 11 -> i64(key);
                case 12 -> {
                    need(8, key);
                    double d = seg.get(F64, pos);
                    pos += 8;
                    yield d;
                }
                default -> throw fail("offset " + (pos - 4) + ": metadata " + key + " has unknown value type " + type);
            };
        }

        Result parse() throws IOException {
            int magic = i32("magic");
            if (magic != MAGIC) {
                throw fail(String.format(
                        "does not start with the GGUF magic (found 0x%08X); it is not a GGUF file", magic));
            }
            int version = i32("version");
            if (version != 2 && version != 3) {
                throw fail("GGUF version " + version + " is not supported (versions 2 and 3 are)");
            }
            long tensorCount = i64("tensor count"), kvCount = i64("metadata count");
            if (tensorCount < 0 || tensorCount > seg.byteSize() / 24 || kvCount < 0 || kvCount > seg.byteSize() / 12) {
                throw fail("header claims " + tensorCount + " tensors and " + kvCount
                        + " metadata entries, more than the file can hold");
            }
            Map<String, Object> meta = new LinkedHashMap<>();
            for (long i = 0; i < kvCount; i++) {
                String key = string("metadata key " + i);
                int type = i32("metadata " + key + " type");
                meta.put(key, value(type, "metadata " + key, false));
            }
            long alignment = meta.containsKey("general.alignment") ? number(meta, "general.alignment") : 32;
            if (alignment <= 0 || (alignment & (alignment - 1)) != 0) {
                throw fail("general.alignment " + alignment + " is not a power of two");
            }
            List<TensorEntry> tensors = new ArrayList<>();
            for (long i = 0; i < tensorCount; i++) {
                long at = pos;
                String name = string("tensor " + i + " name");
                int dims = i32("tensor " + name + " dimension count");
                if (dims < 1 || dims > 4)
                    throw fail("offset " + at + ": tensor " + name + " has " + dims + " dimensions");
                long[] ne = new long[dims];
                for (int d = 0; d < dims; d++) {
                    ne[d] = i64("tensor " + name + " dimension");
                    if (ne[d] <= 0 || ne[d] > Integer.MAX_VALUE) {
                        throw fail("offset " + at + ": tensor " + name + " has dimension " + ne[d]);
                    }
                }
                int type = i32("tensor " + name + " type");
                long offset = i64("tensor " + name + " offset");
                tensors.add(new TensorEntry(name, ne, type, offset, at));
            }
            long dataStart = (pos + alignment - 1) / alignment * alignment;
            Map<String, TensorEntry> byName = new LinkedHashMap<>();
            for (TensorEntry t : tensors) {
                if (byName.put(t.name(), t) != null) throw fail("tensor " + t.name() + " is listed twice");
                GgmlType g = GgmlType.of(t.type());
                if (g == null) {
                    String name =
                            t.type() >= 0 && t.type() < KNOWN_TYPE_NAMES.length && KNOWN_TYPE_NAMES[t.type()] != null
                                    ? KNOWN_TYPE_NAMES[t.type()]
                                    : "unknown";
                    throw fail(
                            "tensor " + t.name() + " has ggml type " + t.type() + " (" + name + "), which is not"
                                    + " supported (F32, F16, BF16, Q8_0, Q4_0 are); requantize the model to Q8_0 with llama.cpp");
                }
                long n;
                try {
                    n = numel(t);
                } catch (ArithmeticException overflow) {
                    throw fail(
                            "tensor " + t.name() + " has dimensions " + Arrays.toString(t.ne()) + " too large to hold");
                }
                if (n % g.block != 0 || t.ne()[0] % g.block != 0) {
                    throw fail("tensor " + t.name() + " of type " + g + " has rows of " + t.ne()[0]
                            + " elements, not a multiple of its block of " + g.block);
                }
                long bytes = n / g.block * g.bytes;
                long start = dataStart + t.offset();
                if (t.offset() < 0
                        || t.offset() % alignment != 0
                        || start + bytes > seg.byteSize()
                        || start < dataStart) {
                    throw fail("tensor " + t.name() + " (info at offset " + t.infoAt() + ") has data at offset "
                            + t.offset() + " + " + bytes + " bytes past the data section start " + dataStart
                            + ", outside the file of " + seg.byteSize() + " bytes or misaligned; the file is truncated"
                            + " or damaged");
                }
            }
            LlamaConfig config = config(meta, byName, dataStart);
            NamedTensors weights = weights(config, byName, dataStart);
            byte[] tok = null;
            String note;
            Object model = meta.get("tokenizer.ggml.model");
            if ("llama".equals(model)) {
                tok = tokenizer(meta, config.vocabSize());
                note = "SentencePiece vocabulary of " + config.vocabSize() + " tokens";
            } else {
                note = model == null
                        ? "the file holds no tokenizer"
                        : "tokenizer.ggml.model '" + model + "' is not converted (only 'llama' is)";
            }
            return new Result(new HfImport.Model(HfConfig.of(config), weights), tok, note);
        }

        long number(Map<String, Object> meta, String key) throws CheckpointFormatException {
            Object v = meta.get(key);
            if (!(v instanceof Long l)) {
                throw fail(v == null ? "metadata " + key + " is missing" : "metadata " + key + " must be an integer");
            }
            return l;
        }

        int integer(Map<String, Object> meta, String key) throws CheckpointFormatException {
            long v = number(meta, key);
            if (v < 0 || v > Integer.MAX_VALUE) throw fail("metadata " + key + " is " + v + ", out of range");
            return (int) v;
        }

        double real(Map<String, Object> meta, String key, double absent) throws CheckpointFormatException {
            Object v = meta.get(key);
            if (v == null) return absent;
            if (v instanceof Double d) return d;
            if (v instanceof Long l) return l;
            throw fail("metadata " + key + " must be a number");
        }

        LlamaConfig config(Map<String, Object> meta, Map<String, TensorEntry> tensors, long dataStart)
                throws CheckpointFormatException {
            Object arch = meta.get("general.architecture");
            if (!"llama".equals(arch)) {
                throw fail("general.architecture is " + (arch == null ? "missing" : "'" + arch + "'")
                        + "; only 'llama' models are imported");
            }
            if (meta.containsKey("llama.expert_count") && number(meta, "llama.expert_count") > 0) {
                throw fail("llama.expert_count " + meta.get("llama.expert_count")
                        + ": mixture-of-experts GGUF models are not supported");
            }
            int dim = integer(meta, "llama.embedding_length");
            int heads = integer(meta, "llama.attention.head_count");
            int kv = meta.containsKey("llama.attention.head_count_kv")
                    ? integer(meta, "llama.attention.head_count_kv")
                    : heads;
            TensorEntry embed = tensors.get("token_embd.weight");
            if (embed == null) throw fail("tensor token_embd.weight is missing");
            int vocab = meta.containsKey("llama.vocab_size")
                    ? integer(meta, "llama.vocab_size")
                    : (int) embed.ne()[embed.ne().length - 1];
            if (heads > 0 && dim % heads == 0 && meta.containsKey("llama.rope.dimension_count")) {
                long rot = number(meta, "llama.rope.dimension_count");
                if (rot != dim / heads) {
                    throw fail("llama.rope.dimension_count " + rot + " differs from the head dimension " + dim / heads
                            + " (partial rotary embedding is not supported)");
                }
            }
            int layers = integer(meta, "llama.block_count");
            if ((long) layers * 9 + 2 > tensors.size()) {
                throw fail("llama.block_count " + layers + " needs at least " + ((long) layers * 9 + 2)
                        + " tensors but the file lists " + tensors.size());
            }
            int maxPos = meta.containsKey("llama.context_length") ? integer(meta, "llama.context_length") : 2048;
            float theta = (float) real(meta, "llama.rope.freq_base", 10000);
            RopeScaling scaling = heads > 0 && dim % heads == 0 && (dim / heads) % 2 == 0 && theta > 0
                    ? ropeScaling(meta, tensors, dataStart, theta, dim / heads)
                    : RopeScaling.NONE; // the config's own check names the bad shape or theta
            try {
                return new LlamaConfig(
                        vocab,
                        dim,
                        layers,
                        heads,
                        kv,
                        integer(meta, "llama.feed_forward_length"),
                        maxPos,
                        theta,
                        (float) real(meta, "llama.attention.layer_norm_rms_epsilon", 1e-5),
                        !tensors.containsKey("output.weight"),
                        scaling);
            } catch (IllegalArgumentException | ArithmeticException e) {
                throw fail("metadata does not describe a valid Llama model: " + e.getMessage());
            }
        }

        /**
         * The RoPE scaling as llama.cpp's converter writes Hugging Face's: {@code llama.rope.scaling.type} linear with
         * {@code llama.rope.scaling.factor}, or llama3 as a {@code rope_freqs} tensor of per-pair divisors
         * ({@link #llama3FromFactors}); none when neither is there; other types are refused.
         */
        RopeScaling ropeScaling(
                Map<String, Object> meta, Map<String, TensorEntry> tensors, long dataStart, float theta, int headDim)
                throws CheckpointFormatException {
            TensorEntry freqs = tensors.get("rope_freqs.weight");
            if (freqs != null) {
                if (freqs.ne().length != 1 || freqs.ne()[0] != headDim / 2 || freqs.type() != GgmlType.F32.id)
                    throw fail("tensor rope_freqs.weight must be F32 [" + headDim / 2 + "] (one factor per rotated"
                            + " pair of head dimension " + headDim + "), found type " + freqs.type() + " "
                            + Arrays.toString(freqs.ne()));
                int context = meta.containsKey("llama.rope.scaling.original_context_length")
                        ? integer(meta, "llama.rope.scaling.original_context_length")
                        : LLAMA3_CONTEXT;
                return llama3FromFactors(theta, headDim, dequantize(freqs, dataStart), context);
            }
            Object type = meta.get("llama.rope.scaling.type");
            if (type == null || "none".equals(type)) return RopeScaling.NONE;
            if (!"linear".equals(type))
                throw fail("llama.rope.scaling.type '" + type + "' is not supported (supported: none, linear);"
                        + " use a model with one of those");
            if (!meta.containsKey("llama.rope.scaling.factor"))
                throw fail("metadata llama.rope.scaling.factor is missing (llama.rope.scaling.type is linear)");
            try {
                return new RopeScaling.Linear(real(meta, "llama.rope.scaling.factor", 1));
            } catch (IllegalArgumentException e) {
                throw fail("metadata llama.rope.scaling.factor: " + e.getMessage());
            }
        }

        /**
         * The llama3 scaling whose per-pair divisors (plain frequency / scaled frequency) are {@code factors}, as
         * llama.cpp's converter computes them from Hugging Face's llama3 rope_scaling. The divisors depend on the
         * parameters only through the factor (the largest divisor) and the two wavelength bounds
         * {@code context / low_freq_factor} and {@code context / high_freq_factor}: Meta's values (low 1, high 4) are
         * tried first, then the bounds solved from the two outermost blended pairs (rounded to 6 digits, then as
         * solved); the first that reproduces every divisor to 1e-5 is taken, written with
         * {@code original_max_position_embeddings} {@code context}.
         */
        RopeScaling llama3FromFactors(float theta, int headDim, float[] factors, int context)
                throws CheckpointFormatException {
            double[] plain = RopeFrequencies.plain(theta, headDim).toArray();
            double factor = 1;
            for (float f : factors) {
                if (!(f >= 1) || Float.isInfinite(f))
                    throw fail("tensor rope_freqs.weight holds " + f + "; llama3 rope factors are finite and >= 1");
                factor = Math.max(factor, f);
            }
            if (factor == 1) return RopeScaling.NONE;
            List<double[]> candidates = new ArrayList<>();
            candidates.add(new double[] {1, 4});
            int first = -1, last = -1; // the outermost blended pairs: 1 < divisor < factor
            for (int i = 0; i < factors.length; i++) {
                if (factors[i] > 1 + 1e-5 && factors[i] < factor * (1 - 1e-5)) {
                    if (first < 0) first = i;
                    last = i;
                }
            }
            if (first >= 0 && last > first) {
                // blend s = (1/d - 1/F) / (1 - 1/F) = (lowW / w - 1) / (lowW / highW - 1): linear in u = lowW and
                // v = lowW / highW - 1 as u / w - s v = 1, for the two pairs
                double[] w = new double[2], sv = new double[2];
                int[] at = {first, last};
                for (int k = 0; k < 2; k++) {
                    w[k] = 2 * Math.PI / plain[at[k]];
                    sv[k] = (1 / factors[at[k]] - 1 / factor) / (1 - 1 / factor);
                }
                double det = -sv[1] / w[0] + sv[0] / w[1];
                double u = (-sv[1] + sv[0]) / det, v = (1 / w[0] - 1 / w[1]) / det;
                double highW = u / (v + 1), low = context / u, high = context / highW;
                // the divisors are float32: the solve is as exact as they are, so try its values at 6 digits first
                candidates.add(new double[] {sixDigits(low), sixDigits(high)});
                candidates.add(new double[] {low, high});
            }
            for (double[] lowHigh : candidates) {
                RopeScaling.Llama3 s;
                try {
                    s = new RopeScaling.Llama3(factor, lowHigh[0], lowHigh[1], context);
                } catch (IllegalArgumentException e) {
                    continue;
                }
                RopeFrequencies scaled = s.frequencies(theta, headDim);
                boolean same = true;
                for (int i = 0; i < factors.length && same; i++)
                    same = Math.abs(plain[i] / scaled.inverse(i) - factors[i]) <= 1e-5 * factors[i];
                if (same) return s;
            }
            throw fail("tensor rope_freqs.weight holds per-frequency RoPE factors that no llama3 rope scaling with"
                    + " factor " + factor + " reproduces; only llama3 scaling is supported in this form");
        }

        private static double sixDigits(double x) {
            return new BigDecimal(x).round(new MathContext(6)).doubleValue();
        }

        NamedTensors weights(LlamaConfig c, Map<String, TensorEntry> tensors, long dataStart)
                throws CheckpointFormatException {
            Map<String, String> hfOf = new LinkedHashMap<>();
            hfOf.put("token_embd.weight", TensorNames.EMBED_TOKENS);
            String[] suffix = {
                "attn_norm", "attn_q", "attn_k", "attn_v", "attn_output", "ffn_norm", "ffn_gate", "ffn_up", "ffn_down"
            };
            LayerTensor[] hf = {
                LayerTensor.INPUT_NORM,
                LayerTensor.Q_PROJ,
                LayerTensor.K_PROJ,
                LayerTensor.V_PROJ,
                LayerTensor.O_PROJ,
                LayerTensor.POST_ATTENTION_NORM,
                LayerTensor.GATE_PROJ,
                LayerTensor.UP_PROJ,
                LayerTensor.DOWN_PROJ
            };
            for (int l = 0; l < c.numLayers(); l++) {
                for (int k = 0; k < suffix.length; k++) {
                    hfOf.put("blk." + l + "." + suffix[k] + ".weight", TensorNames.layer(l, hf[k]));
                }
            }
            hfOf.put("output_norm.weight", TensorNames.FINAL_NORM);
            if (!c.tieEmbeddings()) hfOf.put("output.weight", TensorNames.LM_HEAD);
            for (String name : tensors.keySet()) {
                if (!hfOf.containsKey(name) && !name.equals("rope_freqs.weight")) { // rope_freqs: read by config()
                    throw fail("unexpected tensor " + name + ": the file is not a plain Llama model with "
                            + c.numLayers() + " layers");
                }
            }
            Map<String, int[]> shapes = TensorNames.llamaShapes(c);
            NamedTensors out = new NamedTensors();
            for (Map.Entry<String, String> e : hfOf.entrySet()) {
                TensorEntry t = tensors.get(e.getKey());
                if (t == null) throw fail("tensor " + e.getKey() + " (" + e.getValue() + ") is missing");
                int[] want = shapes.get(e.getValue());
                int[] have = new int[t.ne().length];
                for (int d = 0; d < have.length; d++) have[d] = (int) t.ne()[have.length - 1 - d];
                if (!Arrays.equals(want, have)) {
                    throw fail("tensor " + t.name() + " has shape " + Arrays.toString(have) + " (rows x columns) but"
                            + " the metadata implies " + Arrays.toString(want));
                }
                float[] data = dequantize(t, dataStart);
                int hd = c.headDim();
                if (e.getKey().endsWith(".attn_q.weight")) {
                    data = Llama2cImport.halvesFromPairs(data, c.numHeads(), hd, c.hiddenSize());
                } else if (e.getKey().endsWith(".attn_k.weight")) {
                    data = Llama2cImport.halvesFromPairs(data, c.numKvHeads(), hd, c.hiddenSize());
                }
                for (int i = 0; i < data.length; i++) {
                    if (!Float.isFinite(data[i])) {
                        throw fail("tensor " + t.name() + " holds " + data[i] + " at element " + i);
                    }
                }
                out.put(e.getValue(), want, data);
            }
            return out;
        }

        /** The tensor as float32, row-major [ne[n-1], ..., ne[0]]. */
        float[] dequantize(TensorEntry t, long dataStart) {
            GgmlType g = GgmlType.of(t.type());
            int n = Math.toIntExact(numel(t));
            long at = dataStart + t.offset();
            float[] out = new float[n];
            switch (g) {
                case F32 -> MemorySegment.copy(seg, F32, at, out, 0, n);
                case F16 -> {
                    for (int i = 0; i < n; i++) out[i] = Float.float16ToFloat(seg.get(I16, at + 2L * i));
                }
                case BF16 -> {
                    for (int i = 0; i < n; i++)
                        out[i] = Float.intBitsToFloat((seg.get(I16, at + 2L * i) & 0xFFFF) << 16);
                }
                case Q8_0 -> {
                    // block: f16 scale d, then 32 int8 q; x = d * q
                    for (int b = 0; b < n / 32; b++) {
                        long p = at + 34L * b;
                        float d = Float.float16ToFloat(seg.get(I16, p));
                        for (int j = 0; j < 32; j++) out[b * 32 + j] = d * seg.get(ValueLayout.JAVA_BYTE, p + 2 + j);
                    }
                }
                case Q4_0 -> {
                    // block: f16 scale d, then 16 bytes; element j < 16 is the low nibble of byte j, j + 16 its high
                    // nibble; x = d * (nibble - 8)
                    for (int b = 0; b < n / 32; b++) {
                        long p = at + 18L * b;
                        float d = Float.float16ToFloat(seg.get(I16, p));
                        for (int j = 0; j < 16; j++) {
                            int q = seg.get(ValueLayout.JAVA_BYTE, p + 2 + j) & 0xFF;
                            out[b * 32 + j] = d * ((q & 0x0F) - 8);
                            out[b * 32 + j + 16] = d * ((q >>> 4) - 8);
                        }
                    }
                }
            }
            return out;
        }

        byte[] tokenizer(Map<String, Object> meta, int vocab) throws CheckpointFormatException {
            List<?> tokens = list(meta, "tokenizer.ggml.tokens", vocab);
            List<?> scores =
                    meta.containsKey("tokenizer.ggml.scores") ? list(meta, "tokenizer.ggml.scores", vocab) : null;
            List<?> types = meta.containsKey("tokenizer.ggml.token_type")
                    ? list(meta, "tokenizer.ggml.token_type", vocab)
                    : null;
            String[] pieces = new String[vocab];
            float[] s = new float[vocab];
            int[] t = new int[vocab];
            for (int i = 0; i < vocab; i++) {
                if (!(tokens.get(i) instanceof String str))
                    throw fail("tokenizer.ggml.tokens[" + i + "] is not a string");
                pieces[i] = str;
                if (scores != null && !(scores.get(i) instanceof Number))
                    throw fail("tokenizer.ggml.scores[" + i + "] is not a number");
                if (types != null && !(types.get(i) instanceof Long))
                    throw fail("tokenizer.ggml.token_type[" + i + "] is not an integer");
                s[i] = scores == null ? -i : ((Number) scores.get(i)).floatValue();
                t[i] = types == null ? SentencePieceBpe.NORMAL : ((Long) types.get(i)).intValue();
            }
            int bos =
                    meta.containsKey("tokenizer.ggml.bos_token_id") ? integer(meta, "tokenizer.ggml.bos_token_id") : -1;
            if (bos >= vocab) throw fail("tokenizer.ggml.bos_token_id " + bos + " is outside the vocabulary");
            Object addBos = meta.get("tokenizer.ggml.add_bos_token");
            try {
                return SentencePieceBpe.toTokenizerJson(
                        pieces, s, t, bos, addBos == null || Boolean.TRUE.equals(addBos));
            } catch (IllegalArgumentException e) {
                throw fail("tokenizer metadata: " + e.getMessage());
            }
        }

        List<?> list(Map<String, Object> meta, String key, int length) throws CheckpointFormatException {
            Object v = meta.get(key);
            if (!(v instanceof List<?> l))
                throw fail("metadata " + key + (v == null ? " is missing" : " must be an array"));
            if (l.size() != length) {
                throw fail("metadata " + key + " has " + l.size() + " entries but the vocabulary has " + length);
            }
            for (Object o : l) {
                if (o instanceof List<?>) throw fail("metadata " + key + " holds nested arrays");
            }
            return l;
        }

        static long numel(TensorEntry t) {
            long n = 1;
            for (long d : t.ne()) n = Math.multiplyExact(n, d);
            return n;
        }
    }
}
