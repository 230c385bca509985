// attention_wmma.cu: causal scaled-dot-product attention on bf16 tensor cores (WMMA m16n16k16 with float32
// accumulation), FlashAttention-2 work split; the CUDA-core kernels of attention.cu stay the reference and the
// fallback (float32 tensors, devices below sm_80). Every warp owns 16 rows of its block's tile:
//  - forward: one query tile per block, 16 query rows per warp; key/value tiles stream through shared memory;
//    online softmax in float32 (running max and sum per row), saves lse = max + log(sum);
//  - dq: the same split (query rows per warp, keys streamed), P = exp(S - lse) recomputed; a first pass computes
//    delta = rowsum(P * dP) from the same P and dP (saved: the dk/dv kernel reads it), a second one dq;
//  - dk/dv: key/value tiles outer (16 key rows per warp), query tiles streamed, looping over the query heads of
//    the kv group (GQA). dq gets its own kernel instead of atomics: every gradient element is written once, in a
//    fixed order (deterministic), at the cost of recomputing S and dP there (9 products instead of 5 with delta).
// Operands of every product are bf16 (q, k, v, dOut as stored; P and dS rounded to bf16), sums and softmax
// statistics float32. Key tiles after the last query row of a warp, and 16-column fragments of them, are skipped
// (causal), as are rows past the sequence end (ragged tails read zeros). head dim hd <= HD, the compiled tile
// (32, 64 or 128), zero-padded. Elementwise work on accumulator fragments finds each element's (row, column)
// through a position fragment loaded from a 16 x 16 table (WMMA's element layout is unspecified, but the same for
// every accumulator of one type). Layouts: q, out, dq [B, T, H, hd]; k, v, dk, dv [B, T, Hkv, hd]; lse, delta
// [B, H, T].
#include "mode_common.cuh"
#ifndef MODE_EMU
#include <mma.h>
#endif

