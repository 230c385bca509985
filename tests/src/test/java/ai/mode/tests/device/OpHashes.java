package ai.mode.tests.device;

import ai.mode.runtime.AdamWStep;
import ai.mode.runtime.Backend;
import ai.mode.runtime.DType;
import ai.mode.runtime.LossStats;
import ai.mode.runtime.RopeFrequencies;
import ai.mode.runtime.Tensor;
import ai.mode.tests.reference.TestData;
import java.nio.ByteBuffer;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Every {@link Backend} op once on seeded inputs at odd sizes, each output hashed (SHA-256 of its float bits): two
 * runs on the same device, driver and libraries must give the same map (the GPU contract in docs/cuda.md). The
 * activations are {@code act} (F32 or BF16); parameters, their gradients and statistics are F32.
 */
public final class OpHashes {
    private static final int B = 2, T = 37, H = 4, HKV = 2, HD = 16, D = 64, F = 96, V = 101, E = 3, K = 2;
    private static final int N = B * T;

    private final Backend be;
    private final DType act;
    private final Map<String, String> hashes = new LinkedHashMap<>();

    private OpHashes(Backend be, DType act) {
        this.be = be;
        this.act = act;
    }

    /** op name -> hash of its outputs, in op order. */
    public static Map<String, String> of(Backend be, DType act) {
        OpHashes h = new OpHashes(be, act);
        h.runAll();
        return h.hashes;
    }

    private Tensor input(long seed, DType t, int... shape) {
        int n = 1;
        for (int s : shape) n *= s;
        Tensor x = be.allocate(t, shape);
        be.copyFromHost(TestData.normal(seed, n), x);
        return x;
    }

    private Tensor ids(long seed, int n, int bound) {
        return be.fromHost(TestData.ints(seed, n, bound), n);
    }

