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
__device__ __forceinline__ float sigmoid(float g) { return 1.0f / (1.0f + expf(-g)); }

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
// One 64-bit slot per error code (slot code - 1, kErrSlots of them), all bits set when clear. A slot holds
// (position << 32) | (unsigned) value, lowered with atomicMin: whatever the order blocks run in, a slot ends
// at the lowest offending position (ties: the lowest value bits), so the reported error is the same on every
// run and every backend. The DeviceBackend reads the slots and sets them back to all ones when it synchronises.
enum ErrorCode {
    kErrNone = 0,
    kErrEmbeddingId = 1,
    kErrGatherIndex = 2,
    kErrScatterIndex = 3,
    kErrTarget = 4,
    kErrGroupedRow = 5,
    kErrGroupOffsets = 6
};
constexpr int kErrSlots = 6;

__device__ __forceinline__ void raiseError(int* err, int code, int value, int position) {
    unsigned long long packed = ((unsigned long long)(unsigned)position << 32) | (unsigned)value;
    atomicMin(reinterpret_cast<unsigned long long*>(err) + (code - 1), packed);
}

}  // namespace mode

namespace mode {

// Column sums in two fixed-order stages, so that long columns are spread over many blocks:
// columnSumPartial: grid (ceil(cols / X), chunks), block (X, Y) = (kLaunchColumnBlockX, kLaunchColumnBlockY).
// Block (x, y) sums rows [y * chunk, min(rows, (y + 1) * chunk)) of columns X*x .. X*x + X - 1: thread (tx, ty)
// takes rows ty, ty + Y, ... of the chunk, and row ty == 0 adds the Y partials in order into partial[y * cols + j].
// mode_colsum_finish_f32 (elementwise.cu) then adds out[j] += partial[0, j] + partial[1, j] + ... in order.
template <class F> __device__ __forceinline__ void columnSumPartial(int rows, int cols, int chunk, F f, float* partial) {
    constexpr int X = kLaunchColumnBlockX, Y = kLaunchColumnBlockY;
    __shared__ float part[Y][X + 1];
    const int j = blockIdx.x * X + threadIdx.x;
    const int r0 = blockIdx.y * chunk, r1 = rows - r0 < chunk ? rows : r0 + chunk;
    float s = 0.0f;
    if (j < cols) {
        for (int r = r0 + threadIdx.y; r < r1; r += Y) s += f(r, j);
    }
    part[threadIdx.y][threadIdx.x] = s;
    __syncthreads();
    if (threadIdx.y == 0 && j < cols) {
        float t = 0.0f;
        for (int y = 0; y < Y; y++) t += part[y][threadIdx.x];
        partial[(long long)blockIdx.y * cols + j] = t;
    }
}

}  // namespace mode
