// cuda_emu.h: lets g++ compile the project's CUDA kernels (the same .cu files nvcc builds) for a CPU
// emulator, so every kernel runs, and is tested, on machines without a GPU.
//
// Execution model (see docs/emulator.md): every CUDA thread of a block has its own stack and context; by
// default they are fibers switched cooperatively on one emulator thread (fast, deterministic, deadlocks
// reported), and with -DMODE_EMU_OS_THREADS (sanitizer builds) they are OS threads from a persistent
// pool. Blocks of a grid run one after another, __syncthreads is a barrier over the block's threads,
// warp shuffles and votes exchange values through per-warp buffers and a per-warp barrier, atomics are
// std::atomic_ref. __shared__ variables are function-static storage placed in one
// linker section, refilled between blocks with a poison byte (0xFF: NaN for floats) so a kernel that
// reads shared memory it did not write fails its tests. WMMA fragments hold whole tiles in every lane.
//
// Limits: blocks never run concurrently (no inter-block races), the memory model is stronger than the
// GPU's, shuffles and votes must be reached by every non-exited lane of the warp (full masks only), and
// there is no wgmma, TMA, cp.async or cluster support.
#pragma once

#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <math.h>
#include <type_traits>
#include <utility>

#ifndef MODE_EMU
#define MODE_EMU 1
#endif

// ------------------------------------------------------------------ qualifiers
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __align__(n) __attribute__((aligned(n)))
#define __shared__ static __attribute__((section("mode_emu_shared"), aligned(16)))
#define __constant__ static const

// ------------------------------------------------------------------ built-in vector types and indices
struct uint3 {
    unsigned x, y, z;
};

struct dim3 {
    unsigned x, y, z;
    constexpr dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};

namespace emu {

struct BlockContext;

// Per-thread launch coordinates, set by the runtime before the kernel body runs.
struct ThreadContext {
    uint3 tid;   // threadIdx
    uint3 bid;   // blockIdx
    dim3 bdim;   // blockDim
    dim3 gdim;   // gridDim
    unsigned linear;        // linear thread index in the block (x fastest)
    unsigned shuffles;      // warp exchanges so far in this block (picks the buffer, tags the values)
    unsigned countCalls;    // __syncthreads_count calls so far in this block (picks a rotating counter)
    BlockContext* block;
};

// The context of the CUDA thread running on this OS thread (or fiber), set by the runtime.
extern thread_local ThreadContext* tctx;

// Block- and warp-level primitives implemented by the runtime (cuda_emu_runtime.cpp).
void syncthreads();
int syncthreadsCount(int predicate);
void syncwarp();
unsigned long long warpExchange(unsigned long long value, int srcLane, bool* srcValid);
unsigned ballot(int predicate);
void* dynamicShared();
[[noreturn]] void trap(const char* what);

template <class T>
inline unsigned long long toBits(T v) {
    static_assert(sizeof(T) <= 8 && std::is_trivially_copyable_v<T>, "shuffle of an unsupported type");
    unsigned long long bits = 0;
    std::memcpy(&bits, &v, sizeof(T));
    return bits;
}

template <class T>
inline T fromBits(unsigned long long bits) {
    T v;
    std::memcpy(&v, &bits, sizeof(T));
    return v;
}

inline unsigned laneId() { return tctx->linear & 31u; }

// Source lane of a shuffle, or -1 when the lane keeps its own value (out of its width segment).
template <class T>
inline T shuffleFrom(T v, int src) {
    bool valid = true;
    unsigned long long got = warpExchange(toBits(v), src, &valid);
    return valid ? fromBits<T>(got) : v;
}

}  // namespace emu

#define threadIdx (::emu::tctx->tid)
#define blockIdx (::emu::tctx->bid)
#define blockDim (::emu::tctx->bdim)
#define gridDim (::emu::tctx->gdim)
#define warpSize 32