namespace {

using namespace mode;
using namespace nvcuda;

using FragA = wmma::fragment<wmma::matrix_a, 16, 16, 16, bf16, wmma::row_major>;
using FragB = wmma::fragment<wmma::matrix_b, 16, 16, 16, bf16, wmma::row_major>;
using FragBt = wmma::fragment<wmma::matrix_b, 16, 16, 16, bf16, wmma::col_major>;  // B = (row-major tile)^T
using FragC = wmma::fragment<wmma::accumulator, 16, 16, 16, float>;

constexpr int kRows = 16;  // rows of one fragment: the rows a warp owns

// Eight bf16 moved as one 16-byte word (tile loads when hd is a multiple of 8 and the rows are aligned).
struct __align__(16) Bf16x8 {
    unsigned w[4];
};

// tile[r * (HD + 8) + c] = element (t = row0 + r, head, c) of a [T, heads, hd] sequence, zero outside T and hd.
template <int ROWS, int HD, int NT>
__device__ __forceinline__ void loadTile(bf16* tile, const bf16* seq, int row0, int seqLen, int heads, int head, int hd) {
    constexpr int LD = HD + 8;
    const long long rowStride = (long long)heads * hd;
    const bf16* base = seq + (long long)head * hd;
    if ((hd & 7) == 0 && (reinterpret_cast<unsigned long long>(seq) & 15) == 0) {
        const Bf16x8 zero = {{0u, 0u, 0u, 0u}};
        for (int idx = threadIdx.x; idx < ROWS * (HD / 8); idx += NT) {
            int r = idx / (HD / 8), c = (idx % (HD / 8)) * 8, t = row0 + r;
            *reinterpret_cast<Bf16x8*>(tile + r * LD + c) =
                (t < seqLen && c < hd) ? *reinterpret_cast<const Bf16x8*>(base + t * rowStride + c) : zero;
        }
    } else {
        const bf16 zero = __float2bfloat16(0.0f);
        for (int idx = threadIdx.x; idx < ROWS * HD; idx += NT) {
            int r = idx / HD, c = idx % HD, t = row0 + r;
            tile[r * LD + c] = (t < seqLen && c < hd) ? base[t * rowStride + c] : zero;
        }
    }
}

// positions[i] = i for the 16 x 16 table that the position fragment is loaded from (row * 16 + column).
template <int NT>
__device__ __forceinline__ void fillPositions(float* positions) {
    for (int i = threadIdx.x; i < kRows * kRows; i += NT) positions[i] = (float)i;
}

__device__ __forceinline__ int rowOf(float position) { return (int)position >> 4; }
__device__ __forceinline__ int colOf(float position) { return (int)position & 15; }

// Stores acc * rowScale[row] (times colScale) as bf16 into rows row0 + r < T, columns col0 + c < hd of a
// [T, heads, hd] sequence, each element by the lane that holds it.
template <int KF>
__device__ __forceinline__ void storeRows(bf16* seq, const FragC (&acc)[KF], const FragC& pos, const float* rowScale,
                                          float scale, int row0, int seqLen, int heads, int head, int hd) {
#pragma unroll
    for (int f = 0; f < KF; f++) {
#pragma unroll
        for (int i = 0; i < pos.num_elements; i++) {
            int r = rowOf(pos.x[i]), col = f * 16 + colOf(pos.x[i]), t = row0 + r;
            if (t < seqLen && col < hd) {
                float s = rowScale ? rowScale[r] : 1.0f;
                seq[((long long)t * heads + head) * hd + col] = __float2bfloat16(acc[f].x[i] * s * scale);
            }
        }
    }
}

// ---------------------------------------------------------------- forward
// grid (ceil(T / 64), H, B), block 128 (4 warps x 16 query rows). Lanes 2r and 2r + 1 keep row r's running
// max and sum and take the even / odd columns of each score tile.
template <int HD>
__device__ void attentionWmmaFwd(const bf16* q, const bf16* k, const bf16* v, bf16* out, float* lse, int B, int Tn,
                                 int H, int Hkv, int hd) {
    constexpr int WARPS = 4, NT = WARPS * 32, BQ = WARPS * kRows, BK = 32, LD = HD + 8, LDS = BK + 4, LDP = BK + 8;
    constexpr int KF = HD / 16, JF = BK / 16;
    static_assert(BQ <= 2 * BK, "the query tile is staged in the key/value buffer");
    __shared__ __align__(32) bf16 KVs[2 * BK * LD];  // K tile, then V tile (the Q tile before the key loop)
    __shared__ __align__(32) float Ss[WARPS][kRows * LDS];
    __shared__ __align__(32) bf16 Ps[WARPS][kRows * LDP];
    __shared__ __align__(32) float positions[kRows * kRows];
    __shared__ float rowScale[WARPS][kRows];
    bf16* Ks = KVs;
    bf16* Vs = KVs + BK * LD;
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const int b = blockIdx.z, h = blockIdx.y, hk = h / (H / Hkv), q0 = blockIdx.x * BQ, qw0 = q0 + warp * kRows;
    const long long qOff = (long long)b * Tn * H * hd, kOff = (long long)b * Tn * Hkv * hd;
    const float scale = rsqrtf((float)hd);
    float* S = Ss[warp];
    bf16* P = Ps[warp];
    const int row = lane >> 1, half = lane & 1, qrow = qw0 + row;
    const bool active = qw0 < Tn;

    fillPositions<NT>(positions);
    loadTile<BQ, HD, NT>(KVs, q + qOff, q0, Tn, H, h, hd);
    __syncthreads();
    FragA qf[KF];
#pragma unroll
    for (int kk = 0; kk < KF; kk++) wmma::load_matrix_sync(qf[kk], KVs + warp * kRows * LD + kk * 16, LD);
    FragC pos, o[KF];
    wmma::load_matrix_sync(pos, positions, kRows, wmma::mem_row_major);
#pragma unroll
    for (int f = 0; f < KF; f++) wmma::fill_fragment(o[f], 0.0f);
    float m = -infinity(), l = 0.0f;

    const int kEnd = min(Tn, q0 + BQ);
    for (int k0 = 0; k0 < kEnd; k0 += BK) {
        __syncthreads();  // Q fragments loaded; the previous K/V tile consumed
        loadTile<BK, HD, NT>(Ks, k + kOff, k0, Tn, Hkv, hk, hd);
        loadTile<BK, HD, NT>(Vs, v + kOff, k0, Tn, Hkv, hk, hd);
        __syncthreads();
        if (!active || k0 > qw0 + kRows - 1) continue;  // every key of the tile is after the warp's last query
        // S = Q K^T (16 x BK); fragments of keys after the warp's last query are skipped (their scores are masked).
#pragma unroll
        for (int j = 0; j < JF; j++) {
            if (k0 + 16 * j > qw0 + kRows - 1) continue;
            FragC s;
            wmma::fill_fragment(s, 0.0f);
#pragma unroll
            for (int kk = 0; kk < KF; kk++) {
                FragBt kf;
                wmma::load_matrix_sync(kf, Ks + j * 16 * LD + kk * 16, LD);
                wmma::mma_sync(s, qf[kk], kf, s);
            }
            wmma::store_matrix_sync(S + j * 16, s, LDS, wmma::mem_row_major);
        }
        __syncwarp();
        // Online softmax of row `row` over this tile: P = exp(S * scale - mNew) as the bf16 operand of P V. The scores
        // are read twice from shared memory rather than held in registers (the head-128 tile's budget).
        const int cEnd = min(BK, min(qrow, Tn - 1) - k0 + 1);  // this row's unmasked columns: c < cEnd
        float tileMax = -infinity();
        for (int c = half; c < cEnd; c += 2) tileMax = fmaxf(tileMax, S[row * LDS + c] * scale);
        tileMax = fmaxf(tileMax, __shfl_xor_sync(0xffffffffu, tileMax, 1));
        const float mNew = fmaxf(m, tileMax);
        const float corr = mNew == -infinity() ? 1.0f : expf(m - mNew);
        float sum = 0.0f;
#pragma unroll 1
        for (int c = half; c < BK; c += 2) {
            float p = c < cEnd ? expf(S[row * LDS + c] * scale - mNew) : 0.0f;
            P[row * LDP + c] = __float2bfloat16(p);
            sum += p;
        }
        sum += __shfl_xor_sync(0xffffffffu, sum, 1);
        l = l * corr + sum;
        m = mNew;
        if (half == 0) rowScale[warp][row] = corr;
        __syncwarp();
        // O = O * corr + P V
#pragma unroll
        for (int f = 0; f < KF; f++) {
#pragma unroll
            for (int i = 0; i < pos.num_elements; i++) o[f].x[i] *= rowScale[warp][rowOf(pos.x[i])];
        }
#pragma unroll
        for (int kk = 0; kk < JF; kk++) {
            if (k0 + 16 * kk > qw0 + kRows - 1) continue;
            FragA pf;
            wmma::load_matrix_sync(pf, P + kk * 16, LDP);
#pragma unroll
            for (int f = 0; f < KF; f++) {
                FragB vf;
                wmma::load_matrix_sync(vf, Vs + kk * 16 * LD + f * 16, LD);
                wmma::mma_sync(o[f], pf, vf, o[f]);
            }
        }
        __syncwarp();  // P and rowScale are rewritten by the next tile
    }
    if (half == 0) rowScale[warp][row] = qrow < Tn ? 1.0f / l : 0.0f;
    __syncwarp();
    if (active) storeRows<KF>(out + qOff, o, pos, rowScale[warp], 1.0f, qw0, Tn, H, h, hd);
    if (half == 0 && qrow < Tn) lse[((long long)b * H + h) * Tn + qrow] = m + logf(l);
}

// ---------------------------------------------------------------- backward: dq (and delta)
// S and dP of one 16 x 16 fragment (rows qw0.., keys of fragment j of the K/V tile): P = exp(S * scale - lse).
template <int KF, int LD>
__device__ __forceinline__ void scoresAndDp(FragC& s, FragC& dp, const FragA (&qf)[KF], const FragA (&df)[KF],
                                            const bf16* Ks, const bf16* Vs, int j) {
    wmma::fill_fragment(s, 0.0f);
    wmma::fill_fragment(dp, 0.0f);
#pragma unroll
    for (int kk = 0; kk < KF; kk++) {
        FragBt kf, vf;
        wmma::load_matrix_sync(kf, Ks + j * 16 * LD + kk * 16, LD);
        wmma::mma_sync(s, qf[kk], kf, s);
        wmma::load_matrix_sync(vf, Vs + j * 16 * LD + kk * 16, LD);
        wmma::mma_sync(dp, df[kk], vf, dp);
    }
}

// dq = scale * sum_k dS K with dS = P (dP - delta), P = exp(S * scale - lse), dP = dOut V^T. A first pass over the
// keys computes delta = sum_k P dP from the same P and dP as dS (consistent: each row of dS sums to ~0; the usual
// rowsum(dOut * out) reads the bf16-rounded output and measured up to 3.4x the naive-bf16 error on dq) and saves it
// for the dk/dv kernel, at the cost of S and dP twice (5 products here). grid (ceil(T / 64), H, B), block 128 (4
// warps x 16 query rows).
template <int HD>
__device__ void attentionWmmaBwdDq(const bf16* dOut, const bf16* q, const bf16* k, const bf16* v, const float* lse,
                                   float* delta, bf16* dq, int B, int Tn, int H, int Hkv, int hd) {
    constexpr int WARPS = 4, NT = WARPS * 32, BQ = WARPS * kRows, BK = 32, LD = HD + 8, LDP = BK + 8, LDR = kRows + 1;
    constexpr int KF = HD / 16, JF = BK / 16;
    static_assert(BQ <= 2 * BK && NT == 2 * BQ, "staging and statistics layout");
    __shared__ __align__(32) bf16 KVs[2 * BK * LD];  // K tile, then V tile (Q, then dOut, before the key loops)
    __shared__ __align__(32) bf16 dSs[WARPS][kRows * LDP];
    __shared__ float rowParts[WARPS][kRows * LDR];  // P dP of one fragment, summed per row for delta
    __shared__ __align__(32) float positions[kRows * kRows];
    __shared__ float lseW[WARPS][kRows], deltaW[WARPS][kRows];
    bf16* Ks = KVs;
    bf16* Vs = KVs + BK * LD;
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const int b = blockIdx.z, h = blockIdx.y, hk = h / (H / Hkv), q0 = blockIdx.x * BQ, qw0 = q0 + warp * kRows;
    const long long qOff = (long long)b * Tn * H * hd, kOff = (long long)b * Tn * Hkv * hd;
    const float scale = rsqrtf((float)hd);
    bf16* dS = dSs[warp];
    float* parts = rowParts[warp];
    const int prow = lane >> 1, phalf = lane & 1;  // lanes 2r, 2r + 1: columns 0-7, 8-15 of row r (delta)
    const bool active = qw0 < Tn;

    if ((threadIdx.x & 1) == 0) {  // thread 2r (in row r's warp) loads row r's lse
        const int r = threadIdx.x >> 1, t = q0 + r;
        lseW[r / kRows][r % kRows] = t < Tn ? lse[((long long)b * H + h) * Tn + t] : 0.0f;
    }
    fillPositions<NT>(positions);
    FragA qf[KF], df[KF];
    loadTile<BQ, HD, NT>(KVs, q + qOff, q0, Tn, H, h, hd);
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < KF; kk++) wmma::load_matrix_sync(qf[kk], KVs + warp * kRows * LD + kk * 16, LD);
    __syncthreads();
    loadTile<BQ, HD, NT>(KVs, dOut + qOff, q0, Tn, H, h, hd);
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < KF; kk++) wmma::load_matrix_sync(df[kk], KVs + warp * kRows * LD + kk * 16, LD);
    FragC pos;
    wmma::load_matrix_sync(pos, positions, kRows, wmma::mem_row_major);

    const int kEnd = min(Tn, q0 + BQ);
    float part = 0.0f;
    for (int k0 = 0; k0 < kEnd; k0 += BK) {  // pass 1: delta
        __syncthreads();  // staging consumed; the previous K/V tile consumed
        loadTile<BK, HD, NT>(Ks, k + kOff, k0, Tn, Hkv, hk, hd);
        loadTile<BK, HD, NT>(Vs, v + kOff, k0, Tn, Hkv, hk, hd);
        __syncthreads();
        if (!active || k0 > qw0 + kRows - 1) continue;
#pragma unroll
        for (int j = 0; j < JF; j++) {
            if (k0 + 16 * j > qw0 + kRows - 1) continue;
            FragC s, dp;
            scoresAndDp<KF, LD>(s, dp, qf, df, Ks, Vs, j);
#pragma unroll
            for (int i = 0; i < pos.num_elements; i++) {
                int r = rowOf(pos.x[i]), c = colOf(pos.x[i]), t = qw0 + r, kc = k0 + 16 * j + c;
                float p = (t < Tn && kc <= t && kc < Tn) ? expf(s.x[i] * scale - lseW[warp][r]) : 0.0f;
                parts[r * LDR + c] = p * dp.x[i];
            }
            __syncwarp();
#pragma unroll
            for (int c = 0; c < 8; c++) part += parts[prow * LDR + phalf * 8 + c];
            __syncwarp();  // parts is rewritten by the next fragment
        }
    }
    part += __shfl_xor_sync(0xffffffffu, part, 1);
    if (phalf == 0) {
        const int t = qw0 + prow;
        deltaW[warp][prow] = t < Tn ? part : 0.0f;
        if (t < Tn) delta[((long long)b * H + h) * Tn + t] = part;
    }
    __syncwarp();

    FragC acc[KF];
