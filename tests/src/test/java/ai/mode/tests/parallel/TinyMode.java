// Shared fixtures of the parallel tests: a tiny MoDE model with every parameter random (so every gradient is
// non-zero), a reproducible token stream, and cpu backends for several devices.
package ai.mode.tests.parallel;

import ai.mode.model.LlamaConfig;
import ai.mode.model.mode.ModeConfig;
import ai.mode.model.mode.ModeModel;
import ai.mode.model.mode.Routing;
import ai.mode.model.nn.LlamaModel;
import ai.mode.model.nn.Parameter;
import ai.mode.model.train.TokenStream;
import ai.mode.runtime.Backend;
import ai.mode.runtime.Backends;
import com.google.gson.JsonElement;
import com.google.gson.JsonPrimitive;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

final class TinyMode {
    /** V=13, D=8, L=4, H=2, Hkv=1, F=12, T<=8. */
    static final LlamaConfig CFG = new LlamaConfig(13, 8, 4, 2, 1, 12, 8, 10000f, 1e-5f, false);

    private TinyMode() {}

    /** The backbone plus a MoDE model of 2 blocks, 3 experts of 1 layer, every parameter random; all frozen. */
    static ModeModel model(Backend be, LlamaConfig cfg, Routing routing, long seed) {
        LlamaModel base = LlamaModel.create(be, cfg).initialize(seed);
        ModeConfig mc = ModeConfig.residualRandom(2, 1, List.of("a", "b", "c")).withRouting(routing);
        ModeModel m = ModeModel.create(base, mc, seed + 1);
        SplittableRandom r = new SplittableRandom(seed + 2);
        for (Parameter p : m.addedParameters()) {
            float[] v = new float[(int) p.numel()];
            for (int i = 0; i < v.length; i++)
                v[i] = (float)
                        (p.shape().length == 1 && !p.name().endsWith("bias")
                                ? 1 + 0.2 * r.nextGaussian()
                                : 0.3 * r.nextGaussian());
            be.copyFromHost(v, p.value());
        }
        return m;
    }

    static List<Backend> cpus(int n) {
        List<Backend> out = new ArrayList<>();
        for (int i = 0; i < n; i++) out.add(Backends.create("cpu", 1));
        return out;
    }

    /** Random windows from a seeded generator; its state is the number of windows drawn. */
    static final class Stream implements TokenStream {
        private final long seed;
        private final int vocab;
        private SplittableRandom rnd;
        private long drawn;

        Stream(long seed, int vocab) {
            this.seed = seed;
            this.vocab = vocab;
            this.rnd = new SplittableRandom(seed);
        }

        @Override
        public void next(int batch, int seqLen, int[] dst) {
            for (int i = 0; i < batch * (seqLen + 1); i++) dst[i] = rnd.nextInt(vocab);
            drawn++;
        }

        @Override
        public JsonElement state() {
            return new JsonPrimitive(drawn);
        }

        @Override
        public void restore(JsonElement state) {
            rnd = new SplittableRandom(seed);
            drawn = 0;
            long target = state.getAsLong();
            throw new UnsupportedOperationException("restore to " + target + " is not needed by these tests");
        }
    }

    /** max |a - b| / max(|b|) over the arrays (0 when b is all zero and a equals it). */
    static double relError(float[] a, float[] b) {
        double num = 0, den = 0;
        for (int i = 0; i < a.length; i++) {
            num = Math.max(num, Math.abs(a[i] - b[i]));
            den = Math.max(den, Math.abs(b[i]));
        }
        return den == 0 ? num : num / den;
    }
}
