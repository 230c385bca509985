package example;

import ai.mode.runtime.AdamWStep;
import ai.mode.runtime.Backend;
import ai.mode.runtime.BackendSpec;
import ai.mode.runtime.Backends;
import ai.mode.runtime.DType;
import ai.mode.runtime.LossStats;
import ai.mode.runtime.Tensor;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;

/**
 * A two-layer SwiGLU classifier trained through nothing but the MoDE-J {@link Backend} API: the shape a framework
 * takes when it uses MoDE-J as its compute backend. The data are random points labelled by a random linear teacher;
 * the inputs are the caller's own {@code float[]}, wrapped without a copy.
 *
 * <pre>
 * gate = x Wg, up = x Wu        [N, H]
 * act  = silu(gate) * up        [N, H]
 * logits = act Wo               [N, C]
 * loss = mean cross-entropy(logits, labels)
 * </pre>
 */
public final class TinyMlp implements AutoCloseable {
    static final int N = 64, D = 16, H = 32, C = 4;

    private final Backend be;
    private final float[] inputs = new float[N * D]; // the caller's memory, read in place by the backend
    private final Tensor x, labels;
    private final Tensor wg, wu, wo;
    private final List<Tensor[]> params = new ArrayList<>(); // {param, grad, m, v}
    private final Tensor gate, up, act, logits, dAct, dGate, dUp;
    private int step;

    /** A model on the backend {@code spec} names, with data and weights drawn from {@code seed}. */
    public TinyMlp(BackendSpec spec, long seed) {
        be = Backends.create(spec);
        Random r = new Random(seed);
        float[] teacher = gaussian(r, D * C, 1f);
        int[] y = new int[N];
        for (int i = 0; i < N * D; i++) inputs[i] = (float) r.nextGaussian();
        for (int n = 0; n < N; n++) {
            float best = Float.NEGATIVE_INFINITY;
            for (int c = 0; c < C; c++) {
                float s = 0;
                for (int d = 0; d < D; d++) s += inputs[n * D + d] * teacher[d * C + c];
                if (s > best) {
                    best = s;
                    y[n] = c;
                }
            }
        }
        x = be.wrap(MemorySegment.ofArray(inputs), DType.F32, N, D);
        labels = be.fromHost(y, N);
        wg = param(gaussian(r, D * H, (float) (1 / Math.sqrt(D))), D, H);
        wu = param(gaussian(r, D * H, (float) (1 / Math.sqrt(D))), D, H);
        wo = param(gaussian(r, H * C, (float) (1 / Math.sqrt(H))), H, C);
        gate = be.zeros(N, H);
        up = be.zeros(N, H);
        act = be.zeros(N, H);
        logits = be.zeros(N, C);
        dAct = be.zeros(N, H);
        dGate = be.zeros(N, H);
        dUp = be.zeros(N, H);
    }

    private Tensor param(float[] init, int rows, int cols) {
        Tensor p = be.fromHost(init, rows, cols);
        params.add(new Tensor[] {p, be.zeros(rows, cols), be.zeros(rows, cols), be.zeros(rows, cols)});
        return p;
    }

    private static float[] gaussian(Random r, int n, float std) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) a[i] = (float) (r.nextGaussian() * std);
        return a;
    }

    /** One forward, backward and AdamW step; returns the mean loss before the update. */
    public double trainStep(float lr) {
        be.gemm(false, false, 1f, x, wg, 0f, gate);
        be.gemm(false, false, 1f, x, wu, 0f, up);
        be.swiGluForward(gate, up, act);
        be.gemm(false, false, 1f, act, wo, 0f, logits);
        LossStats loss = be.crossEntropy(logits, labels, logits, 1f / N); // logits now hold dLogits [N, C]
        Tensor dLogits = logits;
        be.gemm(true, false, 1f, act, dLogits, 0f, params.get(2)[1]); // dWo = act^T dLogits   [H, C]
        be.gemm(false, true, 1f, dLogits, wo, 0f, dAct); //                dAct = dLogits Wo^T  [N, H]
        be.swiGluBackward(dAct, gate, up, dGate, dUp);
        be.gemm(true, false, 1f, x, dGate, 0f, params.get(0)[1]); //      dWg = x^T dGate      [D, H]
        be.gemm(true, false, 1f, x, dUp, 0f, params.get(1)[1]); //        dWu = x^T dUp        [D, H]
        AdamWStep s = new AdamWStep(lr, 0.9f, 0.999f, 1e-8f, 0f, ++step, 1f);
        for (Tensor[] p : params) be.adamW(p[0], p[1], p[2], p[3], s);
        return loss.meanLoss();
    }

    @Override
    public void close() {
        be.close();
    }

    /** Trains 40 steps on the cpu backend and prints the loss every 10. */
    public static void main(String[] args) {
        try (TinyMlp m = new TinyMlp(BackendSpec.of("cpu", 2), 7)) {
            for (int i = 0; i < 40; i++) {
                double loss = m.trainStep(0.02f);
                if (i % 10 == 0) System.out.printf("step %d loss %.4f%n", i, loss);
            }
        }
    }
}
