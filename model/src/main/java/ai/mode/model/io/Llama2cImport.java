package ai.mode.model.io;

import ai.mode.model.LlamaConfig;
import ai.mode.model.io.TensorNames.LayerTensor;
import java.io.IOException;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.MappedByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/**
 * Reads a llama2.c checkpoint ({@code .bin} in its legacy layout, "version 0" of llama2.c's export): seven int32
 * (dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len; a negative vocab_size means an untied
 * classifier), then float32 arrays: token embedding [V, D], attention norms [L, D], wq, wk, wv, wo [L, out, in], FFN
 * norms [L, D], w1 (gate), w2 (down), w3 (up) [L, out, in], final norm [D], two RoPE tables [seq, hd/2] (skipped), and
 * the classifier [V, D] when untied.
 *
 * <p>llama2.c rotates adjacent pairs (2i, 2i+1) of each head; the {@link ai.mode.runtime.Backend} RoPE, like Hugging
 * Face, rotates the halves (i, i + hd/2). The rows of wq and wk are permuted per head accordingly (the permutation
 * transformers' own Llama conversion applies), so the imported model computes what llama2.c computes. RoPE theta
 * 10000 and RMSNorm eps 1e-5 are llama2.c's built-in values.
 */
public final class Llama2cImport {

    private Llama2cImport() {}

    private static final int HEADER_INTS = 7;
    private static final int MAGIC_V1 = 0x616b3432;