// ------------------------------------------------------------------ synchronisation, shuffles, votes
inline void __syncthreads() { emu::syncthreads(); }
inline int __syncthreads_count(int p) { return emu::syncthreadsCount(p); }
inline int __syncthreads_or(int p) { return emu::syncthreadsCount(p) != 0; }
inline int __syncthreads_and(int p) { return emu::syncthreadsCount(p) == (int)(blockDim.x * blockDim.y * blockDim.z); }
inline void __syncwarp(unsigned = 0xffffffffu) { emu::syncwarp(); }
inline void __threadfence() { std::atomic_thread_fence(std::memory_order_seq_cst); }
inline void __threadfence_block() { std::atomic_thread_fence(std::memory_order_seq_cst); }
[[noreturn]] inline void __trap() { emu::trap("__trap() called"); }

template <class T>
inline T __shfl_sync(unsigned, T v, int srcLane, int width = 32) {
    int lane = (int)emu::laneId();
    int src = (lane & ~(width - 1)) + (srcLane & (width - 1));
    return emu::shuffleFrom(v, src);
}

template <class T>
inline T __shfl_xor_sync(unsigned, T v, int laneMask, int width = 32) {
    int lane = (int)emu::laneId();
    int src = lane ^ laneMask;
    if ((src & ~(width - 1)) != (lane & ~(width - 1))) src = -1;
    return emu::shuffleFrom(v, src);
}

template <class T>
inline T __shfl_down_sync(unsigned, T v, unsigned delta, int width = 32) {
    int lane = (int)emu::laneId();
    int src = ((lane & (width - 1)) + (int)delta < width) ? lane + (int)delta : -1;
    return emu::shuffleFrom(v, src);
}

template <class T>
inline T __shfl_up_sync(unsigned, T v, unsigned delta, int width = 32) {
    int lane = (int)emu::laneId();
    int src = ((lane & (width - 1)) >= (int)delta) ? lane - (int)delta : -1;
    return emu::shuffleFrom(v, src);
}

inline unsigned __ballot_sync(unsigned, int p) { return emu::ballot(p); }
inline int __any_sync(unsigned, int p) { return emu::ballot(p) != 0; }
// Exited lanes do not vote, so they do not count against "all".
inline int __all_sync(unsigned, int p) { return emu::ballot(!p) == 0; }
inline unsigned __activemask() { return emu::ballot(1); }

// ------------------------------------------------------------------ atomics (device memory is host memory)
template <class T>
inline T atomicAdd(T* p, T v) { return std::atomic_ref<T>(*p).fetch_add(v); }
template <class T>
inline T atomicSub(T* p, T v) { return std::atomic_ref<T>(*p).fetch_sub(v); }
template <class T>
inline T atomicExch(T* p, T v) { return std::atomic_ref<T>(*p).exchange(v); }
template <class T>
inline T atomicCAS(T* p, T expected, T desired) {
    std::atomic_ref<T>(*p).compare_exchange_strong(expected, desired);
    return expected;
}
template <class T>
inline T atomicMax(T* p, T v) {
    std::atomic_ref<T> r(*p);
    T old = r.load();
    while (old < v && !r.compare_exchange_weak(old, v)) {}
    return old;
}
template <class T>
inline T atomicMin(T* p, T v) {
    std::atomic_ref<T> r(*p);
    T old = r.load();
    while (v < old && !r.compare_exchange_weak(old, v)) {}
    return old;
}
template <class T>
inline T atomicOr(T* p, T v) { return std::atomic_ref<T>(*p).fetch_or(v); }
template <class T>
inline T atomicAnd(T* p, T v) { return std::atomic_ref<T>(*p).fetch_and(v); }