#pragma unroll
    for (int f = 0; f < KF; f++) wmma::fill_fragment(acc[f], 0.0f);
    for (int k0 = 0; k0 < kEnd; k0 += BK) {  // pass 2: dq
        __syncthreads();
        loadTile<BK, HD, NT>(Ks, k + kOff, k0, Tn, Hkv, hk, hd);
        loadTile<BK, HD, NT>(Vs, v + kOff, k0, Tn, Hkv, hk, hd);
        __syncthreads();
        if (!active || k0 > qw0 + kRows - 1) continue;
#pragma unroll
        for (int j = 0; j < JF; j++) {
            if (k0 + 16 * j > qw0 + kRows - 1) continue;
            FragC s, dp;
            scoresAndDp<KF, LD>(s, dp, qf, df, Ks, Vs, j);
#pragma unroll
            for (int i = 0; i < pos.num_elements; i++) {
                int r = rowOf(pos.x[i]), c = colOf(pos.x[i]), t = qw0 + r, kc = k0 + 16 * j + c;
                float p = (t < Tn && kc <= t && kc < Tn) ? expf(s.x[i] * scale - lseW[warp][r]) : 0.0f;
                dS[r * LDP + 16 * j + c] = __float2bfloat16(p * (dp.x[i] - deltaW[warp][r]));
            }
        }
        __syncwarp();
#pragma unroll
        for (int kk = 0; kk < JF; kk++) {
            if (k0 + 16 * kk > qw0 + kRows - 1) continue;
            FragA sf;
            wmma::load_matrix_sync(sf, dS + kk * 16, LDP);
#pragma unroll
            for (int f = 0; f < KF; f++) {
                FragB kf;
                wmma::load_matrix_sync(kf, Ks + kk * 16 * LD + f * 16, LD);
                wmma::mma_sync(acc[f], sf, kf, acc[f]);
            }
        }
        __syncwarp();  // dS is rewritten by the next tile
    }
    if (active) storeRows<KF>(dq + qOff, acc, pos, nullptr, scale, qw0, Tn, H, h, hd);
}

