// grouped.cu: the expert grouped GEMM on bf16 tensor cores. One launch computes a projection for every expert
// (group) of a MoDE block: the forward product (alone, or the gate and up products with the SwiGLU activation
// fused into their epilogue) and both backward products (input and weight gradients). Rows of the input can be
// read through a token index list (the top-k gather fused into the operand load, as in ScatterMoE), so no permuted
// copy of the tokens is written.
//
// Groups: the R rows of y (of dy for the backward products) form G contiguous groups, group g being rows
// [offsets[g], offsets[g+1]) and using weight w + g * N * K (w [G, N, K]: float32 parameters in torch.nn.Linear's
// [out, in] layout). offsets == nullptr means G equal groups of R / G rows (dense routing). rows == nullptr means
// operand row r is x's row r; else it is x's row rows[r] (x [S, K], S source rows).
//
// Math: operands are rounded to bf16 when they are staged in shared memory (exact for bf16 storage), products
// accumulate in float32 on WMMA m16n16k16 fragments, results are written in the storage type (float32 for dW).
// Tile 64 x 64 per block of four warps (each 32 x 32, 2 x 2 fragments), k steps of 32. With beta == 0 the output is
// not read. Bad offsets or row indices raise kErrGroupOffsets / kErrGroupedRow (the lowest position wins); a bad
// row index poisons its output row with NaN.
#include "mode_common.cuh"
#ifndef MODE_EMU
#include <mma.h>
#endif