// ------------------------------------------------------------------ math intrinsics
inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }
inline double rsqrt(double x) { return 1.0 / sqrt(x); }
inline float __expf(float x) { return expf(x); }
inline float __logf(float x) { return logf(x); }
inline float __sinf(float x) { return sinf(x); }
inline float __cosf(float x) { return cosf(x); }
inline float __fdividef(float a, float b) { return a / b; }
inline float __frcp_rn(float x) { return 1.0f / x; }
inline float __fsqrt_rn(float x) { return sqrtf(x); }
// 1/sqrt(x) correctly rounded: float64's sqrt and division, then one rounding to float, give the nearest float for
// every float x (checked exhaustively over [1, 4), which covers all since rsqrt(4x) = rsqrt(x) / 2)
inline float __frsqrt_rn(float x) { return (float)(1.0 / sqrt((double)x)); }
inline float __fmaf_rn(float a, float b, float c) { return fmaf(a, b, c); }
inline void sincospi(double x, double* s, double* c) {
    *s = sin(M_PI * x);
    *c = cos(M_PI * x);
}
inline void sincospif(float x, float* s, float* c) {
    *s = sinf((float)M_PI * x);
    *c = cosf((float)M_PI * x);
}
inline float __saturatef(float x) { return x < 0.0f ? 0.0f : (x > 1.0f ? 1.0f : x); }
inline float __int_as_float(int i) { return emu::fromBits<float>((unsigned)i); }
inline int __float_as_int(float f) { return (int)(unsigned)emu::toBits(f); }
inline float __uint_as_float(unsigned i) { return emu::fromBits<float>(i); }
inline unsigned __float_as_uint(float f) { return (unsigned)emu::toBits(f); }
inline long long __double_as_longlong(double d) { return (long long)emu::toBits(d); }
inline double __longlong_as_double(long long l) { return emu::fromBits<double>((unsigned long long)l); }
inline int __popc(unsigned x) { return __builtin_popcount(x); }
inline int __clz(int x) { return x == 0 ? 32 : __builtin_clz((unsigned)x); }
inline int __ffs(int x) { return __builtin_ffs(x); }
template <class T>
inline T __ldg(const T* p) { return *p; }

inline int min(int a, int b) { return a < b ? a : b; }
inline int max(int a, int b) { return a > b ? a : b; }
inline unsigned min(unsigned a, unsigned b) { return a < b ? a : b; }
inline unsigned max(unsigned a, unsigned b) { return a > b ? a : b; }
inline long long min(long long a, long long b) { return a < b ? a : b; }
inline long long max(long long a, long long b) { return a > b ? a : b; }
inline float min(float a, float b) { return fminf(a, b); }
inline float max(float a, float b) { return fmaxf(a, b); }

// ------------------------------------------------------------------ bfloat16 (storage type, as cuda_bf16.h)
struct __nv_bfloat16 {
    unsigned short __x;
};

inline float __bfloat162float(__nv_bfloat16 h) { return emu::fromBits<float>((unsigned)h.__x << 16); }

// Round to nearest even; NaN stays a (quiet) NaN.
inline __nv_bfloat16 __float2bfloat16(float f) {
    unsigned u = (unsigned)emu::toBits(f);
    __nv_bfloat16 h;
    if ((u & 0x7fffffffu) > 0x7f800000u) {
        h.__x = (unsigned short)((u >> 16) | 0x40u);
    } else {
        u += 0x7fffu + ((u >> 16) & 1u);
        h.__x = (unsigned short)(u >> 16);
    }
    return h;
}
inline __nv_bfloat16 __float2bfloat16_rn(float f) { return __float2bfloat16(f); }

