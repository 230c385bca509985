// mode_common.cuh: what every kernel family shares: the bf16 storage type, load/store with float32
// math, warp and block reductions with a fixed order (deterministic), and the device error word.
// Compiles under nvcc, NVRTC and g++ with the CPU emulator (MODE_EMU, see kernels/src/main/emu/cuda_emu.h).
#pragma once

#include "mode_launch.cuh"

#ifdef MODE_EMU
#include "cuda_emu.h"
#else
#include <cuda_bf16.h>
#endif

typedef __nv_bfloat16 bf16;

namespace mode {

__device__ __forceinline__ float infinity() { return __int_as_float(0x7f800000); }
__device__ __forceinline__ float quietNaN() { return __int_as_float(0x7fc00000); }

// ---------------------------------------------------------------- storage <-> float32
template <class T> __device__ __forceinline__ float load(const T* p, long long i);
template <> __device__ __forceinline__ float load<float>(const float* p, long long i) { return p[i]; }
template <> __device__ __forceinline__ float load<bf16>(const bf16* p, long long i) { return __bfloat162float(p[i]); }

template <class T> __device__ __forceinline__ void store(T* p, long long i, float v);
template <> __device__ __forceinline__ void store<float>(float* p, long long i, float v) { p[i] = v; }
template <> __device__ __forceinline__ void store<bf16>(bf16* p, long long i, float v) { p[i] = __float2bfloat16(v); }

// ---------------------------------------------------------------- grid-stride index helpers
__device__ __forceinline__ long long globalThread() { return (long long)blockIdx.x * blockDim.x + threadIdx.x; }
__device__ __forceinline__ long long globalStride() { return (long long)gridDim.x * blockDim.x; }

// ---------------------------------------------------------------- reductions (fixed order)
template <class V> __device__ __forceinline__ V warpSum(V v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

__device__ __forceinline__ float warpMax(float v) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

// Sum over a 1-D block of NT threads (NT a multiple of 32); every thread gets the same total.
// Warp sums are added in warp order, so the result does not depend on scheduling.
template <int NT, class V> __device__ __forceinline__ V blockSum(V v) {
    __shared__ V partial[NT / 32];
    v = warpSum(v);
    if ((threadIdx.x & 31) == 0) partial[threadIdx.x >> 5] = v;
    __syncthreads();
    V total = partial[0];
    for (int w = 1; w < NT / 32; w++) total += partial[w];
    __syncthreads();  // partial may be reused by the next call
    return total;
}

template <int NT> __device__ __forceinline__ float blockMax(float v) {
    __shared__ float partial[NT / 32];
    v = warpMax(v);
    if ((threadIdx.x & 31) == 0) partial[threadIdx.x >> 5] = v;
    __syncthreads();
    float m = partial[0];
    for (int w = 1; w < NT / 32; w++) m = fmaxf(m, partial[w]);
    __syncthreads();
    return m;
}

// ---------------------------------------------------------------- device error word
// err[0] = error code (first one wins), err[1] = the offending value, err[2] = its position.
// The DeviceBackend reads and clears it when it synchronises.
enum ErrorCode { kErrNone = 0, kErrEmbeddingId = 1, kErrGatherIndex = 2, kErrScatterIndex = 3, kErrTarget = 4 };

__device__ __forceinline__ void raiseError(int* err, int code, int value, int position) {
    if (atomicCAS(err, 0, code) == 0) {
        err[1] = value;
        err[2] = position;
    }
}

}  // namespace mode

namespace mode {

// out[j] += sum over r < rows of f(r, j), for j < cols. Block (X, Y) = (32, 8), grid ceil(cols / X): thread
// (x, y) sums rows y, y+Y, ... of column blockIdx.x*X + x, and row y == 0 adds the Y partials in order.
template <class F> __device__ __forceinline__ void columnSumAccumulate(int rows, int cols, F f, float* out) {
    constexpr int X = kLaunchColumnBlockX, Y = kLaunchColumnBlockY;
    __shared__ float partial[Y][X + 1];
    int j = blockIdx.x * X + threadIdx.x;
    float s = 0.0f;
    if (j < cols) {
        for (int r = threadIdx.y; r < rows; r += Y) s += f(r, j);
    }
    partial[threadIdx.y][threadIdx.x] = s;
    __syncthreads();
    if (threadIdx.y == 0 && j < cols) {
        float t = 0.0f;
        for (int y = 0; y < Y; y++) t += partial[y][threadIdx.x];
        out[j] += t;
    }
}

}  // namespace mode
