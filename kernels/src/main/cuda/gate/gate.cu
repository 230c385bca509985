// gate.cu: the MoDE gate: row softmax over the E branches (forward, backward) and the weighted merge of
// the branch outputs, whose backward computes the branch gradients and the gate-probability gradients in
// one pass over dOut.
#include "mode_common.cuh"

namespace {

using namespace mode;

// logits, probs [n, e] (may alias); one thread per row (e is small).
template <class T>
__device__ void softmaxFwd(const T* logits, T* probs, int n, int e) {
    for (long long row = globalThread(); row < n; row += globalStride()) {
        const long long base = row * e;
        float m = -infinity();
        for (int j = 0; j < e; j++) m = fmaxf(m, load(logits, base + j));
        float s = 0.0f;
        for (int j = 0; j < e; j++) s += expf(load(logits, base + j) - m);
        float inv = 1.0f / s;
        for (int j = 0; j < e; j++) store(probs, base + j, expf(load(logits, base + j) - m) * inv);
    }
}

// dLogits = probs * (dProbs - sum(dProbs * probs)) per row (may alias dProbs).
template <class T>
__device__ void softmaxBwd(const T* dProbs, const T* probs, T* dLogits, int n, int e) {
    for (long long row = globalThread(); row < n; row += globalStride()) {
        const long long base = row * e;
        float dot = 0.0f;
        for (int j = 0; j < e; j++) dot = fmaf(load(dProbs, base + j), load(probs, base + j), dot);
        for (int j = 0; j < e; j++) store(dLogits, base + j, load(probs, base + j) * (load(dProbs, base + j) - dot));
    }
}

// out[r, j] = sum_b probs[r, b] * branches[b, r, j]; branches [e, n, d], probs [n, e], out [n, d].
template <class T>
__device__ void mergeFwd(const T* branches, const T* probs, T* out, int e, int n, int d) {
    const long long total = (long long)n * d;
    for (long long i = globalThread(); i < total; i += globalStride()) {
        long long r = i / d;
        float acc = 0.0f;
        for (int b = 0; b < e; b++) acc = fmaf(load(probs, r * e + b), load(branches, (long long)b * total + i), acc);
        store(out, i, acc);
    }
}

constexpr int kMergeThreads = 128;

// One block per row r: dProbs[r, b] = dot(dOut[r, :], branches[b, r, :]) and, when dBranches is not null,
// dBranches[b, r, :] = probs[r, b] * dOut[r, :].
template <class T>
__device__ void mergeBwd(const T* dOut, const T* branches, const T* probs, T* dBranches, T* dProbs, int e, int n, int d) {
    const long long total = (long long)n * d;
    for (int r = blockIdx.x; r < n; r += gridDim.x) {
        const long long base = (long long)r * d;
        for (int b = 0; b < e; b++) {
            const long long bb = (long long)b * total + base;
            float p = load(probs, (long long)r * e + b);
            float dot = 0.0f;
            for (int j = threadIdx.x; j < d; j += kMergeThreads) {
                float g = load(dOut, base + j);
                dot = fmaf(g, load(branches, bb + j), dot);
                if (dBranches != nullptr) store(dBranches, bb + j, p * g);
            }
            dot = blockSum<kMergeThreads>(dot);
            if (threadIdx.x == 0) store(dProbs, (long long)r * e + b, dot);
        }
    }
}

}  // namespace

// block 128, grid ceil(n / 128)
extern "C" __global__ void __launch_bounds__(128) mode_softmax_fwd_f32(const float* logits, float* probs, int n, int e) { softmaxFwd(logits, probs, n, e); }
extern "C" __global__ void __launch_bounds__(128) mode_softmax_fwd_bf16(const bf16* logits, bf16* probs, int n, int e) { softmaxFwd(logits, probs, n, e); }
extern "C" __global__ void __launch_bounds__(128) mode_softmax_bwd_f32(const float* dProbs, const float* probs, float* dLogits, int n, int e) { softmaxBwd(dProbs, probs, dLogits, n, e); }
extern "C" __global__ void __launch_bounds__(128) mode_softmax_bwd_bf16(const bf16* dProbs, const bf16* probs, bf16* dLogits, int n, int e) { softmaxBwd(dProbs, probs, dLogits, n, e); }
// block 256, grid min(ceil(n * d / 256), 65535)
extern "C" __global__ void __launch_bounds__(256) mode_merge_fwd_f32(const float* branches, const float* probs, float* out, int e, int n, int d) { mergeFwd(branches, probs, out, e, n, d); }
extern "C" __global__ void __launch_bounds__(256) mode_merge_fwd_bf16(const bf16* branches, const bf16* probs, bf16* out, int e, int n, int d) { mergeFwd(branches, probs, out, e, n, d); }
// block 128, grid min(n, 65535)
extern "C" __global__ void __launch_bounds__(128) mode_merge_bwd_f32(const float* dOut, const float* branches, const float* probs, float* dBranches, float* dProbs, int e, int n, int d) { mergeBwd(dOut, branches, probs, dBranches, dProbs, e, n, d); }
extern "C" __global__ void __launch_bounds__(128) mode_merge_bwd_bf16(const bf16* dOut, const bf16* branches, const bf16* probs, bf16* dBranches, bf16* dProbs, int e, int n, int d) { mergeBwd(dOut, branches, probs, dBranches, dProbs, e, n, d); }
