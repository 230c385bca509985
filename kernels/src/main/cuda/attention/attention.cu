// attention.cu: fused causal scaled-dot-product attention, flash style: no T x T matrix in memory.
// Forward: each block owns BQ query rows of one (batch, head), streams key/value tiles through shared
// memory and keeps a running max and sum (online softmax); it saves lse = max + log(sum) per row.
// Backward recomputes the probabilities from lse: one kernel per query tile for dq (which also saves
// delta = rowsum(P * dP)), then one per key tile for dk/dv (looping over the query heads of its kv group),
// so every gradient element is written by exactly one thread: deterministic, no atomics.
// Cached forward (generation): t new queries over a key/value cache of capacity C, one block per query row.
// Layouts: q, out, dq [B, T, H, hd]; k, v, dk, dv [B, T, Hkv, hd]; lse, delta [B, H, T]; cache [B, C, Hkv, hd].
// hd <= HD, the compiled head-dimension tile (32, 64 or 128), padded with zeros.
#include "mode_common.cuh"

namespace {

using namespace mode;

constexpr int kThreads = 128;

template <int HD>
struct Tiles {
    // tile rows for the tiles that share the budget
    static constexpr int rows = HD >= kLaunchAttentionHeadTileLarge ? kLaunchAttentionTileRowsLarge : kLaunchAttentionTileRows;
};

// tile[r][c] = element (t = row0 + r, head, c) of a [T, heads, hd] sequence, zero outside T and hd.
template <int ROWS, int HD, class T>
__device__ __forceinline__ void loadTile(float (*tile)[HD + 1], const T* seq, int row0, int seqLen, int heads, int head,
                                         int hd) {
    for (int idx = threadIdx.x; idx < ROWS * HD; idx += kThreads) {
        int r = idx / HD, c = idx % HD, t = row0 + r;
        tile[r][c] = (t < seqLen && c < hd) ? load(seq, ((long long)t * heads + head) * hd + c) : 0.0f;
    }
}

template <int HD>
__device__ __forceinline__ float rowDot(const float* a, const float* b) {
    float s = 0.0f;
#pragma unroll 8
    for (int d = 0; d < HD; d++) s = fmaf(a[d], b[d], s);
    return s;
}

// Reduction across the TPR consecutive lanes that share a row.
template <int TPR>
__device__ __forceinline__ float groupMax(float v) {
    for (int o = 1; o < TPR; o <<= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}
template <int TPR>
__device__ __forceinline__ float groupSum(float v) {
    for (int o = 1; o < TPR; o <<= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

// grid (ceil(T / 32), H, B), block 128: thread (row = tid / 4, sub = tid % 4) owns output columns
// sub + 4 i of its query row and key columns sub + 4 j of each score tile.
template <class T, int HD>
__device__ void attentionFwd(const T* q, const T* k, const T* v, T* out, float* lse, int B, int Tn, int H, int Hkv, int hd) {
    constexpr int BQ = kLaunchAttentionForwardRows, BK = Tiles<HD>::rows, TPR = kThreads / BQ, CPT = BK / TPR, DPT = HD / TPR;
    __shared__ float Qs[BQ][HD + 1];
    __shared__ float Ks[BK][HD + 1];
    __shared__ float Vs[BK][HD + 1];
    __shared__ float Ps[BQ][BK + 1];
    const int b = blockIdx.z, h = blockIdx.y, hk = h / (H / Hkv), q0 = blockIdx.x * BQ;
    const int row = threadIdx.x / TPR, sub = threadIdx.x % TPR, qrow = q0 + row;
    const long long qOff = (long long)b * Tn * H * hd, kOff = (long long)b * Tn * Hkv * hd;
    const float scale = __frsqrt_rn((float)hd);
    loadTile<BQ, HD>(Qs, q + qOff, q0, Tn, H, h, hd);
    float m = -infinity(), l = 0.0f, o[DPT];
#pragma unroll
    for (int i = 0; i < DPT; i++) o[i] = 0.0f;
    const int kEnd = min(Tn, q0 + BQ);
    for (int k0 = 0; k0 < kEnd; k0 += BK) {
        __syncthreads();  // Qs loaded; the previous K/V tile fully consumed
        loadTile<BK, HD>(Ks, k + kOff, k0, Tn, Hkv, hk, hd);
        loadTile<BK, HD>(Vs, v + kOff, k0, Tn, Hkv, hk, hd);
        __syncthreads();
        float s[CPT], tileMax = -infinity();
#pragma unroll
        for (int j = 0; j < CPT; j++) {
            int c = sub + TPR * j, kc = k0 + c;
            float dot = rowDot<HD>(Qs[row], Ks[c]) * scale;
            s[j] = (kc <= qrow && kc < Tn) ? dot : -infinity();
            tileMax = fmaxf(tileMax, s[j]);
        }
        const float mNew = fmaxf(m, groupMax<TPR>(tileMax));
        const float corr = mNew == -infinity() ? 1.0f : expf(m - mNew);
        float tileSum = 0.0f;
#pragma unroll
        for (int j = 0; j < CPT; j++) {
            float p = s[j] == -infinity() ? 0.0f : expf(s[j] - mNew);
            Ps[row][sub + TPR * j] = p;
            tileSum += p;
        }
        l = l * corr + groupSum<TPR>(tileSum);
        m = mNew;
        __syncwarp();  // the row's probabilities come from the TPR lanes of this warp
#pragma unroll
        for (int i = 0; i < DPT; i++) {
            int dcol = sub + TPR * i;
            float acc = 0.0f;
#pragma unroll 8
            for (int c = 0; c < BK; c++) acc = fmaf(Ps[row][c], Vs[c][dcol], acc);
            o[i] = o[i] * corr + acc;
        }
    }
    if (qrow < Tn) {
        const float inv = 1.0f / l;
        const long long base = qOff + ((long long)qrow * H + h) * hd;
#pragma unroll
        for (int i = 0; i < DPT; i++) {
            int dcol = sub + TPR * i;
            if (dcol < hd) store(out, base + dcol, o[i] * inv);
        }
        if (sub == 0) lse[((long long)b * H + h) * Tn + qrow] = m + logf(l);
    }
}

// dq = scale * sum_k dS K with dS = P (dP - delta), P = exp(S - lse), dP = dOut V^T. A first pass over the
// keys computes delta = sum_k P dP from the same P and dP as dS (consistent: the dS of a row sum to ~0),
// and saves it for the dk/dv kernel, which runs after this one.
// grid (ceil(T / BQ), H, B), block 128; thread (row, sub) as in the forward.
template <class T, int HD>
__device__ void attentionBwdDq(const T* dOut, const T* q, const T* k, const T* v, const float* lse, float* delta,
                               T* dq, int B, int Tn, int H, int Hkv, int hd) {
    constexpr int BQ = Tiles<HD>::rows, BK = Tiles<HD>::rows, TPR = kThreads / BQ, CPT = BK / TPR, DPT = HD / TPR;
    __shared__ float Qs[BQ][HD + 1];
    __shared__ float dOs[BQ][HD + 1];
    __shared__ float Ks[BK][HD + 1];
    __shared__ float Vs[BK][HD + 1];
    __shared__ float dSs[BQ][BK + 1];
    const int b = blockIdx.z, h = blockIdx.y, hk = h / (H / Hkv), q0 = blockIdx.x * BQ;
    const int row = threadIdx.x / TPR, sub = threadIdx.x % TPR, qrow = q0 + row;
    const long long qOff = (long long)b * Tn * H * hd, kOff = (long long)b * Tn * Hkv * hd;
    const float scale = __frsqrt_rn((float)hd);
    loadTile<BQ, HD>(Qs, q + qOff, q0, Tn, H, h, hd);
    loadTile<BQ, HD>(dOs, dOut + qOff, q0, Tn, H, h, hd);
    const long long statRow = ((long long)b * H + h) * Tn + qrow;
    const float lseRow = qrow < Tn ? lse[statRow] : 0.0f;
    const int kEnd = min(Tn, q0 + BQ);
    float partial = 0.0f;
    for (int k0 = 0; k0 < kEnd; k0 += BK) {
        __syncthreads();
        loadTile<BK, HD>(Ks, k + kOff, k0, Tn, Hkv, hk, hd);
        loadTile<BK, HD>(Vs, v + kOff, k0, Tn, Hkv, hk, hd);
        __syncthreads();
#pragma unroll
        for (int j = 0; j < CPT; j++) {
            int c = sub + TPR * j, kc = k0 + c;
            if (kc <= qrow && kc < Tn && qrow < Tn) {
                partial = fmaf(expf(rowDot<HD>(Qs[row], Ks[c]) * scale - lseRow), rowDot<HD>(dOs[row], Vs[c]), partial);
            }
        }
    }
    const float deltaRow = groupSum<TPR>(partial);
    if (sub == 0 && qrow < Tn) delta[statRow] = deltaRow;
    float acc[DPT];
#pragma unroll
    for (int i = 0; i < DPT; i++) acc[i] = 0.0f;
    for (int k0 = 0; k0 < kEnd; k0 += BK) {
        __syncthreads();
        loadTile<BK, HD>(Ks, k + kOff, k0, Tn, Hkv, hk, hd);
        loadTile<BK, HD>(Vs, v + kOff, k0, Tn, Hkv, hk, hd);
        __syncthreads();
#pragma unroll
        for (int j = 0; j < CPT; j++) {
            int c = sub + TPR * j, kc = k0 + c;
            bool valid = kc <= qrow && kc < Tn && qrow < Tn;
            float p = valid ? expf(rowDot<HD>(Qs[row], Ks[c]) * scale - lseRow) : 0.0f;
            float dp = rowDot<HD>(dOs[row], Vs[c]);
            dSs[row][c] = p * (dp - deltaRow);
        }
        __syncwarp();
#pragma unroll
        for (int i = 0; i < DPT; i++) {
            int dcol = sub + TPR * i;
            float a = 0.0f;
#pragma unroll 8
            for (int c = 0; c < BK; c++) a = fmaf(dSs[row][c], Ks[c][dcol], a);
            acc[i] += a;
        }
    }
    if (qrow < Tn) {
        const long long base = qOff + ((long long)qrow * H + h) * hd;
#pragma unroll
        for (int i = 0; i < DPT; i++) {
            int dcol = sub + TPR * i;
            if (dcol < hd) store(dq, base + dcol, acc[i] * scale);
        }
    }
}

// dv = sum_q P^T dOut and dk = scale * sum_q dS^T Q over every query head of the kv group and every query
// row at or after the key. grid (ceil(T / BKV), Hkv, B), block 128: thread (krow = tid / TPR, sub) owns
// columns sub + TPR i of key row krow.
template <class T, int HD>
__device__ void attentionBwdDkv(const T* dOut, const T* q, const T* k, const T* v, const float* lse, const float* delta,
                                T* dk, T* dv, int B, int Tn, int H, int Hkv, int hd) {
    constexpr int BKV = Tiles<HD>::rows, BQ = Tiles<HD>::rows, TPR = kThreads / BKV, QPT = BQ / TPR, DPT = HD / TPR;
    __shared__ float Ks[BKV][HD + 1];
    __shared__ float Vs[BKV][HD + 1];
    __shared__ float Qs[BQ][HD + 1];
    __shared__ float dOs[BQ][HD + 1];
    __shared__ float Ps[BQ][BKV + 1];
    __shared__ float dSs[BQ][BKV + 1];
    __shared__ float lseS[BQ];
    __shared__ float deltaS[BQ];
    const int b = blockIdx.z, hk = blockIdx.y, k0 = blockIdx.x * BKV, group = H / Hkv;
    const int krow = threadIdx.x / TPR, sub = threadIdx.x % TPR, kc = k0 + krow;
    const long long qOff = (long long)b * Tn * H * hd, kOff = (long long)b * Tn * Hkv * hd;
    const float scale = __frsqrt_rn((float)hd);
    loadTile<BKV, HD>(Ks, k + kOff, k0, Tn, Hkv, hk, hd);
    loadTile<BKV, HD>(Vs, v + kOff, k0, Tn, Hkv, hk, hd);
    float accK[DPT], accV[DPT];
#pragma unroll
    for (int i = 0; i < DPT; i++) accK[i] = accV[i] = 0.0f;
    for (int g = 0; g < group; g++) {
        const int h = hk * group + g;
        for (int q0 = (k0 / BQ) * BQ; q0 < Tn; q0 += BQ) {
            __syncthreads();
            loadTile<BQ, HD>(Qs, q + qOff, q0, Tn, H, h, hd);
            loadTile<BQ, HD>(dOs, dOut + qOff, q0, Tn, H, h, hd);
            if (threadIdx.x < BQ) {
                int t = q0 + threadIdx.x;
                long long stat = ((long long)b * H + h) * Tn + t;
                lseS[threadIdx.x] = t < Tn ? lse[stat] : 0.0f;
                deltaS[threadIdx.x] = t < Tn ? delta[stat] : 0.0f;
            }
            __syncthreads();
#pragma unroll
            for (int j = 0; j < QPT; j++) {
                int r = sub + TPR * j, qr = q0 + r;
                bool valid = kc <= qr && qr < Tn && kc < Tn;
                float p = valid ? expf(rowDot<HD>(Qs[r], Ks[krow]) * scale - lseS[r]) : 0.0f;
                float dp = rowDot<HD>(dOs[r], Vs[krow]);
                Ps[r][krow] = p;
                dSs[r][krow] = p * (dp - deltaS[r]);
            }
            __syncwarp();  // column krow comes from the TPR lanes of this warp
#pragma unroll
            for (int i = 0; i < DPT; i++) {
                int dcol = sub + TPR * i;
                float av = 0.0f, ak = 0.0f;
#pragma unroll 8
                for (int r = 0; r < BQ; r++) {
                    av = fmaf(Ps[r][krow], dOs[r][dcol], av);
                    ak = fmaf(dSs[r][krow], Qs[r][dcol], ak);
                }
                accV[i] += av;
                accK[i] += ak;
            }
        }
    }
    if (kc < Tn) {
        const long long base = kOff + ((long long)kc * Hkv + hk) * hd;
#pragma unroll
        for (int i = 0; i < DPT; i++) {
            int dcol = sub + TPR * i;
            if (dcol < hd) {
                store(dk, base + dcol, accK[i] * scale);
                store(dv, base + dcol, accV[i]);
            }
        }
    }
}

// Queries of positions [length - Tn, length) over the first rows of a key/value cache kc, vc [B, cap, Hkv, hd].
// grid (Tn, H, B), block 128 = 4 warps: the block owns query row i of head h. Warp w takes the keys w, w + 4, ...
// in ascending order with an online softmax; per key its 32 lanes each multiply the dims lane + 32 j, a warp sum
// gives the score, and lane l keeps the running output of its dims. The four warps' (max, sum, output) are then
// merged in warp order, so the result does not depend on scheduling.
constexpr int kCachedWarps = kThreads / 32;

template <class T, int HD>
__device__ void attentionCachedFwd(const T* q, const T* kc, const T* vc, T* out, int B, int Tn, int H, int Hkv, int hd,
                                   int cap, int length) {
    constexpr int DPL = HD / 32;
    __shared__ float mS[kCachedWarps];
    __shared__ float lS[kCachedWarps];
    __shared__ float oS[kCachedWarps][HD];
    const int i = blockIdx.x, h = blockIdx.y, b = blockIdx.z, hk = h / (H / Hkv);
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, keys = length - Tn + i + 1;
    const float scale = __frsqrt_rn((float)hd);
    const long long qBase = (((long long)b * Tn + i) * H + h) * hd;
    float qr[DPL], o[DPL];
#pragma unroll
    for (int j = 0; j < DPL; j++) {
        int d = lane + 32 * j;
        qr[j] = d < hd ? load(q, qBase + d) : 0.0f;
        o[j] = 0.0f;
    }
    float m = -infinity(), l = 0.0f;
    for (int key = warp; key < keys; key += kCachedWarps) {
        const long long kBase = (((long long)b * cap + key) * Hkv + hk) * hd;
        float part = 0.0f;
#pragma unroll
        for (int j = 0; j < DPL; j++) {
            int d = lane + 32 * j;
            if (d < hd) part = fmaf(qr[j], load(kc, kBase + d), part);
        }
        const float s = warpSum(part) * scale;
        const float mNew = fmaxf(m, s);
        const float corr = m == -infinity() ? 0.0f : expf(m - mNew);
        const float p = expf(s - mNew);
        l = l * corr + p;
#pragma unroll
        for (int j = 0; j < DPL; j++) {
            int d = lane + 32 * j;
            o[j] = o[j] * corr + (d < hd ? p * load(vc, kBase + d) : 0.0f);
        }
        m = mNew;
    }
    if (lane == 0) {
        mS[warp] = m;
        lS[warp] = l;
    }
#pragma unroll
    for (int j = 0; j < DPL; j++) oS[warp][lane + 32 * j] = o[j];
    __syncthreads();
    float mAll = mS[0];
    for (int w = 1; w < kCachedWarps; w++) mAll = fmaxf(mAll, mS[w]);
    float lAll = 0.0f;
    for (int w = 0; w < kCachedWarps; w++) lAll += mS[w] == -infinity() ? 0.0f : lS[w] * expf(mS[w] - mAll);
    const float inv = 1.0f / lAll;
    for (int d = threadIdx.x; d < hd; d += kThreads) {
        float acc = 0.0f;
        for (int w = 0; w < kCachedWarps; w++)
            if (mS[w] != -infinity()) acc = fmaf(oS[w][d], expf(mS[w] - mAll), acc);
        store(out, qBase + d, acc * inv);
    }
}

}  // namespace

// Entry points, one per head-dimension tile and storage type. fwd and bwddq: grid (ceil(T / rows), H, B);
// bwddkv: grid (ceil(T / rows), Hkv, B); rows = 32 (fwd) or Tiles<HD>::rows (backward); cachedfwd: grid (t, H, B);
// block 128.
extern "C" __global__ void __launch_bounds__(128) mode_attention32_fwd_f32(const float* q, const float* k, const float* v, float* out, float* lse, int B, int Tn, int H, int Hkv, int hd) { attentionFwd<float, 32>(q, k, v, out, lse, B, Tn, H, Hkv, hd); }
extern "C" __global__ void __launch_bounds__(128) mode_attention32_bwddq_f32(const float* dOut, const float* q, const float* k, const float* v, const float* lse, float* delta, float* dq, int B, int Tn, int H, int Hkv, int hd) { attentionBwdDq<float, 32>(dOut, q, k, v, lse, delta, dq, B, Tn, H, Hkv, hd); }
extern "C" __global__ void __launch_bounds__(128) mode_attention32_bwddkv_f32(const float* dOut, const float* q, const float* k, const float* v, const float* lse, const float* delta, float* dk, float* dv, int B, int Tn, int H, int Hkv, int hd) { attentionBwdDkv<float, 32>(dOut, q, k, v, lse, delta, dk, dv, B, Tn, H, Hkv, hd); }
extern "C" __global__ void __launch_bounds__(128) mode_attention64_fwd_f32(const float* q, const float* k, const float* v, float* out, float* lse, int B, int Tn, int H, int Hkv, int hd) { attentionFwd<float, 64>(q, k, v, out, lse, B, Tn, H, Hkv, hd); }
extern "C" __global__ void __launch_bounds__(128) mode_attention64_bwddq_f32(const float* dOut, const float* q, const float* k, const float* v, const float* lse, float* delta, float* dq, int B, int Tn, int H, int Hkv, int hd) { attentionBwdDq<float, 64>(dOut, q, k, v, lse, delta, dq, B, Tn, H, Hkv, hd); }
extern "C" __global__ void __launch_bounds__(128) mode_attention64_bwddkv_f32(const float* dOut, const float* q, const float* k, const float* v, const float* lse, const float* delta, float* dk, float* dv, int B, int Tn, int H, int Hkv, int hd) { attentionBwdDkv<float, 64>(dOut, q, k, v, lse, delta, dk, dv, B, Tn, H, Hkv, hd); }
extern "C" __global__ void __launch_bounds__(128) mode_attention128_fwd_f32(const float* q, const float* k, const float* v, float* out, float* lse, int B, int Tn, int H, int Hkv, int hd) { attentionFwd<float, 128>(q, k, v, out, lse, B, Tn, H, Hkv, hd); }
extern "C" __global__ void __launch_bounds__(128) mode_attention128_bwddq_f32(const float* dOut, const float* q, const float* k, const float* v, const float* lse, float* delta, float* dq, int B, int Tn, int H, int Hkv, int hd) { attentionBwdDq<float, 128>(dOut, q, k, v, lse, delta, dq, B, Tn, H, Hkv, hd); }
extern "C" __global__ void __launch_bounds__(128) mode_attention128_bwddkv_f32(const float* dOut, const float* q, const float* k, const float* v, const float* lse, const float* delta, float* dk, float* dv, int B, int Tn, int H, int Hkv, int hd) { attentionBwdDkv<float, 128>(dOut, q, k, v, lse, delta, dk, dv, B, Tn, H, Hkv, hd); }
extern "C" __global__ void __launch_bounds__(128) mode_attention32_fwd_bf16(const bf16* q, const bf16* k, const bf16* v, bf16* out, float* lse, int B, int Tn, int H, int Hkv, int hd) { attentionFwd<bf16, 32>(q, k, v, out, lse, B, Tn, H, Hkv, hd); }
extern "C" __global__ void __launch_bounds__(128) mode_attention32_bwddq_bf16(const bf16* dOut, const bf16* q, const bf16* k, const bf16* v, const float* lse, float* delta, bf16* dq, int B, int Tn, int H, int Hkv, int hd) { attentionBwdDq<bf16, 32>(dOut, q, k, v, lse, delta, dq, B, Tn, H, Hkv, hd); }
extern "C" __global__ void __launch_bounds__(128) mode_attention32_bwddkv_bf16(const bf16* dOut, const bf16* q, const bf16* k, const bf16* v, const float* lse, const float* delta, bf16* dk, bf16* dv, int B, int Tn, int H, int Hkv, int hd) { attentionBwdDkv<bf16, 32>(dOut, q, k, v, lse, delta, dk, dv, B, Tn, H, Hkv, hd); }
extern "C" __global__ void __launch_bounds__(128) mode_attention64_fwd_bf16(const bf16* q, const bf16* k, const bf16* v, bf16* out, float* lse, int B, int Tn, int H, int Hkv, int hd) { attentionFwd<bf16, 64>(q, k, v, out, lse, B, Tn, H, Hkv, hd); }
extern "C" __global__ void __launch_bounds__(128) mode_attention64_bwddq_bf16(const bf16* dOut, const bf16* q, const bf16* k, const bf16* v, const float* lse, float* delta, bf16* dq, int B, int Tn, int H, int Hkv, int hd) { attentionBwdDq<bf16, 64>(dOut, q, k, v, lse, delta, dq, B, Tn, H, Hkv, hd); }
extern "C" __global__ void __launch_bounds__(128) mode_attention64_bwddkv_bf16(const bf16* dOut, const bf16* q, const bf16* k, const bf16* v, const float* lse, const float* delta, bf16* dk, bf16* dv, int B, int Tn, int H, int Hkv, int hd) { attentionBwdDkv<bf16, 64>(dOut, q, k, v, lse, delta, dk, dv, B, Tn, H, Hkv, hd); }
extern "C" __global__ void __launch_bounds__(128) mode_attention128_fwd_bf16(const bf16* q, const bf16* k, const bf16* v, bf16* out, float* lse, int B, int Tn, int H, int Hkv, int hd) { attentionFwd<bf16, 128>(q, k, v, out, lse, B, Tn, H, Hkv, hd); }
extern "C" __global__ void __launch_bounds__(128) mode_attention128_bwddq_bf16(const bf16* dOut, const bf16* q, const bf16* k, const bf16* v, const float* lse, float* delta, bf16* dq, int B, int Tn, int H, int Hkv, int hd) { attentionBwdDq<bf16, 128>(dOut, q, k, v, lse, delta, dq, B, Tn, H, Hkv, hd); }
extern "C" __global__ void __launch_bounds__(128) mode_attention128_bwddkv_bf16(const bf16* dOut, const bf16* q, const bf16* k, const bf16* v, const float* lse, const float* delta, bf16* dk, bf16* dv, int B, int Tn, int H, int Hkv, int hd) { attentionBwdDkv<bf16, 128>(dOut, q, k, v, lse, delta, dk, dv, B, Tn, H, Hkv, hd); }
extern "C" __global__ void __launch_bounds__(128) mode_attention32_cachedfwd_f32(const float* q, const float* kc, const float* vc, float* out, int B, int Tn, int H, int Hkv, int hd, int cap, int length) { attentionCachedFwd<float, 32>(q, kc, vc, out, B, Tn, H, Hkv, hd, cap, length); }
extern "C" __global__ void __launch_bounds__(128) mode_attention64_cachedfwd_f32(const float* q, const float* kc, const float* vc, float* out, int B, int Tn, int H, int Hkv, int hd, int cap, int length) { attentionCachedFwd<float, 64>(q, kc, vc, out, B, Tn, H, Hkv, hd, cap, length); }
extern "C" __global__ void __launch_bounds__(128) mode_attention128_cachedfwd_f32(const float* q, const float* kc, const float* vc, float* out, int B, int Tn, int H, int Hkv, int hd, int cap, int length) { attentionCachedFwd<float, 128>(q, kc, vc, out, B, Tn, H, Hkv, hd, cap, length); }
extern "C" __global__ void __launch_bounds__(128) mode_attention32_cachedfwd_bf16(const bf16* q, const bf16* kc, const bf16* vc, bf16* out, int B, int Tn, int H, int Hkv, int hd, int cap, int length) { attentionCachedFwd<bf16, 32>(q, kc, vc, out, B, Tn, H, Hkv, hd, cap, length); }
extern "C" __global__ void __launch_bounds__(128) mode_attention64_cachedfwd_bf16(const bf16* q, const bf16* kc, const bf16* vc, bf16* out, int B, int Tn, int H, int Hkv, int hd, int cap, int length) { attentionCachedFwd<bf16, 64>(q, kc, vc, out, B, Tn, H, Hkv, hd, cap, length); }
extern "C" __global__ void __launch_bounds__(128) mode_attention128_cachedfwd_bf16(const bf16* q, const bf16* kc, const bf16* vc, bf16* out, int B, int Tn, int H, int Hkv, int hd, int cap, int length) { attentionCachedFwd<bf16, 128>(q, kc, vc, out, B, Tn, H, Hkv, hd, cap, length); }
