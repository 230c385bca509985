// Shared fixtures of the MoDE unit tests: a tiny backbone, random fills, a deterministic token stream.
package ai.mode.model.mode;

import ai.mode.model.LlamaConfig;
import ai.mode.model.nn.Parameter;
import ai.mode.model.train.TokenStream;
import ai.mode.runtime.Backend;
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