// ---------------------------------------------------------------- backward: dk, dv
// dv = sum_q P^T dOut, dk = scale * sum_q dS^T Q over every query head of the kv group and every query row at or
// after the key. grid (ceil(T / (16 WARPS)), Hkv, B), block 32 WARPS (16 key rows per warp); K and V stay in
// shared memory, query tiles of 32 rows stream through it. 2 warps for the 128 tile (shared-memory budget).
template <int HD>
struct DkvWarps {
    static constexpr int value = HD >= 128 ? 2 : 4;
};

template <int HD>
__device__ void attentionWmmaBwdDkv(const bf16* dOut, const bf16* q, const bf16* k, const bf16* v, const float* lse,
                                    const float* delta, bf16* dk, bf16* dv, int B, int Tn, int H, int Hkv, int hd) {
    constexpr int WARPS = DkvWarps<HD>::value, NT = WARPS * 32, BKV = WARPS * kRows, BQ = 32, LD = HD + 8;
    constexpr int LDP = BQ + 8, KF = HD / 16, JF = BQ / 16;
    static_assert(BQ <= NT, "one thread per query row loads the statistics");
    __shared__ __align__(32) bf16 Ks[BKV * LD];
    __shared__ __align__(32) bf16 Vs[BKV * LD];
    __shared__ __align__(32) bf16 Qs[BQ * LD];
    __shared__ __align__(32) bf16 dOs[BQ * LD];
    __shared__ __align__(32) bf16 PTs[WARPS][kRows * LDP];
    __shared__ __align__(32) bf16 dSTs[WARPS][kRows * LDP];
    __shared__ __align__(32) float positions[kRows * kRows];
    __shared__ float lseS[BQ], deltaS[BQ];
    const int warp = threadIdx.x / 32;
    const int b = blockIdx.z, hk = blockIdx.y, k0 = blockIdx.x * BKV, kw0 = k0 + warp * kRows, group = H / Hkv;
    const long long qOff = (long long)b * Tn * H * hd, kOff = (long long)b * Tn * Hkv * hd;
    const float scale = rsqrtf((float)hd);
    bf16* PT = PTs[warp];
    bf16* dST = dSTs[warp];
    const bool active = kw0 < Tn;

    fillPositions<NT>(positions);
    loadTile<BKV, HD, NT>(Ks, k + kOff, k0, Tn, Hkv, hk, hd);
    loadTile<BKV, HD, NT>(Vs, v + kOff, k0, Tn, Hkv, hk, hd);
    __syncthreads();
    FragC pos, accK[KF], accV[KF];
    wmma::load_matrix_sync(pos, positions, kRows, wmma::mem_row_major);
#pragma unroll
    for (int f = 0; f < KF; f++) {
        wmma::fill_fragment(accK[f], 0.0f);
        wmma::fill_fragment(accV[f], 0.0f);
    }
    for (int g = 0; g < group; g++) {
        const int h = hk * group + g;
        for (int q0 = (k0 / BQ) * BQ; q0 < Tn; q0 += BQ) {
            __syncthreads();  // the previous query tile consumed
            loadTile<BQ, HD, NT>(Qs, q + qOff, q0, Tn, H, h, hd);
            loadTile<BQ, HD, NT>(dOs, dOut + qOff, q0, Tn, H, h, hd);
            if (threadIdx.x < BQ) {
                int t = q0 + threadIdx.x;
                long long stat = ((long long)b * H + h) * Tn + t;
                lseS[threadIdx.x] = t < Tn ? lse[stat] : 0.0f;
                deltaS[threadIdx.x] = t < Tn ? delta[stat] : 0.0f;
            }
            __syncthreads();
            if (!active || q0 + BQ - 1 < kw0) continue;  // every query of the tile precedes the warp's first key
            // S^T = K Q^T and dP^T = V dOut^T (16 keys x 16 queries per fragment); P^T and dS^T as bf16 operands.
#pragma unroll
            for (int j = 0; j < JF; j++) {
                if (q0 + 16 * j + 15 < kw0) continue;
                FragC s, dp;
                wmma::fill_fragment(s, 0.0f);
                wmma::fill_fragment(dp, 0.0f);
#pragma unroll
                for (int kk = 0; kk < KF; kk++) {
                    FragA kf, vf;
                    FragBt qf, of;
                    wmma::load_matrix_sync(kf, Ks + warp * kRows * LD + kk * 16, LD);
                    wmma::load_matrix_sync(qf, Qs + j * 16 * LD + kk * 16, LD);
                    wmma::mma_sync(s, kf, qf, s);
                    wmma::load_matrix_sync(vf, Vs + warp * kRows * LD + kk * 16, LD);
                    wmma::load_matrix_sync(of, dOs + j * 16 * LD + kk * 16, LD);
                    wmma::mma_sync(dp, vf, of, dp);
                }
#pragma unroll
                for (int i = 0; i < pos.num_elements; i++) {
                    int r = rowOf(pos.x[i]), c = 16 * j + colOf(pos.x[i]), key = kw0 + r, t = q0 + c;
                    float p = (key < Tn && t < Tn && key <= t) ? expf(s.x[i] * scale - lseS[c]) : 0.0f;
                    PT[r * LDP + c] = __float2bfloat16(p);
                    dST[r * LDP + c] = __float2bfloat16(p * (dp.x[i] - deltaS[c]));
                }
            }
            __syncwarp();
#pragma unroll
            for (int kk = 0; kk < JF; kk++) {
                if (q0 + 16 * kk + 15 < kw0) continue;
                FragA pf, sf;
                wmma::load_matrix_sync(pf, PT + kk * 16, LDP);
                wmma::load_matrix_sync(sf, dST + kk * 16, LDP);
#pragma unroll
                for (int f = 0; f < KF; f++) {
                    FragB of, qf;
                    wmma::load_matrix_sync(of, dOs + kk * 16 * LD + f * 16, LD);
                    wmma::mma_sync(accV[f], pf, of, accV[f]);
                    wmma::load_matrix_sync(qf, Qs + kk * 16 * LD + f * 16, LD);
                    wmma::mma_sync(accK[f], sf, qf, accK[f]);
                }
            }
            __syncwarp();  // P^T and dS^T are rewritten by the next tile
        }
    }
    if (active) {
        storeRows<KF>(dk + kOff, accK, pos, nullptr, scale, kw0, Tn, Hkv, hk, hd);
        storeRows<KF>(dv + kOff, accV, pos, nullptr, 1.0f, kw0, Tn, Hkv, hk, hd);
    }
}

}  // namespace