// ------------------------------------------------------------------ WMMA (whole tiles in every lane)
namespace nvcuda {
namespace wmma {

struct matrix_a {};
struct matrix_b {};
struct accumulator {};
struct row_major {};
struct col_major {};
enum layout_t { mem_row_major, mem_col_major };

namespace detail {
template <class T>
inline float toFloat(T v) {
    if constexpr (std::is_same_v<T, __nv_bfloat16>) return __bfloat162float(v);
    else return (float)v;
}
template <class T>
inline T fromFloat(float v) {
    if constexpr (std::is_same_v<T, __nv_bfloat16>) return __float2bfloat16(v);
    else return (T)v;
}
}  // namespace detail

// A fragment is the whole logical tile, row-major: rows x cols of T. Each lane holds a full copy.
template <class Use, int M, int N, int K, class T, class Layout = void>
struct fragment {
    static constexpr int rows = std::is_same_v<Use, matrix_b> ? K : M;
    static constexpr int cols = std::is_same_v<Use, matrix_a> ? K : N;
    static constexpr int num_elements = rows * cols;
    T x[num_elements];
};

template <class Use, int M, int N, int K, class T, class Layout, class V>
inline void fill_fragment(fragment<Use, M, N, K, T, Layout>& f, const V& v) {
    T t = detail::fromFloat<T>(detail::toFloat(v));
    for (int i = 0; i < f.num_elements; i++) f.x[i] = t;
}

// matrix_a / matrix_b: the fragment's layout type says how memory is laid out (ldm = leading dimension).
template <class Use, int M, int N, int K, class T, class Layout>
inline void load_matrix_sync(fragment<Use, M, N, K, T, Layout>& f, const T* p, unsigned ldm) {
    using F = fragment<Use, M, N, K, T, Layout>;
    static_assert(!std::is_same_v<Use, accumulator>, "accumulator loads take a layout_t");
    for (int r = 0; r < F::rows; r++)
        for (int c = 0; c < F::cols; c++)
            f.x[r * F::cols + c] = std::is_same_v<Layout, row_major> ? p[(size_t)r * ldm + c] : p[(size_t)c * ldm + r];
    __syncwarp();
}

template <int M, int N, int K, class T>
inline void load_matrix_sync(fragment<accumulator, M, N, K, T, void>& f, const T* p, unsigned ldm, layout_t layout) {
    for (int r = 0; r < M; r++)
        for (int c = 0; c < N; c++)
            f.x[r * N + c] = layout == mem_row_major ? p[(size_t)r * ldm + c] : p[(size_t)c * ldm + r];
    __syncwarp();
}

// Stores are split across the warp's lanes (element i by lane i % 32), as the hardware distributes them,
// so no address is written twice; readers must synchronise afterwards, as on the GPU.
template <int M, int N, int K, class T>
inline void store_matrix_sync(T* p, const fragment<accumulator, M, N, K, T, void>& f, unsigned ldm, layout_t layout) {
    unsigned lane = emu::laneId();
    for (int i = (int)lane; i < M * N; i += 32) {
        int r = i / N, c = i % N;
        if (layout == mem_row_major) p[(size_t)r * ldm + c] = f.x[i];
        else p[(size_t)c * ldm + r] = f.x[i];
    }
    __syncwarp();
}

template <int M, int N, int K, class TA, class LA, class TB, class LB, class TC>
inline void mma_sync(fragment<accumulator, M, N, K, TC, void>& d, const fragment<matrix_a, M, N, K, TA, LA>& a,
                     const fragment<matrix_b, M, N, K, TB, LB>& b, const fragment<accumulator, M, N, K, TC, void>& c) {
    float out[M * N];
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            float acc = detail::toFloat(c.x[i * N + j]);
            for (int k = 0; k < K; k++) acc += detail::toFloat(a.x[i * K + k]) * detail::toFloat(b.x[k * N + j]);
            out[i * N + j] = acc;
        }
    for (int i = 0; i < M * N; i++) d.x[i] = detail::fromFloat<TC>(out[i]);
    __syncwarp();
}

}  // namespace wmma
}  // namespace nvcuda

// ------------------------------------------------------------------ kernel registry (used by generated code)
namespace emu {

using Trampoline = void (*)(void* fn, void** params);

void registerKernel(const char* name, void* fn, Trampoline trampoline, const char* signature);

// One character per parameter type: p pointer, i int, u unsigned, l long long, f float, d double.
template <class T>
constexpr char typeCode() {
    if constexpr (std::is_pointer_v<T>) return 'p';
    else if constexpr (std::is_same_v<T, float>) return 'f';
    else if constexpr (std::is_same_v<T, double>) return 'd';
    else if constexpr (std::is_same_v<T, int>) return 'i';
    else if constexpr (std::is_same_v<T, unsigned>) return 'u';
    else if constexpr (std::is_same_v<T, long long>) return 'l';
    else {
        static_assert(sizeof(T) == 0, "kernel parameters must be pointers, int, unsigned, long long, float or double");
        return '?';
    }
}

template <class... A, std::size_t... I>
inline void invoke(void (*f)(A...), void** params, std::index_sequence<I...>) {
    f(*static_cast<std::remove_cv_t<A>*>(params[I])...);
}

template <class... A>
void trampoline(void* fn, void** params) {
    invoke(reinterpret_cast<void (*)(A...)>(fn), params, std::index_sequence_for<A...>{});
}

template <class... A>
struct Registrar {
    static constexpr char signature[sizeof...(A) + 1] = {typeCode<A>()..., '\0'};
    Registrar(const char* name, void (*f)(A...)) {
        registerKernel(name, reinterpret_cast<void*>(f), &trampoline<A...>, signature);
    }
};

}  // namespace emu

#define MODE_EMU_REGISTER(name) static ::emu::Registrar mode_emu_registrar_##name{#name, &name};
