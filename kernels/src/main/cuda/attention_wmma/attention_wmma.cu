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

// Stores acc * rowScale[row] (times scale) as bf16 into rows row0 + r < T, columns col0 + 16 f + c < hd of a
// [T, heads, hd] sequence, each element by the lane that holds it.
template <int KF>
__device__ __forceinline__ void storeRows(bf16* seq, const FragC (&acc)[KF], const FragC& pos, const float* rowScale,
                                          float scale, int row0, int col0, int seqLen, int heads, int head, int hd) {
#pragma unroll
    for (int f = 0; f < KF; f++) {
#pragma unroll
        for (int i = 0; i < pos.num_elements; i++) {
            int r = rowOf(pos.x[i]), col = col0 + f * 16 + colOf(pos.x[i]), t = row0 + r;
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
    if (active) storeRows<KF>(out + qOff, o, pos, rowScale[warp], 1.0f, qw0, 0, Tn, H, h, hd);
    if (half == 0 && qrow < Tn) lse[((long long)b * H + h) * Tn + qrow] = m + logf(l);
}

// ---------------------------------------------------------------- backward: the warp pairs
// Both backward kernels give each 16-row fragment of their tile to a pair of warps (warps 2i and 2i + 1; the host
// divides a block's warps by kLaunchAttentionWmmaBackwardWarpsPerFragment): one warp computes the scores S and the
// other dP = dOut V^T, each with the same product code on its own operand, and they meet in shared memory, so no
// warp holds both products' operands and accumulators (the head-128 tile's register budget).
constexpr int kPairWarps = kLaunchAttentionWmmaBackwardWarpsPerFragment;

// The a operand's fragment kk: held in registers (aFrags), or loaded from the 16 rows of a shared-memory tile.
template <int LD>
__device__ __forceinline__ const FragA& operandA(const FragA* aFrags, FragA&, int kk) {
    return aFrags[kk];
}
template <int LD>
__device__ __forceinline__ const FragA& operandA(const bf16* aTile, FragA& a, int kk) {
    wmma::load_matrix_sync(a, aTile + kk * 16, LD);
    return a;
}

// prod[j] = a (16 rows: fragments in registers, or a shared-memory tile) times (rows 16 j.. of bTile)^T for the
// 16-column fragments j of a 16 * JF column tile that reach the pair's rows (live[j]); the others are left as they
// are.
template <int KF, int JF, int LD, typename ASrc>
__device__ __forceinline__ void pairProducts(FragC (&prod)[JF], ASrc aSrc, const bf16* bTile, const bool (&live)[JF]) {
#pragma unroll
    for (int j = 0; j < JF; j++) {
        if (!live[j]) continue;
        wmma::fill_fragment(prod[j], 0.0f);
#pragma unroll
        for (int kk = 0; kk < KF; kk++) {
            FragA a;
            FragBt b;
            wmma::load_matrix_sync(b, bTile + j * 16 * LD + kk * 16, LD);
            wmma::mma_sync(prod[j], operandA<LD>(aSrc, a, kk), b, prod[j]);
        }
    }
}

// Pairs of warps per block: dq 2 from the 64 tile up (the register budget: its warps hold their Q or dOut rows as
// fragments), dk/dv 2 for the 128 tile (the shared-memory budget: K and V stay in it), else 4.
template <int HD>
struct DqPairs {
    static constexpr int value = HD >= 64 ? 2 : 4;
};
template <int HD>
struct DkvPairs {
    static constexpr int value = HD >= 128 ? 2 : 4;
};

// ---------------------------------------------------------------- backward: dq (and delta)
// dq = scale * sum_k dS K with dS = P (dP - delta), P = exp(S * scale - lse), dP = dOut V^T. A first pass over the
// keys computes delta = sum_k P dP from the same P and dP as dS (consistent: each row of dS sums to ~0; the usual
// rowsum(dOut * out) reads the bf16-rounded output and measured up to 3.4x the naive-bf16 error on dq) and saves it
// for the dk/dv kernel, at the cost of S and dP twice (5 products here). grid (ceil(T / (16 pairs)), H, B), block 64
// x pairs (BwdPairs): a pair of warps per 16 query rows; Q and dOut stay in shared memory, key/value tiles of 32 rows
// stream through it. Per key tile the S warp of a pair writes P (float32, masked) to shared memory,
// the dP warp keeps dP in registers and forms P dP (pass 1, summed per row into delta) or dS (pass 2, as bf16);
// then both warps add dS K into their half of the row's dq columns.
template <int HD>
__device__ void attentionWmmaBwdDq(const bf16* dOut, const bf16* q, const bf16* k, const bf16* v, const float* lse,
                                   float* delta, bf16* dq, int B, int Tn, int H, int Hkv, int hd) {
    constexpr int PAIRS = DqPairs<HD>::value, NT = PAIRS * kPairWarps * 32, BQ = PAIRS * kRows, BK = 32;
    constexpr int LD = HD + 8, LDS = BK + 4, LDP = BK + 8, KF = HD / 16, HF = KF / 2, JF = BK / 16;
    static_assert(BQ <= NT, "one thread per query row loads lse");
    static_assert(BQ <= 2 * BK, "Q and dOut are staged in the key/value buffer");
    __shared__ __align__(32) bf16 KVs[2 * BK * LD];  // K tile, then V tile (Q, then dOut, before the key loops)
    __shared__ __align__(32) float Ps[PAIRS][kRows * LDS];
    __shared__ __align__(32) float PdPs[PAIRS][kRows * LDS];  // P dP (pass 1)
    __shared__ __align__(32) bf16 dSs[PAIRS][kRows * LDP];
    __shared__ __align__(32) float positions[kRows * kRows];
    __shared__ float lseW[PAIRS][kRows], deltaW[PAIRS][kRows];
    bf16* Ks = KVs;
    bf16* Vs = KVs + BK * LD;
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, pair = warp / kPairWarps, role = warp % kPairWarps;
    const int b = blockIdx.z, h = blockIdx.y, hk = h / (H / Hkv), q0 = blockIdx.x * BQ, qw0 = q0 + pair * kRows;
    const long long qOff = (long long)b * Tn * H * hd, kOff = (long long)b * Tn * Hkv * hd;
    const float scale = rsqrtf((float)hd);
    float* P = Ps[pair];
    float* PdP = PdPs[pair];
    bf16* dS = dSs[pair];
    const int prow = lane >> 1, phalf = lane & 1;  // dP warp: lanes 2r, 2r + 1 sum columns 0-7, 8-15 of row r
    const bool active = qw0 < Tn;

    if (threadIdx.x < BQ) {
        const int t = q0 + threadIdx.x;
        lseW[threadIdx.x / kRows][threadIdx.x % kRows] = t < Tn ? lse[((long long)b * H + h) * Tn + t] : 0.0f;
    }
    fillPositions<NT>(positions);
    FragA xf[KF];  // the S warp's Q rows, the dP warp's dOut rows, held for both passes
#pragma unroll
    for (int src = 0; src < kPairWarps; src++) {
        __syncthreads();  // the previous staging consumed
        loadTile<BQ, HD, NT>(KVs, (src == 0 ? q : dOut) + qOff, q0, Tn, H, h, hd);
        __syncthreads();
        if (role == src) {
#pragma unroll
            for (int kk = 0; kk < KF; kk++) wmma::load_matrix_sync(xf[kk], KVs + pair * kRows * LD + kk * 16, LD);
        }
    }
    FragC pos, prod[JF], acc[HF];
    wmma::load_matrix_sync(pos, positions, kRows, wmma::mem_row_major);
#pragma unroll
    for (int f = 0; f < HF; f++) wmma::fill_fragment(acc[f], 0.0f);

    const int kEnd = min(Tn, q0 + BQ);
    float part = 0.0f;
    for (int pass = 0; pass < 2; pass++) {
        for (int k0 = 0; k0 < kEnd; k0 += BK) {
            __syncthreads();  // the staging, the previous K/V tile, P and dS consumed
            loadTile<BK, HD, NT>(Ks, k + kOff, k0, Tn, Hkv, hk, hd);
            loadTile<BK, HD, NT>(Vs, v + kOff, k0, Tn, Hkv, hk, hd);
            __syncthreads();
            bool live[JF];
#pragma unroll
            for (int j = 0; j < JF; j++) live[j] = active && k0 + 16 * j <= qw0 + kRows - 1;
            pairProducts<KF, JF, LD>(prod, static_cast<const FragA*>(xf), role == 0 ? Ks : Vs, live);
            if (role == 0) {  // P = exp(S * scale - lse), zero where masked
#pragma unroll
                for (int j = 0; j < JF; j++) {
                    if (!live[j]) continue;
#pragma unroll
                    for (int i = 0; i < pos.num_elements; i++) {
                        int r = rowOf(pos.x[i]), c = colOf(pos.x[i]), t = qw0 + r, kc = k0 + 16 * j + c;
                        P[r * LDS + 16 * j + c] = (t < Tn && kc <= t) ? expf(prod[j].x[i] * scale - lseW[pair][r]) : 0.0f;
                    }
                }
            }
            __syncthreads();
            if (role == 1) {
#pragma unroll
                for (int j = 0; j < JF; j++) {
                    if (!live[j]) continue;
#pragma unroll
                    for (int i = 0; i < pos.num_elements; i++) {
                        int r = rowOf(pos.x[i]), c = 16 * j + colOf(pos.x[i]);
                        if (pass == 0) PdP[r * LDS + c] = P[r * LDS + c] * prod[j].x[i];
                        else dS[r * LDP + c] = __float2bfloat16(P[r * LDS + c] * (prod[j].x[i] - deltaW[pair][r]));
                    }
                }
                __syncwarp();
                if (pass == 0) {
#pragma unroll
                    for (int j = 0; j < JF; j++) {
                        if (!live[j]) continue;
#pragma unroll
                        for (int c = 0; c < 8; c++) part += PdP[prow * LDS + 16 * j + phalf * 8 + c];
                    }
                }
            }
            if (pass == 0) continue;
            __syncthreads();  // dS written by the dP warp, read by both
#pragma unroll
            for (int kk = 0; kk < JF; kk++) {
                if (!live[kk]) continue;
                FragA sf;
                wmma::load_matrix_sync(sf, dS + kk * 16, LDP);
#pragma unroll
                for (int f = 0; f < HF; f++) {
                    FragB kf;
                    wmma::load_matrix_sync(kf, Ks + kk * 16 * LD + (role * HF + f) * 16, LD);
                    wmma::mma_sync(acc[f], sf, kf, acc[f]);
                }
            }
        }
        if (pass == 0 && role == 1) {
            part += __shfl_xor_sync(0xffffffffu, part, 1);
            if (phalf == 0) {
                const int t = qw0 + prow;
                deltaW[pair][prow] = t < Tn ? part : 0.0f;
                if (t < Tn) delta[((long long)b * H + h) * Tn + t] = part;
            }
            __syncwarp();
        }
    }
    if (active) storeRows<HF>(dq + qOff, acc, pos, nullptr, scale, qw0, role * HF * 16, Tn, H, h, hd);
}

// ---------------------------------------------------------------- backward: dk, dv
// dv = sum_q P^T dOut, dk = scale * sum_q dS^T Q over every query head of the kv group and every query row at or
// after the key. grid (ceil(T / (16 PAIRS)), Hkv, B), block 64 PAIRS: a pair of warps per 16 key rows, the dV warp
// computing S^T = K Q^T (P^T to shared memory, float32 and bf16) and accumulating dv, the dK warp computing
// dP^T = V dOut^T and, with P^T, dS^T, and accumulating dk. K and V stay in shared memory, query tiles of 32 rows
// stream through it.

template <int HD>
__device__ void attentionWmmaBwdDkv(const bf16* dOut, const bf16* q, const bf16* k, const bf16* v, const float* lse,
                                    const float* delta, bf16* dk, bf16* dv, int B, int Tn, int H, int Hkv, int hd) {
    constexpr int PAIRS = DkvPairs<HD>::value, NT = PAIRS * kPairWarps * 32, BKV = PAIRS * kRows, BQ = HD >= 128 ? 16 : 32;
    constexpr int LD = HD + 8, LDS = BQ + 4, LDP = BQ + 8, KF = HD / 16, JF = BQ / 16;
    static_assert(BQ <= NT, "one thread per query row loads the statistics");
    __shared__ __align__(32) bf16 Ks[BKV * LD];
    __shared__ __align__(32) bf16 Vs[BKV * LD];
    __shared__ __align__(32) bf16 Qs[BQ * LD];
    __shared__ __align__(32) bf16 dOs[BQ * LD];
    __shared__ __align__(32) float PTf[PAIRS][kRows * LDS];
    __shared__ __align__(32) bf16 PTs[PAIRS][kRows * LDP];
    __shared__ __align__(32) bf16 dSTs[PAIRS][kRows * LDP];
    __shared__ __align__(32) float positions[kRows * kRows];
    __shared__ float lseS[BQ], deltaS[BQ];
    const int warp = threadIdx.x / 32, pair = warp / kPairWarps, role = warp % kPairWarps;  // role 0: dv, 1: dk
    const int b = blockIdx.z, hk = blockIdx.y, k0 = blockIdx.x * BKV, kw0 = k0 + pair * kRows, group = H / Hkv;
    const long long qOff = (long long)b * Tn * H * hd, kOff = (long long)b * Tn * Hkv * hd;
    const float scale = rsqrtf((float)hd);
    float* Pf = PTf[pair];
    bf16* PT = PTs[pair];
    bf16* dST = dSTs[pair];
    const bool active = kw0 < Tn;

    fillPositions<NT>(positions);
    loadTile<BKV, HD, NT>(Ks, k + kOff, k0, Tn, Hkv, hk, hd);
    loadTile<BKV, HD, NT>(Vs, v + kOff, k0, Tn, Hkv, hk, hd);
    __syncthreads();
    const bf16* rowsA = (role == 0 ? Ks : Vs) + pair * kRows * LD;  // the dV warp's K rows, the dK warp's V rows
    FragC pos, prod[JF], acc[KF];
    wmma::load_matrix_sync(pos, positions, kRows, wmma::mem_row_major);
#pragma unroll
    for (int f = 0; f < KF; f++) wmma::fill_fragment(acc[f], 0.0f);
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
            bool live[JF];  // query fragments with a query at or after the pair's first key
#pragma unroll
            for (int j = 0; j < JF; j++) live[j] = active && q0 + 16 * j + 15 >= kw0;
            // S^T = K Q^T (dV warp) or dP^T = V dOut^T (dK warp), 16 keys x 16 queries per fragment
            pairProducts<KF, JF, LD>(prod, rowsA, role == 0 ? Qs : dOs, live);
            if (role == 0) {
#pragma unroll
                for (int j = 0; j < JF; j++) {
                    if (!live[j]) continue;
#pragma unroll
                    for (int i = 0; i < pos.num_elements; i++) {
                        int r = rowOf(pos.x[i]), c = 16 * j + colOf(pos.x[i]), key = kw0 + r, t = q0 + c;
                        float p = (key < Tn && t < Tn && key <= t) ? expf(prod[j].x[i] * scale - lseS[c]) : 0.0f;
                        Pf[r * LDS + c] = p;
                        PT[r * LDP + c] = __float2bfloat16(p);
                    }
                }
            }
            __syncthreads();  // P^T written by the dV warp, read by the dK warp
            if (role == 1) {
#pragma unroll
                for (int j = 0; j < JF; j++) {
                    if (!live[j]) continue;
#pragma unroll
                    for (int i = 0; i < pos.num_elements; i++) {
                        int r = rowOf(pos.x[i]), c = 16 * j + colOf(pos.x[i]);
                        dST[r * LDP + c] = __float2bfloat16(Pf[r * LDS + c] * (prod[j].x[i] - deltaS[c]));
                    }
                }
                __syncwarp();
            }
            // dv += P^T dOut (dV warp) or dk += dS^T Q (dK warp)
            const bf16* lhs = role == 0 ? PT : dST;
            const bf16* rhs = role == 0 ? dOs : Qs;
#pragma unroll
            for (int kk = 0; kk < JF; kk++) {
                if (!live[kk]) continue;
                FragA sf;
                wmma::load_matrix_sync(sf, lhs + kk * 16, LDP);
#pragma unroll
                for (int f = 0; f < KF; f++) {
                    FragB rf;
                    wmma::load_matrix_sync(rf, rhs + kk * 16 * LD + f * 16, LD);
                    wmma::mma_sync(acc[f], sf, rf, acc[f]);
                }
            }
        }
    }
    if (active) {
        if (role == 0) storeRows<KF>(dv + kOff, acc, pos, nullptr, 1.0f, kw0, 0, Tn, Hkv, hk, hd);
        else storeRows<KF>(dk + kOff, acc, pos, nullptr, scale, kw0, 0, Tn, Hkv, hk, hd);
    }
}

}  // namespace

