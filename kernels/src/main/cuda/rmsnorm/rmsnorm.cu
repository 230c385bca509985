// rmsnorm.cu: RMSNorm over the last dimension. Forward saves rstd per row; backward computes dx per row
// and accumulates the weight gradient with a deterministic column reduction over rows.
// Activations are T (f32 or bf16); the weight, its gradient and rstd are float32.
#include "mode_common.cuh"

namespace {

using namespace mode;

constexpr int kThreads = 128;

// x, out [n, d]; w [d]; rstd [n]. One block per row (grid-stride).
template <class T>
__device__ void rmsNormFwd(const T* x, const float* w, float eps, T* out, float* rstd, int n, int d) {
    for (int row = blockIdx.x; row < n; row += gridDim.x) {
        const long long base = (long long)row * d;
        float ss = 0.0f;
        for (int j = threadIdx.x; j < d; j += kThreads) {
            float v = load(x, base + j);
            ss = fmaf(v, v, ss);
        }
        ss = blockSum<kThreads>(ss);
        float r = __frsqrt_rn(ss / (float)d + eps);
        for (int j = threadIdx.x; j < d; j += kThreads) store(out, base + j, load(x, base + j) * r * w[j]);
        if (threadIdx.x == 0) rstd[row] = r;
    }
}

// dx = r * (g * w) - x * r^3 * mean(g * w * x), per row.
template <class T>
__device__ void rmsNormBwd(const T* dOut, const T* x, const float* w, const float* rstd, T* dx, int n, int d) {
    for (int row = blockIdx.x; row < n; row += gridDim.x) {
        const long long base = (long long)row * d;
        float dot = 0.0f;
        for (int j = threadIdx.x; j < d; j += kThreads) dot = fmaf(load(dOut, base + j) * w[j], load(x, base + j), dot);
        dot = blockSum<kThreads>(dot);
        float r = rstd[row];
        float c = r * r * r * dot / (float)d;
        for (int j = threadIdx.x; j < d; j += kThreads) {
            store(dx, base + j, r * load(dOut, base + j) * w[j] - load(x, base + j) * c);
        }
    }
}

// dWeight[j] += sum over rows of dOut * x * rstd, stage 1: per-chunk column sums into partial (columnSumPartial).
template <class T>
__device__ void rmsNormBwdWeight(const T* dOut, const T* x, const float* rstd, float* partial, int n, int d, int chunk) {
    columnSumPartial(
        n, d, chunk, [&](int r, int j) { return load(dOut, (long long)r * d + j) * load(x, (long long)r * d + j) * rstd[r]; },
        partial);
}

}  // namespace

// block 128, grid min(n, 65535)
extern "C" __global__ void __launch_bounds__(128) mode_rmsnorm_fwd_f32(const float* x, const float* w, float eps, float* out, float* rstd, int n, int d) { rmsNormFwd(x, w, eps, out, rstd, n, d); }
extern "C" __global__ void __launch_bounds__(128) mode_rmsnorm_fwd_bf16(const bf16* x, const float* w, float eps, bf16* out, float* rstd, int n, int d) { rmsNormFwd(x, w, eps, out, rstd, n, d); }
extern "C" __global__ void __launch_bounds__(128) mode_rmsnorm_bwd_f32(const float* dOut, const float* x, const float* w, const float* rstd, float* dx, int n, int d) { rmsNormBwd(dOut, x, w, rstd, dx, n, d); }
extern "C" __global__ void __launch_bounds__(128) mode_rmsnorm_bwd_bf16(const bf16* dOut, const bf16* x, const float* w, const float* rstd, bf16* dx, int n, int d) { rmsNormBwd(dOut, x, w, rstd, dx, n, d); }
// Stage 1 of the dWeight column sum into partial [ceil(n / chunk), d]; block (32, 8), grid (ceil(d / 32), ceil(n / chunk))
extern "C" __global__ void __launch_bounds__(256) mode_rmsnorm_bwdweight_f32(const float* dOut, const float* x, const float* rstd, float* partial, int n, int d, int chunk) { rmsNormBwdWeight(dOut, x, rstd, partial, n, d, chunk); }
extern "C" __global__ void __launch_bounds__(256) mode_rmsnorm_bwdweight_bf16(const bf16* dOut, const bf16* x, const float* rstd, float* partial, int n, int d, int chunk) { rmsNormBwdWeight(dOut, x, rstd, partial, n, d, chunk); }
