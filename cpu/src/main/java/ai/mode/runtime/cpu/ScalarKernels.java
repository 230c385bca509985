package ai.mode.runtime.cpu;

/**
 * Plain-loop kernels: the fallback when the Vector API module is absent or {@code -Dmode.cpu.vector=false}.
 * Simple counted loops, which HotSpot's auto-vectoriser handles where it can; sums run left to right;
 * exponentials use {@link CpuMath#exp}, the same function the vector path evaluates lane-wise.
 */
final class ScalarKernels extends CpuKernels {
    private static final int MR = 4;
    private static final int NR = 16;

    @Override
    boolean vectorized() {
        return false;
    }

    @Override
    String describe() {
        return "scalar";
    }

    @Override
    int mr() {
        return MR;
    }

    @Override
    int nr() {
        return NR;
    }

    @Override
    void gemmTile(
            int kc, float[] ap, int apo, boolean rowsA, float[] bp, int bpo, float[] c, int co, int ldc, boolean load) {
        int rs = rowsA ? KC : 1, ks = rowsA ? 1 : MR;
        float[] acc = new float[MR * NR];
        if (load) {
            for (int r = 0; r < MR; r++) System.arraycopy(c, co + r * ldc, acc, r * NR, NR);
        }
        for (int p = 0; p < kc; p++) {
            int bRow = bpo + p * NR;
            for (int r = 0; r < MR; r++) {
                float a = ap[apo + r * rs + p * ks];
                int accRow = r * NR;
                for (int j = 0; j < NR; j++) acc[accRow + j] += a * bp[bRow + j];
            }
        }
        for (int r = 0; r < MR; r++) System.arraycopy(acc, r * NR, c, co + r * ldc, NR);
    }

    @Override
    void gemmRow(
            int kc,
            float[] a,
            int ao,
            float[] bp,
            int bpo,
            int bPanel,
            boolean twoPanels,
            float[] c,
            int co,
            boolean load) {
        for (int q = 0; q < (twoPanels ? 2 : 1); q++) {
            int panel = bpo + q * bPanel, out = co + q * NR;
            for (int j = 0; j < NR; j++) {
                float acc = load ? c[out + j] : 0f;
                for (int p = 0; p < kc; p++) acc += a[ao + p] * bp[panel + p * NR + j];
                c[out + j] = acc;
            }
        }
    }

    @Override
    float dot(float[] x, int xo, float[] y, int yo, int n) {
        float s = 0f;
        for (int i = 0; i < n; i++) s += x[xo + i] * y[yo + i];
        return s;
    }

    @Override
    double dotF64(float[] x, int xo, float[] y, int yo, int n) {
        double s = 0;
        for (int i = 0; i < n; i++) s += (double) x[xo + i] * y[yo + i];
        return s;
    }

    @Override
    void softmaxBackwardRow(float[] p, int po, float[] g, int go, int n, float delta, float scale) {
        for (int i = 0; i < n; i++) g[go + i] = p[po + i] * (g[go + i] - delta) * scale;
    }

    @Override
    void axpy(float a, float[] x, int xo, float[] y, int yo, int n) {
        for (int i = 0; i < n; i++) y[yo + i] += a * x[xo + i];
    }

    @Override
    void add(float[] a, int ao, float[] b, int bo, float[] out, int oo, int n) {
        for (int i = 0; i < n; i++) out[oo + i] = a[ao + i] + b[bo + i];
    }

    @Override
    void scale(float[] x, int xo, int n, float s) {
        for (int i = 0; i < n; i++) x[xo + i] *= s;
    }

    @Override
    void copyScaled(float[] x, int xo, int ldx, float[] out, int oo, int ldo, int rows, int cols, float s) {
        for (int r = 0; r < rows; r++) {
            int xi = xo + r * ldx, oi = oo + r * ldo;
            if (s == 1f) {
                System.arraycopy(x, xi, out, oi, cols);
            } else {
                for (int c = 0; c < cols; c++) out[oi + c] = s * x[xi + c];
            }
        }
    }

    @Override
    void copyScaledPadded(float[] x, int xo, int ldx, float[] out, int oo, int ldo, int rows, int cols, float s) {
        copyScaled(x, xo, ldx, out, oo, ldo, rows, cols, s);
    }

    @Override
    int vectorLength() {
        return 1;
    }

    @Override
    void transpose(float[] x, int xo, int ldx, float[] out, int oo, int ldo, int rows, int cols) {
        for (int r = 0; r < rows; r++) {
            for (int c = 0; c < cols; c++) out[oo + c * ldo + r] = x[xo + r * ldx + c];
        }
    }