// Entry points, one per head-dimension tile, bf16 storage (lse and delta float32). fwd: grid (ceil(T / 64), H, B),
// block 128; bwddq: grid (ceil(T / (16 x pairs)), H, B), bwddkv: grid (ceil(T / (16 x pairs)), Hkv, B), both block
// 64 x pairs (4 pairs, 2 for the 128 tile). The host derives the rows of a block from its threads: 16 per warp in the forward, 16 per pair of warps
// (kLaunchAttentionWmmaBackwardWarpsPerFragment) in the backward.
extern "C" __global__ void __launch_bounds__(128) mode_attention_wmma32_fwd_bf16(const bf16* q, const bf16* k, const bf16* v, bf16* out, float* lse, int B, int Tn, int H, int Hkv, int hd) { attentionWmmaFwd<32>(q, k, v, out, lse, B, Tn, H, Hkv, hd); }
extern "C" __global__ void __launch_bounds__(256) mode_attention_wmma32_bwddq_bf16(const bf16* dOut, const bf16* q, const bf16* k, const bf16* v, const float* lse, float* delta, bf16* dq, int B, int Tn, int H, int Hkv, int hd) { attentionWmmaBwdDq<32>(dOut, q, k, v, lse, delta, dq, B, Tn, H, Hkv, hd); }
extern "C" __global__ void __launch_bounds__(256) mode_attention_wmma32_bwddkv_bf16(const bf16* dOut, const bf16* q, const bf16* k, const bf16* v, const float* lse, const float* delta, bf16* dk, bf16* dv, int B, int Tn, int H, int Hkv, int hd) { attentionWmmaBwdDkv<32>(dOut, q, k, v, lse, delta, dk, dv, B, Tn, H, Hkv, hd); }
extern "C" __global__ void __launch_bounds__(128) mode_attention_wmma64_fwd_bf16(const bf16* q, const bf16* k, const bf16* v, bf16* out, float* lse, int B, int Tn, int H, int Hkv, int hd) { attentionWmmaFwd<64>(q, k, v, out, lse, B, Tn, H, Hkv, hd); }
extern "C" __global__ void __launch_bounds__(128, 3) mode_attention_wmma64_bwddq_bf16(const bf16* dOut, const bf16* q, const bf16* k, const bf16* v, const float* lse, float* delta, bf16* dq, int B, int Tn, int H, int Hkv, int hd) { attentionWmmaBwdDq<64>(dOut, q, k, v, lse, delta, dq, B, Tn, H, Hkv, hd); }
extern "C" __global__ void __launch_bounds__(256) mode_attention_wmma64_bwddkv_bf16(const bf16* dOut, const bf16* q, const bf16* k, const bf16* v, const float* lse, const float* delta, bf16* dk, bf16* dv, int B, int Tn, int H, int Hkv, int hd) { attentionWmmaBwdDkv<64>(dOut, q, k, v, lse, delta, dk, dv, B, Tn, H, Hkv, hd); }
extern "C" __global__ void __launch_bounds__(128) mode_attention_wmma128_fwd_bf16(const bf16* q, const bf16* k, const bf16* v, bf16* out, float* lse, int B, int Tn, int H, int Hkv, int hd) { attentionWmmaFwd<128>(q, k, v, out, lse, B, Tn, H, Hkv, hd); }
extern "C" __global__ void __launch_bounds__(128, 3) mode_attention_wmma128_bwddq_bf16(const bf16* dOut, const bf16* q, const bf16* k, const bf16* v, const float* lse, float* delta, bf16* dq, int B, int Tn, int H, int Hkv, int hd) { attentionWmmaBwdDq<128>(dOut, q, k, v, lse, delta, dq, B, Tn, H, Hkv, hd); }
extern "C" __global__ void __launch_bounds__(128, 4) mode_attention_wmma128_bwddkv_bf16(const bf16* dOut, const bf16* q, const bf16* k, const bf16* v, const float* lse, const float* delta, bf16* dk, bf16* dv, int B, int Tn, int H, int Hkv, int hd) { attentionWmmaBwdDkv<128>(dOut, q, k, v, lse, delta, dk, dv, B, Tn, H, Hkv, hd); }
