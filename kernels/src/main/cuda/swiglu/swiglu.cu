// swiglu.cu: SwiGLU activation out = silu(gate) * up and its backward, elementwise.
#include "mode_common.cuh"

namespace {

using namespace mode;

template <class T>
__device__ void swiGluFwd(const T* gate, const T* up, T* out, long long n) {
    for (long long i = globalThread(); i < n; i += globalStride()) {
        float g = load(gate, i);
        store(out, i, g * sigmoid(g) * load(up, i));
    }
}

// dUp = dOut * silu(g); dGate = dOut * up * sig(g) * (1 + g * (1 - sig(g))). Reads before writes, so the
// outputs may alias the inputs element for element.
template <class T>
__device__ void swiGluBwd(const T* dOut, const T* gate, const T* up, T* dGate, T* dUp, long long n) {
    for (long long i = globalThread(); i < n; i += globalStride()) {
        float g = load(gate, i), u = load(up, i), d = load(dOut, i);
        float s = sigmoid(g);
        store(dGate, i, d * u * s * (1.0f + g * (1.0f - s)));
        store(dUp, i, d * g * s);
    }
}

}  // namespace

// block 256, grid min(ceil(n / 256), 65535)
extern "C" __global__ void __launch_bounds__(256) mode_swiglu_fwd_f32(const float* gate, const float* up, float* out, long long n) { swiGluFwd(gate, up, out, n); }
extern "C" __global__ void __launch_bounds__(256) mode_swiglu_fwd_bf16(const bf16* gate, const bf16* up, bf16* out, long long n) { swiGluFwd(gate, up, out, n); }
extern "C" __global__ void __launch_bounds__(256) mode_swiglu_bwd_f32(const float* dOut, const float* gate, const float* up, float* dGate, float* dUp, long long n) { swiGluBwd(dOut, gate, up, dGate, dUp, n); }
extern "C" __global__ void __launch_bounds__(256) mode_swiglu_bwd_bf16(const bf16* dOut, const bf16* gate, const bf16* up, bf16* dGate, bf16* dUp, long long n) { swiGluBwd(dOut, gate, up, dGate, dUp, n); }