    @Override
    float max(float[] x, int xo, int n) {
        float m = x[xo];
        for (int i = 1; i < n; i++) m = Math.max(m, x[xo + i]);
        return m;
    }

    @Override
    int indexOf(float[] x, int xo, int n, float max) {
        for (int i = 0; i < n; i++) {
            if (x[xo + i] == max) return i;
        }
        return 0;
    }

    @Override
    float expShifted(float[] x, int xo, float[] out, int oo, int n, float shift) {
        float s = 0f;
        for (int i = 0; i < n; i++) {
            float e = CpuMath.exp(x[xo + i] - shift);
            out[oo + i] = e;
            s += e;
        }
        return s;
    }

    @Override
    float expShiftedSum(float[] x, int xo, int n, float shift) {
        float s = 0f;
        for (int i = 0; i < n; i++) s += CpuMath.exp(x[xo + i] - shift);
        return s;
    }

    @Override
    void expShiftedScaled(float[] x, int xo, float[] out, int oo, int n, float shift, float mul) {
        for (int i = 0; i < n; i++) out[oo + i] = CpuMath.exp(x[xo + i] - shift) * mul;
    }

    @Override
    void rotatePairs(
            float[] x, int xo, float[] out, int oo, float[] cos, float[] sin, int to, int half, float direction) {
        for (int i = 0; i < half; i++) {
            float c = cos[to + i], sn = direction * sin[to + i];
            float x1 = x[xo + i], x2 = x[xo + i + half];
            out[oo + i] = x1 * c - x2 * sn;
            out[oo + i + half] = x2 * c + x1 * sn;
        }
    }

    @Override
    void mulScaled(float[] x, int xo, float[] w, int wo, float[] out, int oo, int n, float s) {
        for (int i = 0; i < n; i++) out[oo + i] = x[xo + i] * s * w[wo + i];
    }

    @Override
    float dot3(float[] g, int go, float[] w, int wo, float[] x, int xo, int n) {
        float s = 0f;
        for (int i = 0; i < n; i++) s += g[go + i] * w[wo + i] * x[xo + i];
        return s;
    }

    @Override
    void rmsNormBackwardRow(
            float[] g, int go, float[] w, int wo, float[] x, int xo, float r, float c, float[] dx, int dxo, int n) {
        for (int i = 0; i < n; i++) dx[dxo + i] = r * (w[wo + i] * g[go + i] - c * x[xo + i]);
    }

    @Override
    void accumulateScaledProduct(float[] g, int go, float[] x, int xo, float r, float[] acc, int ao, int n) {
        for (int i = 0; i < n; i++) acc[ao + i] += g[go + i] * x[xo + i] * r;
    }

    @Override
    void swiGluForward(float[] gate, int go, float[] up, int uo, float[] out, int oo, int n) {
        for (int i = 0; i < n; i++) {
            float gv = gate[go + i];
            float sig = CpuMath.sigmoid(gv);
            out[oo + i] = gv * sig * up[uo + i];
        }
    }

    @Override
    void swiGluBackward(
            float[] dOut,
            int dooff,
            float[] gate,
            int go,
            float[] up,
            int uo,
            float[] dGate,
            int dgo,
            float[] dUp,
            int duo,
            int n) {
        for (int i = 0; i < n; i++) {
            float gv = gate[go + i];
            float u = up[uo + i];
            float d = dOut[dooff + i];
            float sig = CpuMath.sigmoid(gv);
            float silu = gv * sig;
            dGate[dgo + i] = (d * u) * (sig * (1f + gv * (1f - sig)));
            dUp[duo + i] = d * silu;
        }
    }

    @Override
    void adamW(
            float[] p,
            int po,
            float[] g,
            int go,
            float[] m,
            int mo,
            float[] v,
            int vo,
            int n,
            float lr,
            float beta1,
            float beta2,
            float eps,
            float wd,
            float gradScale,
            float bc1,
            float bc2) {
        float oneMinusB1 = 1f - beta1;
        float oneMinusB2 = 1f - beta2;
        for (int i = 0; i < n; i++) {
            float gi = g[go + i] * gradScale;
            float mi = beta1 * m[mo + i] + oneMinusB1 * gi;
            float vi = beta2 * v[vo + i] + oneMinusB2 * gi * gi;
            m[mo + i] = mi;
            v[vo + i] = vi;
            float pi = p[po + i];
            float update = (mi / bc1) / ((float) Math.sqrt(vi / bc2) + eps) + wd * pi;
            p[po + i] = pi - lr * update;
        }
    }
}