namespace {

using namespace mode;
using namespace nvcuda;

constexpr int BM = kLaunchGroupedTileM, BN = kLaunchGroupedTileN, BK = 32, NT = 128;
constexpr int LDA = BK + 8, LDB = BN + 8, LDC = BN + 4;  // padded; multiples of 8 (bf16) and 4 (float)
constexpr int kSmemA = BM * LDA * 2, kSmemB = BK * LDB * 2, kSmemC = BM * LDC * 4;

using Acc = wmma::fragment<wmma::accumulator, 16, 16, 16, float>;

// The first row of group g, clamped into [0, R] (equal groups when offsets is null).
__device__ __forceinline__ int groupStart(const int* offsets, int groups, int R, int g) {
    if (offsets == nullptr) return (int)((long long)R / groups * g);
    int v = offsets[g];
    return v < 0 ? 0 : (v > R ? R : v);
}

// Block (0, 0, 0) checks offsets: offsets[0] == 0, non-decreasing, offsets[G] == R.
__device__ __forceinline__ void checkOffsets(const int* offsets, int groups, int R, int* err) {
    if (offsets == nullptr || threadIdx.x != 0 || blockIdx.x != 0 || blockIdx.y != 0 || blockIdx.z != 0) return;
    int prev = 0;
    for (int g = 0; g <= groups; g++) {
        int v = offsets[g];
        if ((g == 0 && v != 0) || v < prev || v > R || (g == groups && v != R)) {
            raiseError(err, kErrGroupOffsets, v, g);
            return;
        }
        prev = v;
    }
}

// Output-row tile t of a launch over every group's row tiles in group order: its group, first row and the
// group's end (exclusive). g == -1 for the spare tiles of a ragged launch (the host sizes the grid for the worst case).
struct RowTile {
    int g, row0, end;
};

__device__ __forceinline__ RowTile findRowTile(const int* offsets, int groups, int R, int t) {
    int s = groupStart(offsets, groups, R, 0);
    for (int g = 0; g < groups; g++) {
        int e = groupStart(offsets, groups, R, g + 1);
        if (e < s) e = s;
        int tiles = (e - s + BM - 1) / BM;
        if (t < tiles) return RowTile{g, s + t * BM, e};
        t -= tiles;
        s = e;
    }
    return RowTile{-1, 0, 0};
}

// Source row of operand row r (a gathered token), or -1 (raising kErrGroupedRow) when outside [0, S).
__device__ __forceinline__ int sourceRow(const int* rows, int r, int S, int* err) {
    if (rows == nullptr) return r;
    int s = rows[r];
    if (s >= 0 && s < S) return s;
    raiseError(err, kErrGroupedRow, s, r);
    return -1;
}

// Stages a ROWS x COLS tile f(r, c) in shared memory as bf16 (leading dimension ld). Consecutive threads take
// consecutive c when COL_FAST, else consecutive r: whichever is contiguous in global memory.
template <int ROWS, int COLS, bool COL_FAST, class F>
__device__ __forceinline__ void stageTile(bf16* s, int ld, F f) {
    for (int idx = threadIdx.x; idx < ROWS * COLS; idx += NT) {
        int r = COL_FAST ? idx / COLS : idx % ROWS, c = COL_FAST ? idx % COLS : idx / ROWS;
        s[r * ld + c] = __float2bfloat16(f(r, c));
    }
}

// acc[p] += A (BM x K) @ B_p (K x BN) over k steps of BK; loadA(i, k) and loadB(p, k, j) return the operands
// (0 outside the problem). A_K_FAST / B_J_FAST: which index is contiguous in global memory.
template <int P, bool A_K_FAST, bool B_J_FAST, class FA, class FB>
__device__ __forceinline__ void mmaMainLoop(int K, unsigned char* smem, FA loadA, FB loadB, Acc (&acc)[P][2][2]) {
    bf16* As = reinterpret_cast<bf16*>(smem);
    bf16* Bs = reinterpret_cast<bf16*>(smem + kSmemA);
    const int warp = threadIdx.x / 32, wm = warp / 2, wn = warp % 2;
#pragma unroll
    for (int p = 0; p < P; p++)
#pragma unroll
        for (int i = 0; i < 2; i++)
#pragma unroll
            for (int j = 0; j < 2; j++) wmma::fill_fragment(acc[p][i][j], 0.0f);
    for (int k0 = 0; k0 < K; k0 += BK) {
        stageTile<BM, BK, A_K_FAST>(As, LDA, [&](int i, int kk) { return loadA(i, k0 + kk); });
#pragma unroll
        for (int p = 0; p < P; p++)
            stageTile<BK, BN, B_J_FAST>(Bs + p * (kSmemB / 2), LDB, [&](int kk, int j) { return loadB(p, k0 + kk, j); });
        __syncthreads();
#pragma unroll
        for (int kk = 0; kk < BK; kk += 16) {
            wmma::fragment<wmma::matrix_a, 16, 16, 16, bf16, wmma::row_major> af[2];
#pragma unroll
            for (int i = 0; i < 2; i++) wmma::load_matrix_sync(af[i], As + (wm * 32 + i * 16) * LDA + kk, LDA);
#pragma unroll
            for (int p = 0; p < P; p++) {
                wmma::fragment<wmma::matrix_b, 16, 16, 16, bf16, wmma::row_major> bfr[2];
#pragma unroll
                for (int j = 0; j < 2; j++)
                    wmma::load_matrix_sync(bfr[j], Bs + p * (kSmemB / 2) + kk * LDB + wn * 32 + j * 16, LDB);
#pragma unroll
                for (int i = 0; i < 2; i++)
#pragma unroll
                    for (int j = 0; j < 2; j++) wmma::mma_sync(acc[p][i][j], af[i], bfr[j], acc[p][i][j]);
            }
        }
        __syncthreads();
    }
}

// Writes a block's accumulators through shared memory (reusing the operand staging area, free after the main
// loop): write(i, j, value) for every element of the 64 x 64 tile, consecutive threads on consecutive columns.
template <class F>
__device__ __forceinline__ void writeTile(Acc (&acc)[2][2], unsigned char* smem, F write) {
    float* Cs = reinterpret_cast<float*>(smem);
    const int warp = threadIdx.x / 32, wm = warp / 2, wn = warp % 2;
#pragma unroll
    for (int i = 0; i < 2; i++)
#pragma unroll
        for (int j = 0; j < 2; j++)
            wmma::store_matrix_sync(Cs + (wm * 32 + i * 16) * LDC + wn * 32 + j * 16, acc[i][j], LDC, wmma::mem_row_major);
    __syncthreads();
    for (int idx = threadIdx.x; idx < BM * BN; idx += NT) write(idx / BN, idx % BN, Cs[(idx / BN) * LDC + idx % BN]);
    __syncthreads();
}

template <class T>
__device__ __forceinline__ void storeScaled(T* c, long long o, float acc, float beta) {
    store(c, o, beta != 0.0f ? fmaf(beta, load(c, o), acc) : acc);
}

// Shared memory of a block with P products: the operand tiles, or the output staging when larger.
template <int P>
constexpr int kSmemBytes = kSmemA + P * kSmemB > kSmemC ? kSmemA + P * kSmemB : kSmemC;

// y[r, :] = x[src(r), :] @ w_g^T (+ beta * y[r, :]); with P == 2 the gate and up products of w (= wGate) and
// wUp, giving out = silu(gate) * up and, when not null, gate and up. Grid (row tiles, ceil(N / BN)).
template <int P, class T>
__device__ void groupedForward(const T* x, const int* rows, int S, const float* w, const float* wUp,
                               const int* offsets, int groups, int R, int N, int K, float beta, T* gate, T* up,
                               T* y, int* err) {
    checkOffsets(offsets, groups, R, err);
    const RowTile tile = findRowTile(offsets, groups, R, blockIdx.x);
    if (tile.g < 0) return;
    __shared__ __align__(32) unsigned char smem[kSmemBytes<P>];
    const int n0 = blockIdx.y * BN;
    const long long wOff = (long long)tile.g * N * K;
    Acc acc[P][2][2];
    mmaMainLoop<P, true, false>(
        K, smem,
        [&](int i, int k) {
            int r = tile.row0 + i;
            if (r >= tile.end || k >= K) return 0.0f;
            int s = sourceRow(rows, r, S, err);
            return s < 0 ? quietNaN() : load(x, (long long)s * K + k);
        },
        [&](int p, int k, int j) {
            int n = n0 + j;
            return n < N && k < K ? (p == 0 ? w : wUp)[wOff + (long long)n * K + k] : 0.0f;
        },
        acc);
    auto at = [&](int i, int j) { return (long long)(tile.row0 + i) * N + n0 + j; };
    auto inside = [&](int i, int j) { return tile.row0 + i < tile.end && n0 + j < N; };
    if constexpr (P == 1) {
        writeTile(acc[0], smem, [&](int i, int j, float v) {
            if (inside(i, j)) storeScaled(y, at(i, j), v, beta);
        });
        return;
    }
    if (gate != nullptr)
        writeTile(acc[0], smem, [&](int i, int j, float v) {
            if (inside(i, j)) store(gate, at(i, j), v);
        });
    if (up != nullptr)
        writeTile(acc[P - 1], smem, [&](int i, int j, float v) {
            if (inside(i, j)) store(up, at(i, j), v);
        });
    // Gate and up fragments of one shape hold the same elements in the same order, so the activation is
    // elementwise on the registers.
#pragma unroll
    for (int i = 0; i < 2; i++)
#pragma unroll
        for (int j = 0; j < 2; j++)
            for (int e = 0; e < acc[0][i][j].num_elements; e++) {
                float g = acc[0][i][j].x[e];
                acc[0][i][j].x[e] = g * sigmoid(g) * acc[P - 1][i][j].x[e];
            }
    writeTile(acc[0], smem, [&](int i, int j, float v) {
        if (inside(i, j)) store(y, at(i, j), v);
    });
}

// dx[r, :] = dy[r, :] @ w_g (+ beta * dx[r, :]): dy [R, N], w [G, N, K], dx [R, K]. Grid (row tiles, ceil(K / BN)).
template <class T>
__device__ void groupedBackwardData(const T* dy, const float* w, const int* offsets, int groups, int R, int N, int K,
                                    float beta, T* dx, int* err) {
    checkOffsets(offsets, groups, R, err);
    const RowTile tile = findRowTile(offsets, groups, R, blockIdx.x);
    if (tile.g < 0) return;
    __shared__ __align__(32) unsigned char smem[kSmemBytes<1>];
    const int n0 = blockIdx.y * BN;
    const long long wOff = (long long)tile.g * N * K;
    Acc acc[1][2][2];
    mmaMainLoop<1, true, true>(
        N, smem,
        [&](int i, int k) {
            int r = tile.row0 + i;
            return r < tile.end && k < N ? load(dy, (long long)r * N + k) : 0.0f;
        },
        [&](int, int k, int j) { return k < N && n0 + j < K ? w[wOff + (long long)k * K + n0 + j] : 0.0f; }, acc);
    writeTile(acc[0], smem, [&](int i, int j, float v) {
        if (tile.row0 + i < tile.end && n0 + j < K) storeScaled(dx, (long long)(tile.row0 + i) * K + n0 + j, v, beta);
    });
}

// dw[g] = dy_g^T @ x[src(rows of g), :] (+ beta * dw[g]): dy [R, N], x [S, K], dw [G, N, K] float32; the
// reduction runs over the group's rows in order. Grid (ceil(K / BN), ceil(N / BM), G).
template <class T>
__device__ void groupedBackwardWeight(const T* dy, const T* x, const int* rows, int S, const int* offsets, int groups,
                                      int R, int N, int K, float beta, float* dw, int* err) {
    checkOffsets(offsets, groups, R, err);
    const int g = blockIdx.z;
    const int s = groupStart(offsets, groups, R, g), e0 = groupStart(offsets, groups, R, g + 1), e = e0 < s ? s : e0;
    __shared__ __align__(32) unsigned char smem[kSmemBytes<1>];
    const int m0 = blockIdx.y * BM, n0 = blockIdx.x * BN;
    Acc acc[1][2][2];
    mmaMainLoop<1, false, true>(
        e - s, smem,
        [&](int i, int k) { return m0 + i < N && s + k < e ? load(dy, (long long)(s + k) * N + m0 + i) : 0.0f; },
        [&](int, int k, int j) {
            if (s + k >= e || n0 + j >= K) return 0.0f;
            int src = sourceRow(rows, s + k, S, err);
            return src < 0 ? quietNaN() : load(x, (long long)src * K + n0 + j);
        },
        acc);
    writeTile(acc[0], smem, [&](int i, int j, float v) {
        if (m0 + i < N && n0 + j < K) storeScaled(dw, (long long)g * N * K + (long long)(m0 + i) * K + n0 + j, v, beta);
    });
}

}  // namespace

