// gemm.cu: row-major batched GEMM, C_i = alpha * op(A_i) @ op(B_i) + beta * C_i for every transpose
// combination, with per-operand batch strides (0 broadcasts one matrix over the batch, as for the shared
// weights of a block's experts). Two kernels:
//  - tiled: 64x64 output tile per block of 256 threads, 4x4 outputs per thread, float32 math for f32 or
//    bf16 storage (the path every device can run, and the reference path in tests); a GEMM of at most
//    kLaunchGemmSmallWork multiply-adds sums in float64 instead (the op contract's small GEMM);
//  - wmma: bf16 tensor cores (sm_80+) with float32 accumulation, 64x64 tile, four warps of 32x32.
// With beta == 0, C is not read (NaN in C does not propagate).
#include "mode_common.cuh"
#ifndef MODE_EMU
#include <mma.h>
#endif

namespace {

using namespace mode;

// Element (i, kk) of op(A) where A is [M, K], or [K, M] when transposed.
template <class T>
__device__ __forceinline__ float loadOpA(const T* a, int transA, int M, int K, int i, int kk) {
    return load(a, transA ? (long long)kk * M + i : (long long)i * K + kk);
}
// Element (kk, j) of op(B) where B is [K, N], or [N, K] when transposed.
template <class T>
__device__ __forceinline__ float loadOpB(const T* b, int transB, int N, int K, int kk, int j) {
    return load(b, transB ? (long long)j * K + kk : (long long)kk * N + j);
}

template <class TC>
__device__ __forceinline__ void storeC(TC* c, long long o, float alpha, float acc, float beta) {
    float r = alpha * acc;
    if (beta != 0.0f) r = fmaf(beta, load(c, o), r);
    store(c, o, r);
}

// The grid is (column tiles, row tiles, batch), or (row tiles, column tiles, batch) when there are more than 65535
// row tiles (gridDim.y's limit; the host swaps the grid then, see LaunchGeometry.gemm). The kernel recognises the
// swap by gridDim.x differing from the column-tile count, which the host makes impossible otherwise.
__device__ __forceinline__ bool swappedGrid(int N, int BN) { return gridDim.x != (unsigned)((N + BN - 1) / BN); }
__device__ __forceinline__ int rowTile(int N, int BN) { return swappedGrid(N, BN) ? blockIdx.x : blockIdx.y; }
__device__ __forceinline__ int colTile(int N, int BN) { return swappedGrid(N, BN) ? blockIdx.y : blockIdx.x; }

// A small GEMM (at most kLaunchGemmSmallWork multiply-adds): each of the thread's outputs is the float64 sum of its
// products in k order (each product exact, so a contracted multiply-add gives the same bits), alpha times it, plus
// beta c in one fused step, rounded once: the op contract's small GEMM, the same bits as the cpu backend.
template <class TA, class TC>
__device__ void gemmSmallFloat64(int transA, int transB, int M, int N, int K, float alpha, const TA* a, const TA* b,
                                 float beta, TC* c, int m0, int n0, int tx, int ty) {
    for (int i = 0; i < 4; i++) {
        for (int j = 0; j < 4; j++) {
            int gm = m0 + ty + 16 * i, gn = n0 + tx + 16 * j;
            if (gm >= M || gn >= N) continue;
            double acc = 0.0;
            for (int kk = 0; kk < K; kk++)
                acc += (double)loadOpA(a, transA, M, K, gm, kk) * (double)loadOpB(b, transB, N, K, kk, gn);
            long long o = (long long)gm * N + gn;
            double r = (double)alpha * acc;
            if (beta != 0.0f) r = fma((double)beta, (double)load(c, o), r);
            store(c, o, (float)r);
        }
    }
}

// grid (ceil(N / 64), ceil(M / 64), batch) or swapped, block 256.
template <class TA, class TC>
__device__ void gemmTiled(int transA, int transB, int M, int N, int K, float alpha, const TA* a, long long strideA,
                          const TA* b, long long strideB, float beta, TC* c, long long strideC) {
    constexpr int BM = kLaunchGemmTileM, BN = kLaunchGemmTileN, BK = 16, NT = 256;
    __shared__ float As[BK][BM + 4];
    __shared__ float Bs[BK][BN + 4];
    a += blockIdx.z * strideA;
    b += blockIdx.z * strideB;
    c += blockIdx.z * strideC;
    const int m0 = rowTile(N, BN) * BM, n0 = colTile(N, BN) * BN;
    const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
    if (K > 0 && (long long)M * N * K <= kLaunchGemmSmallWork) {  // the same for the whole block: no barrier skipped
        gemmSmallFloat64(transA, transB, M, N, K, alpha, a, b, beta, c, m0, n0, tx, ty);
        return;
    }
    float acc[4][4];
#pragma unroll
    for (int i = 0; i < 4; i++)
#pragma unroll
        for (int j = 0; j < 4; j++) acc[i][j] = 0.0f;
    for (int k0 = 0; k0 < K; k0 += BK) {
        // Consecutive threads read consecutive addresses of whichever layout the operand has.
        for (int idx = threadIdx.x; idx < BM * BK; idx += NT) {
            int i = transA ? idx % BM : idx / BK, kk = transA ? idx / BM : idx % BK;
            int gm = m0 + i, gk = k0 + kk;
            As[kk][i] = (gm < M && gk < K) ? loadOpA(a, transA, M, K, gm, gk) : 0.0f;
        }
        for (int idx = threadIdx.x; idx < BN * BK; idx += NT) {
            int j = transB ? idx / BK : idx % BN, kk = transB ? idx % BK : idx / BN;
            int gn = n0 + j, gk = k0 + kk;
            Bs[kk][j] = (gn < N && gk < K) ? loadOpB(b, transB, N, K, gk, gn) : 0.0f;
        }
        __syncthreads();
#pragma unroll
        for (int kk = 0; kk < BK; kk++) {
            float av[4], bv[4];
#pragma unroll
            for (int i = 0; i < 4; i++) av[i] = As[kk][ty + 16 * i];
#pragma unroll
            for (int j = 0; j < 4; j++) bv[j] = Bs[kk][tx + 16 * j];
#pragma unroll
            for (int i = 0; i < 4; i++)
#pragma unroll
                for (int j = 0; j < 4; j++) acc[i][j] = fmaf(av[i], bv[j], acc[i][j]);
        }
        __syncthreads();
    }
#pragma unroll
    for (int i = 0; i < 4; i++) {
        int gm = m0 + ty + 16 * i;
#pragma unroll
        for (int j = 0; j < 4; j++) {
            int gn = n0 + tx + 16 * j;
            if (gm < M && gn < N) storeC(c, (long long)gm * N + gn, alpha, acc[i][j], beta);
        }
    }
}

// grid (ceil(N / 64), ceil(M / 64), batch) or swapped, block 128 (4 warps, each a 32x32 quadrant of 2x2 fragments).
template <class TC>
__device__ void gemmWmma(int transA, int transB, int M, int N, int K, float alpha, const bf16* a, long long strideA,
                         const bf16* b, long long strideB, float beta, TC* c, long long strideC) {
    using namespace nvcuda;
    constexpr int BM = kLaunchGemmTileM, BN = kLaunchGemmTileN, BK = 32, NT = 128;
    constexpr int LDA = BK + 8, LDB = BN + 8, LDC = BN + 4;  // padded; multiples of 8 (bf16) and 4 (float)
    __shared__ __align__(32) bf16 As[BM * LDA];
    __shared__ __align__(32) bf16 Bs[BK * LDB];
    __shared__ __align__(32) float Cs[BM * LDC];
    a += blockIdx.z * strideA;
    b += blockIdx.z * strideB;
    c += blockIdx.z * strideC;
    const int m0 = rowTile(N, BN) * BM, n0 = colTile(N, BN) * BN;
    const int warp = threadIdx.x / 32, wm = warp / 2, wn = warp % 2;
    const bf16 zero = __float2bfloat16(0.0f);
    wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[2][2];
#pragma unroll
    for (int i = 0; i < 2; i++)
#pragma unroll
        for (int j = 0; j < 2; j++) wmma::fill_fragment(acc[i][j], 0.0f);
    for (int k0 = 0; k0 < K; k0 += BK) {
        for (int idx = threadIdx.x; idx < BM * BK; idx += NT) {
            int i = transA ? idx % BM : idx / BK, kk = transA ? idx / BM : idx % BK;
            int gm = m0 + i, gk = k0 + kk;
            As[i * LDA + kk] = (gm < M && gk < K) ? a[transA ? (long long)gk * M + gm : (long long)gm * K + gk] : zero;
        }
        for (int idx = threadIdx.x; idx < BN * BK; idx += NT) {
            int j = transB ? idx / BK : idx % BN, kk = transB ? idx % BK : idx / BN;
            int gn = n0 + j, gk = k0 + kk;
            Bs[kk * LDB + j] = (gn < N && gk < K) ? b[transB ? (long long)gn * K + gk : (long long)gk * N + gn] : zero;
        }
        __syncthreads();
#pragma unroll
        for (int kk = 0; kk < BK; kk += 16) {
            wmma::fragment<wmma::matrix_a, 16, 16, 16, bf16, wmma::row_major> af[2];
            wmma::fragment<wmma::matrix_b, 16, 16, 16, bf16, wmma::row_major> bfr[2];
#pragma unroll
            for (int i = 0; i < 2; i++) wmma::load_matrix_sync(af[i], As + (wm * 32 + i * 16) * LDA + kk, LDA);
#pragma unroll
            for (int j = 0; j < 2; j++) wmma::load_matrix_sync(bfr[j], Bs + kk * LDB + wn * 32 + j * 16, LDB);
#pragma unroll
            for (int i = 0; i < 2; i++)
#pragma unroll
                for (int j = 0; j < 2; j++) wmma::mma_sync(acc[i][j], af[i], bfr[j], acc[i][j]);
        }
        __syncthreads();
    }
#pragma unroll
    for (int i = 0; i < 2; i++)
#pragma unroll
        for (int j = 0; j < 2; j++)
            wmma::store_matrix_sync(Cs + (wm * 32 + i * 16) * LDC + wn * 32 + j * 16, acc[i][j], LDC, wmma::mem_row_major);
    __syncthreads();
    for (int idx = threadIdx.x; idx < BM * BN; idx += NT) {
        int i = idx / BN, j = idx % BN, gm = m0 + i, gn = n0 + j;
        if (gm < M && gn < N) storeC(c, (long long)gm * N + gn, alpha, Cs[i * LDC + j], beta);
    }
}

}  // namespace