    /** Reads the checkpoint at {@code file} into a Hugging Face config and weights under {@link TensorNames}. */
    public static HfImport.Model load(Path file) throws IOException {
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            long size = ch.size();
            if (size < HEADER_INTS * 4L) {
                throw new CheckpointFormatException(file, "has " + size + " bytes, too few for a llama2.c header");
            }
            if (size > Integer.MAX_VALUE) {
                throw new CheckpointFormatException(
                        file, "is " + size + " bytes; llama2.c checkpoints over 2 GiB are not supported");
            }
            MappedByteBuffer map = ch.map(FileChannel.MapMode.READ_ONLY, 0, size);
            map.order(ByteOrder.LITTLE_ENDIAN);
            int[] h = new int[HEADER_INTS];
            for (int i = 0; i < HEADER_INTS; i++) h[i] = map.getInt(i * 4);
            if (h[0] == MAGIC_V1) {
                throw new CheckpointFormatException(
                        file,
                        "is a llama2.c checkpoint of export version " + h[1] + "; only the legacy layout (version 0)"
                                + " is read: export it with llama2.c's export.py --version 0");
            }
            int dim = h[0], hidden = h[1], layers = h[2], heads = h[3], kvHeads = h[4], seq = h[6];
            boolean tied = h[5] > 0;
            int vocab = Math.abs(h[5]);
            String header = "header (dim " + dim + ", hidden_dim " + hidden + ", n_layers " + layers + ", n_heads "
                    + heads + ", n_kv_heads " + kvHeads + ", vocab_size " + h[5] + ", seq_len " + seq + ")";
            if (dim <= 0
                    || hidden <= 0
                    || layers <= 0
                    || heads <= 0
                    || kvHeads <= 0
                    || vocab <= 0
                    || seq <= 0
                    || dim % heads != 0
                    || heads % kvHeads != 0
                    || (dim / heads) % 2 != 0) {
                throw new CheckpointFormatException(
                        file, header + " does not describe a Llama model; is this a llama2.c legacy checkpoint?");
            }
            LlamaConfig config = new LlamaConfig(vocab, dim, layers, heads, kvHeads, hidden, seq, 10000f, 1e-5f, tied);
            int hd = dim / heads, kvDim = kvHeads * hd;
            long floats = (long) vocab * dim
                    + (long) layers * (2L * dim + 2L * dim * dim + 2L * kvDim * dim + 3L * dim * hidden)
                    + dim
                    + (long) seq * hd
                    + (tied ? 0 : (long) vocab * dim);
            long expected = HEADER_INTS * 4L + floats * 4;
            if (size != expected) {
                throw new CheckpointFormatException(
                        file,
                        "has " + size + " bytes but its " + header + " implies " + expected
                                + "; the file is truncated or not a llama2.c legacy checkpoint");
            }
            map.position(HEADER_INTS * 4);
            FloatBuffer f = map.slice().order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer();
            NamedTensors out = new NamedTensors();
            float[] embed = take(f, (long) vocab * dim);
            float[][] attnNorm = perLayer(f, layers, dim);
            float[][] wq = perLayer(f, layers, dim * dim);
            float[][] wk = perLayer(f, layers, kvDim * dim);
            float[][] wv = perLayer(f, layers, kvDim * dim);
            float[][] wo = perLayer(f, layers, dim * dim);
            float[][] ffnNorm = perLayer(f, layers, dim);
            float[][] w1 = perLayer(f, layers, hidden * dim);
            float[][] w2 = perLayer(f, layers, dim * hidden);
            float[][] w3 = perLayer(f, layers, hidden * dim);
            float[] finalNorm = take(f, dim);
            f.position(f.position() + seq * hd);
            float[] cls = tied ? null : take(f, (long) vocab * dim);

            out.put(TensorNames.EMBED_TOKENS, new int[] {vocab, dim}, embed);
            for (int l = 0; l < layers; l++) {
                put(out, config, l, LayerTensor.INPUT_NORM, attnNorm[l]);
                put(out, config, l, LayerTensor.Q_PROJ, halvesFromPairs(wq[l], heads, hd, dim));
                put(out, config, l, LayerTensor.K_PROJ, halvesFromPairs(wk[l], kvHeads, hd, dim));
                put(out, config, l, LayerTensor.V_PROJ, wv[l]);
                put(out, config, l, LayerTensor.O_PROJ, wo[l]);
                put(out, config, l, LayerTensor.POST_ATTENTION_NORM, ffnNorm[l]);
                put(out, config, l, LayerTensor.GATE_PROJ, w1[l]);
                put(out, config, l, LayerTensor.UP_PROJ, w3[l]);
                put(out, config, l, LayerTensor.DOWN_PROJ, w2[l]);
            }
            out.put(TensorNames.FINAL_NORM, new int[] {dim}, finalNorm);
            if (!tied) out.put(TensorNames.LM_HEAD, new int[] {vocab, dim}, cls);
            String problem = HfImport.shapeProblem(out, config);
            if (problem != null) throw new IllegalStateException("llama2.c import built " + problem);
            return new HfImport.Model(HfConfig.of(config), out);
        } catch (NoSuchFileException e) {
            throw new CheckpointFormatException(file, "not found");
        }
    }

    /**
     * Reorders the rows of a q or k projection [heads * hd, in] from llama2.c's interleaved rotary pairs to
     * Hugging Face's halves: within each head, row i of the result is source row 2i, row hd/2 + i is row 2i + 1.
     */
    static float[] halvesFromPairs(float[] w, int heads, int hd, int in) {
        float[] out = new float[w.length];
        int half = hd / 2;
        for (int h = 0; h < heads; h++) {
            for (int i = 0; i < half; i++) {
                for (int j = 0; j < 2; j++) {
                    int src = h * hd + 2 * i + j, dst = h * hd + j * half + i;
                    System.arraycopy(w, src * in, out, dst * in, in);
                }
            }
        }
        return out;
    }

    private static void put(NamedTensors out, LlamaConfig c, int layer, LayerTensor t, float[] data) {
        out.put(TensorNames.layer(layer, t), t.shape(c), data);
    }

    private static float[][] perLayer(FloatBuffer f, int layers, int each) {
        float[][] out = new float[layers][];
        for (int l = 0; l < layers; l++) out[l] = take(f, each);
        return out;
    }

    private static float[] take(FloatBuffer f, long n) {
        float[] a = new float[Math.toIntExact(n)];
        f.get(a);
        return a;
    }
}