// Block 128 (four warps). Activations bf16 (DeviceBackend keeps float32 activations on float32 GEMMs); weights and dW
// are float32.
extern "C" __global__ void __launch_bounds__(128) mode_groupedgemm_fwd_bf16(const bf16* x, const int* rows, int S, const float* w, const int* offsets, int groups, int R, int N, int K, float beta, bf16* y, int* err) {
    groupedForward<1>(x, rows, S, w, w, offsets, groups, R, N, K, beta, (bf16*)nullptr, (bf16*)nullptr, y, err);
}
extern "C" __global__ void __launch_bounds__(128) mode_groupedgemm_swiglufwd_bf16(const bf16* x, const int* rows, int S, const float* wGate, const float* wUp, const int* offsets, int groups, int R, int N, int K, bf16* gate, bf16* up, bf16* out, int* err) {
    groupedForward<2>(x, rows, S, wGate, wUp, offsets, groups, R, N, K, 0.0f, gate, up, out, err);
}
extern "C" __global__ void __launch_bounds__(128) mode_groupedgemm_bwddx_bf16(const bf16* dy, const float* w, const int* offsets, int groups, int R, int N, int K, float beta, bf16* dx, int* err) {
    groupedBackwardData(dy, w, offsets, groups, R, N, K, beta, dx, err);
}
extern "C" __global__ void __launch_bounds__(128) mode_groupedgemm_bwddw_bf16(const bf16* dy, const bf16* x, const int* rows, int S, const int* offsets, int groups, int R, int N, int K, float beta, float* dw, int* err) {
    groupedBackwardWeight(dy, x, rows, S, offsets, groups, R, N, K, beta, dw, err);
}