// Suffix: operand storage type, then the output type when it differs (bf16f32 = bf16 A/B, f32 C).
extern "C" __global__ void __launch_bounds__(256) mode_gemm_tiled_f32(int transA, int transB, int M, int N, int K, float alpha, const float* a, long long strideA, const float* b, long long strideB, float beta, float* c, long long strideC) {
    gemmTiled(transA, transB, M, N, K, alpha, a, strideA, b, strideB, beta, c, strideC);
}
extern "C" __global__ void __launch_bounds__(256) mode_gemm_tiled_bf16(int transA, int transB, int M, int N, int K, float alpha, const bf16* a, long long strideA, const bf16* b, long long strideB, float beta, bf16* c, long long strideC) {
    gemmTiled(transA, transB, M, N, K, alpha, a, strideA, b, strideB, beta, c, strideC);
}
extern "C" __global__ void __launch_bounds__(256) mode_gemm_tiled_bf16f32(int transA, int transB, int M, int N, int K, float alpha, const bf16* a, long long strideA, const bf16* b, long long strideB, float beta, float* c, long long strideC) {
    gemmTiled(transA, transB, M, N, K, alpha, a, strideA, b, strideB, beta, c, strideC);
}
extern "C" __global__ void __launch_bounds__(128) mode_gemm_wmma_bf16(int transA, int transB, int M, int N, int K, float alpha, const bf16* a, long long strideA, const bf16* b, long long strideB, float beta, bf16* c, long long strideC) {
    gemmWmma(transA, transB, M, N, K, alpha, a, strideA, b, strideB, beta, c, strideC);
}
extern "C" __global__ void __launch_bounds__(128) mode_gemm_wmma_bf16f32(int transA, int transB, int M, int N, int K, float alpha, const bf16* a, long long strideA, const bf16* b, long long strideB, float beta, float* c, long long strideC) {
    gemmWmma(transA, transB, M, N, K, alpha, a, strideA, b, strideB, beta, c, strideC);
}
