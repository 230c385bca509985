// elementwise.cu: fill, add, axpy, scale (grid-stride loops), the float64 sum of squares used for
// gradient-norm clipping (fixed per-block partials, then one block adds them in order: deterministic),
// and the two-stage column sums behind sumRowsAccumulate and the RMSNorm weight gradient.
#include "mode_common.cuh"

namespace {

using namespace mode;

template <class T> __device__ void addFwd(const T* a, const T* b, T* out, long long n) {
    for (long long i = globalThread(); i < n; i += globalStride()) store(out, i, load(a, i) + load(b, i));
}

template <class T> __device__ void axpyFwd(float alpha, const T* x, T* y, long long n) {
    for (long long i = globalThread(); i < n; i += globalStride()) store(y, i, fmaf(alpha, load(x, i), load(y, i)));
}

template <class T> __device__ void scaleFwd(T* x, float s, long long n) {
    for (long long i = globalThread(); i < n; i += globalStride()) store(x, i, load(x, i) * s);
}

// partials[blockIdx.x] = sum of x[i]^2 over the block's grid-stride share, in float64. Block of 256.
template <class T> __device__ void sumSquaresPartial(const T* x, long long n, double* partials) {
    double s = 0.0;
    for (long long i = globalThread(); i < n; i += globalStride()) {
        double v = (double)load(x, i);
        s += v * v;
    }
    s = blockSum<256>(s);
    if (threadIdx.x == 0) partials[blockIdx.x] = s;
}

// x [rows, cols] -> partial [chunks, cols]: stage 1 of the column sum (columnSumPartial).
template <class T> __device__ void sumRows(const T* x, int rows, int cols, int chunk, float* partial) {
    columnSumPartial(rows, cols, chunk, [&](int r, int j) { return load(x, (long long)r * cols + j); }, partial);
}

}  // namespace

extern "C" __global__ void __launch_bounds__(256) mode_fill_fwd_f32(float* x, long long n, float value) {
    for (long long i = globalThread(); i < n; i += globalStride()) x[i] = value;
}

extern "C" __global__ void __launch_bounds__(256) mode_add_fwd_f32(const float* a, const float* b, float* out, long long n) { addFwd(a, b, out, n); }
extern "C" __global__ void __launch_bounds__(256) mode_add_fwd_bf16(const bf16* a, const bf16* b, bf16* out, long long n) { addFwd(a, b, out, n); }

extern "C" __global__ void __launch_bounds__(256) mode_axpy_fwd_f32(float alpha, const float* x, float* y, long long n) { axpyFwd(alpha, x, y, n); }
extern "C" __global__ void __launch_bounds__(256) mode_axpy_fwd_bf16(float alpha, const bf16* x, bf16* y, long long n) { axpyFwd(alpha, x, y, n); }

extern "C" __global__ void __launch_bounds__(256) mode_scale_fwd_f32(float* x, float s, long long n) { scaleFwd(x, s, n); }
extern "C" __global__ void __launch_bounds__(256) mode_scale_fwd_bf16(bf16* x, float s, long long n) { scaleFwd(x, s, n); }

extern "C" __global__ void __launch_bounds__(256) mode_sumsquares_partial_f32(const float* x, long long n, double* partials) { sumSquaresPartial(x, n, partials); }
extern "C" __global__ void __launch_bounds__(256) mode_sumsquares_partial_bf16(const bf16* x, long long n, double* partials) { sumSquaresPartial(x, n, partials); }

// out[0] = sum of partials[0..count), one block of 256 threads, fixed order.
extern "C" __global__ void __launch_bounds__(256) mode_sumsquares_final_f64(const double* partials, int count, double* out) {
    double s = 0.0;
    for (int i = threadIdx.x; i < count; i += 256) s += partials[i];
    s = blockSum<256>(s);
    if (threadIdx.x == 0) out[0] = s;
}

// block (32, 8), grid (ceil(cols / 32), ceil(rows / chunk))
extern "C" __global__ void __launch_bounds__(256) mode_sumrows_fwd_f32(const float* x, int rows, int cols, int chunk, float* partial) { sumRows(x, rows, cols, chunk, partial); }
extern "C" __global__ void __launch_bounds__(256) mode_sumrows_fwd_bf16(const bf16* x, int rows, int cols, int chunk, float* partial) { sumRows(x, rows, cols, chunk, partial); }

// Stage 2 of every column sum: out[j] += partial[0, j] + ... + partial[chunks - 1, j], in that order.
// Grid-stride over columns, block 256.
extern "C" __global__ void __launch_bounds__(256) mode_colsum_finish_f32(const float* partial, int chunks, int cols, float* out) {
    for (long long j = globalThread(); j < cols; j += globalStride()) {
        float t = 0.0f;
        for (int c = 0; c < chunks; c++) t += partial[c * (long long)cols + j];
        out[j] += t;
    }
}