    private void record(String op, Object... outputs) {
        try {
            MessageDigest md = MessageDigest.getInstance("SHA-256");
            for (Object o : outputs) {
                switch (o) {
                    case Tensor t
                    when t.dtype() == DType.I32 -> {
                        int[] v = new int[Math.toIntExact(t.numel())];
                        be.toHost(t, v);
                        ByteBuffer b = ByteBuffer.allocate(4 * v.length);
                        b.asIntBuffer().put(v);
                        md.update(b.array());
                    }
                    case Tensor t -> {
                        float[] v = be.toHostFloats(t);
                        ByteBuffer b = ByteBuffer.allocate(4 * v.length);
                        b.asFloatBuffer().put(v);
                        md.update(b.array());
                    }
                    case Double d ->
                        md.update(ByteBuffer.allocate(8).putDouble(d).array());
                    case LossStats s ->
                        md.update(ByteBuffer.allocate(24)
                                .putDouble(s.lossSum())
                                .putLong(s.count())
                                .putLong(s.correct())
                                .array());
                    default -> throw new IllegalArgumentException("cannot hash " + o);
                }
            }
            hashes.put(op, HexFormat.of().formatHex(md.digest()));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    private void runAll() {
        Tensor a = input(1, act, N, D), w = input(2, act, F, D), y = be.allocate(DType.F32, N, F);
        if (act == DType.BF16) {
            Tensor yb = be.allocate(act, N, F);
            be.gemm(false, true, 1f, a, w, 0f, yb);
            record("gemm NT bf16", yb);
        }
        Tensor af = input(1, DType.F32, N, D), wf = input(2, DType.F32, F, D), gf = input(3, DType.F32, N, F);
        be.gemm(false, true, 1f, af, wf, 0f, y);
        be.gemm(true, false, 0.5f, gf, af, 0f, be.zeros(F, D));
        Tensor dw = be.zeros(F, D);
        be.gemm(true, false, 1f, gf, af, 1f, dw);
        record("gemm f32 NT, TN with beta", y, dw);

        Tensor x = input(4, act, N, D), x2 = input(5, act, N, D), sum = be.allocate(act, N, D);
        be.add(x, x2, sum);
        be.axpy(0.25f, x, sum);
        be.scale(sum, 1.5f);
        record("add, axpy, scale", sum);
        record("sumSquares", be.sumSquares(sum));
        Tensor cols = input(6, DType.F32, D);
        be.sumRowsAccumulate(sum, cols);
        record("sumRowsAccumulate", cols);

        Tensor table = input(7, act, V, D), emb = be.allocate(act, N, D), tokens = ids(8, N, V);
        be.embeddingForward(table, tokens, emb);
        Tensor dTable = be.zeros(V, D);
        be.embeddingBackward(x, tokens, dTable);
        record("embedding fwd, bwd", emb, dTable);

        Tensor g = input(9, DType.F32, D), normed = be.allocate(act, N, D), rstd = be.allocate(DType.F32, N);
        be.rmsNormForward(x, g, 1e-5f, normed, rstd);
        Tensor dx = be.allocate(act, N, D), dg = be.zeros(D);
        be.rmsNormBackward(x2, x, g, rstd, dx, dg);
        record("rmsNorm fwd, bwd", normed, rstd, dx, dg);

        Tensor q = input(10, act, B, T, H, HD), k = input(11, act, B, T, HKV, HD), v = input(12, act, B, T, HKV, HD);
        Tensor qr = be.allocate(act, B, T, H, HD), dq = be.allocate(act, B, T, H, HD);
        be.ropeForward(q, RopeFrequencies.plain(10000f, HD), 3, qr);
        be.ropeBackward(qr, RopeFrequencies.plain(10000f, HD), 3, dq);
        record("rope fwd, bwd", qr, dq);
        Tensor o = be.allocate(act, B, T, H, HD), lse = be.allocate(DType.F32, B, H, T);
        be.attentionForward(qr, k, v, o, lse);
        Tensor gq = be.allocate(act, B, T, H, HD), gk = be.allocate(act, B, T, HKV, HD);
        Tensor gv = be.allocate(act, B, T, HKV, HD);
        be.attentionBackward(q, qr, k, v, o, lse, gq, gk, gv);
        record("attention fwd, bwd", o, lse, gq, gk, gv);
        Tensor oc = be.allocate(act, B, 1, H, HD);
        be.attentionCachedForward(input(40, act, B, 1, H, HD), k, v, T, oc); // one new query over a full cache
        record("attention cached fwd", oc);

        Tensor gate = input(13, act, N, F), up = input(14, act, N, F), act1 = be.allocate(act, N, F);
        be.swiGluForward(gate, up, act1);
        Tensor dGate = be.allocate(act, N, F), dUp = be.allocate(act, N, F);
        be.swiGluBackward(up, gate, up, dGate, dUp);
        record("swiGlu fwd, bwd", act1, dGate, dUp);

        Tensor logits = input(15, act, N, V), dLogits = be.allocate(act, N, V);
        record("crossEntropy", be.crossEntropy(logits, ids(16, N, V), dLogits, 1f / N), dLogits);

        Tensor p = input(17, DType.F32, F, D), m = be.zeros(F, D), s2 = be.zeros(F, D);
        be.adamW(p, dw, m, s2, new AdamWStep(1e-3f, 0.9f, 0.95f, 1e-8f, 0.1f, 1, 1f));
        record("adamW", p, m, s2);

        Tensor gl = input(18, act, N, E), probs = be.allocate(act, N, E), dl = be.allocate(act, N, E);
        be.softmaxForward(gl, probs);
        be.softmaxBackward(input(19, act, N, E), probs, dl);
        record("softmax fwd, bwd", probs, dl);
        Tensor branches = input(20, act, E, N, D), merged = be.allocate(act, N, D);
        be.weightedMergeForward(branches, probs, merged);
        Tensor dBranches = be.allocate(act, E, N, D), dProbs = be.allocate(act, N, E);
        be.weightedMergeBackward(x, branches, probs, dBranches, dProbs);
        record("weightedMerge fwd, bwd", merged, dBranches, dProbs);

        Tensor top = be.allocate(DType.I32, N, K), topW = be.allocate(act, N, K);
        be.topK(probs, K, top, topW);
        record("topK", top, topW);
        Tensor rowIds = ids(21, 3 * N, N), gathered = be.allocate(act, 3 * N, D), scattered = be.allocate(act, N, D);
        be.gatherRows(x, rowIds, gathered);
        be.scatterAddRows(gathered, rowIds, scattered);
        record("gatherRows, scatterAddRows", gathered, scattered);
    }
}