// Entry points, one per head-dimension tile, bf16 storage (lse and delta float32). fwd and bwddq: grid
// (ceil(T / 64), H, B), block 128; bwddkv: grid (ceil(T / (16 x warps)), Hkv, B), block 32 x warps. The host derives
// the rows of a block from its threads: 16 per warp.
extern "C" __global__ void __launch_bounds__(128) mode_attention_wmma32_fwd_bf16(const bf16* q, const bf16* k, const bf16* v, bf16* out, float* lse, int B, int Tn, int H, int Hkv, int hd) { attentionWmmaFwd<32>(q, k, v, out, lse, B, Tn, H, Hkv, hd); }
extern "C" __global__ void __launch_bounds__(128) mode_attention_wmma32_bwddq_bf16(const bf16* dOut, const bf16* q, const bf16* k, const bf16* v, const float* lse, float* delta, bf16* dq, int B, int Tn, int H, int Hkv, int hd) { attentionWmmaBwdDq<32>(dOut, q, k, v, lse, delta, dq, B, Tn, H, Hkv, hd); }
extern "C" __global__ void __launch_bounds__(128) mode_attention_wmma32_bwddkv_bf16(const bf16* dOut, const bf16* q, const bf16* k, const bf16* v, const float* lse, const float* delta, bf16* dk, bf16* dv, int B, int Tn, int H, int Hkv, int hd) { attentionWmmaBwdDkv<32>(dOut, q, k, v, lse, delta, dk, dv, B, Tn, H, Hkv, hd); }
extern "C" __global__ void __launch_bounds__(128) mode_attention_wmma64_fwd_bf16(const bf16* q, const bf16* k, const bf16* v, bf16* out, float* lse, int B, int Tn, int H, int Hkv, int hd) { attentionWmmaFwd<64>(q, k, v, out, lse, B, Tn, H, Hkv, hd); }
extern "C" __global__ void __launch_bounds__(128) mode_attention_wmma64_bwddq_bf16(const bf16* dOut, const bf16* q, const bf16* k, const bf16* v, const float* lse, float* delta, bf16* dq, int B, int Tn, int H, int Hkv, int hd) { attentionWmmaBwdDq<64>(dOut, q, k, v, lse, delta, dq, B, Tn, H, Hkv, hd); }
extern "C" __global__ void __launch_bounds__(128) mode_attention_wmma64_bwddkv_bf16(const bf16* dOut, const bf16* q, const bf16* k, const bf16* v, const float* lse, const float* delta, bf16* dk, bf16* dv, int B, int Tn, int H, int Hkv, int hd) { attentionWmmaBwdDkv<64>(dOut, q, k, v, lse, delta, dk, dv, B, Tn, H, Hkv, hd); }
extern "C" __global__ void __launch_bounds__(128) mode_attention_wmma128_fwd_bf16(const bf16* q, const bf16* k, const bf16* v, bf16* out, float* lse, int B, int Tn, int H, int Hkv, int hd) { attentionWmmaFwd<128>(q, k, v, out, lse, B, Tn, H, Hkv, hd); }
extern "C" __global__ void __launch_bounds__(128) mode_attention_wmma128_bwddq_bf16(const bf16* dOut, const bf16* q, const bf16* k, const bf16* v, const float* lse, float* delta, bf16* dq, int B, int Tn, int H, int Hkv, int hd) { attentionWmmaBwdDq<128>(dOut, q, k, v, lse, delta, dq, B, Tn, H, Hkv, hd); }
extern "C" __global__ void __launch_bounds__(64) mode_attention_wmma128_bwddkv_bf16(const bf16* dOut, const bf16* q, const bf16* k, const bf16* v, const float* lse, const float* delta, bf16* dk, bf16* dv, int B, int Tn, int H, int Hkv, int hd) { attentionWmmaBwdDkv<128>(dOut, q, k, v, lse, delta, dk, dv, B, Tn, H, Hkv, hd); }
