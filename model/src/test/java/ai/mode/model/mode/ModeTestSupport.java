// Shared fixtures of the MoDE unit tests: a tiny backbone, random fills, a deterministic token stream.
package ai.mode.model.mode;

import ai.mode.model.LlamaConfig;
import ai.mode.model.nn.CausalLm;
import ai.mode.model.nn.LlamaModel;
import ai.mode.model.nn.Parameter;
import ai.mode.model.train.TokenStream;
import ai.mode.runtime.Backend;
import ai.mode.runtime.Tensor;
import com.google.gson.JsonElement;
import com.google.gson.JsonPrimitive;
import java.util.Random;

final class ModeTestSupport {
    private ModeTestSupport() {}

    /** V=13, D=8, L=4, H=2, Hkv=1, F=12, T<=16, tied. */
    static final LlamaConfig TINY = new LlamaConfig(13, 8, 4, 2, 1, 12, 16, 10000f, 1e-5f, true);

    /** Normal(0, std) matrices, gains around 1 (the gate bias too: small values). */
    static void randomize(Backend be, Parameter p, Random rnd, double std) {
        float[] v = new float[(int) p.numel()];
        boolean gain = p.shape().length == 1 && !p.name().endsWith("gate.bias");
        for (int i = 0; i < v.length; i++)
            v[i] = (float) (gain ? 1 + 0.2 * rnd.nextGaussian() : std * rnd.nextGaussian());
        be.copyFromHost(v, p.value());
    }

    /** A {@link #TINY} backbone with every parameter randomised (std 0.3) from {@code seed}. */
    static LlamaModel backbone(Backend be, long seed) {
        LlamaModel m = LlamaModel.create(be, TINY);
        Random rnd = new Random(seed);
        for (Parameter p : m.parameters()) randomize(be, p, rnd, 0.3);
        return m;
    }

    /** Experts (std 0.3) and gates (std 0.8) that really differ from the backbone and route unevenly. */
    static void randomizeAdded(Backend be, ModeModel m, long seed) {
        Random rnd = new Random(seed);
        for (Parameter p : m.addedParameters()) randomize(be, p, rnd, p.name().contains("gate") ? 0.8 : 0.3);
    }

    /** The model's logits {@code [b·t, V]} for ids {@code [b, t]}. */
    static float[] logits(Backend be, CausalLm model, int[] ids, int b, int t) {
        try (Tensor it = be.fromHost(ids, b, t);
                Tensor out = be.zeros(b * t, model.config().vocabSize())) {
            model.logits(it, out);
            return be.toHostFloats(out);
        }
    }

    /** A domain whose splits (600 / 200 / 200 tokens) draw mostly from [lo, hi), one token in five from the whole vocabulary. */
    static DomainTokens domain(String name, int lo, int hi, long seed) {
        Random r = new Random(seed);
        int[][] splits = new int[3][];
        for (int s = 0; s < 3; s++) {
            splits[s] = new int[s == 0 ? 600 : 200];
            for (int i = 0; i < splits[s].length; i++)
                splits[s][i] = r.nextInt(5) == 0 ? r.nextInt(TINY.vocabSize()) : lo + r.nextInt(hi - lo);
        }
        return new DomainTokens(name, splits[0], splits[1], splits[2]);
    }

    static int[] tokens(long seed, int n, int vocab) {
        Random r = new Random(seed);
        int[] out = new int[n];
        for (int i = 0; i < n; i++) out[i] = r.nextInt(vocab);
        return out;
    }

    /** An endless stream of a fixed pseudo-random token sequence with a restorable position. */
    static final class RandomStream implements TokenStream {
        private final int[] data;
        private int pos;

        RandomStream(long seed, int length, int vocab) {
            this.data = tokens(seed, length, vocab);
        }

        @Override
        public void next(int batch, int seqLen, int[] dst) {
            for (int b = 0; b < batch; b++) {
                if (pos + seqLen + 1 > data.length) pos = 0;
                System.arraycopy(data, pos, dst, b * (seqLen + 1), seqLen + 1);
                pos += seqLen;
            }
        }

        @Override
        public JsonElement state() {
            return new JsonPrimitive(pos);
        }

        @Override
        public void restore(JsonElement state) {
            pos = state.getAsInt();
        }
    }
}
