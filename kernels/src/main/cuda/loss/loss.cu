// loss.cu: fused softmax cross-entropy with next-token accuracy. One block per row computes max and
// arg-max (ties to the lowest index), the log-sum-exp, the row loss and, optionally, the logits gradient
// (which may overwrite the logits); a second one-block kernel adds the rows in a fixed order (float64).
#include "mode_common.cuh"

namespace {

using namespace mode;

constexpr int kThreads = 256;
constexpr int kIgnoreIndex = -100;

// Block-wide arg-max: larger value wins, equal values go to the lower index.
__device__ __forceinline__ void argMaxCombine(float& v, int& i, float ov, int oi) {
    if (ov > v || (ov == v && oi < i)) {
        v = ov;
        i = oi;
    }
}

__device__ __forceinline__ void blockArgMax(float& v, int& i) {
    __shared__ float sv[kThreads / 32];
    __shared__ int si[kThreads / 32];
    for (int o = 16; o > 0; o >>= 1) {
        float ov = __shfl_xor_sync(0xffffffffu, v, o);
        int oi = __shfl_xor_sync(0xffffffffu, i, o);
        argMaxCombine(v, i, ov, oi);
    }
    if ((threadIdx.x & 31) == 0) {
        sv[threadIdx.x >> 5] = v;
        si[threadIdx.x >> 5] = i;
    }
    __syncthreads();
    v = sv[0];
    i = si[0];
    for (int w = 1; w < kThreads / 32; w++) argMaxCombine(v, i, sv[w], si[w]);
    __syncthreads();
}

// logits [n, v], targets [n]; rowLoss [n] (0 on ignored rows), rowFlag [n] = 1 correct, 0 wrong, -1 ignored.
template <class T>
__device__ void crossEntropyFwd(const T* logits, const int* targets, T* dLogits, float gradScale, int n, int v,
                                float* rowLoss, int* rowFlag, int* err) {
    for (int row = blockIdx.x; row < n; row += gridDim.x) {
        const long long base = (long long)row * v;
        const int target = targets[row];
        const bool ignored = target == kIgnoreIndex;
        if (!ignored && (target < 0 || target >= v)) {
            if (threadIdx.x == 0) raiseError(err, kErrTarget, target, row);
        }
        const bool counted = !ignored && target >= 0 && target < v;
        float m = -infinity();
        int arg = 0x7fffffff;
        for (int j = threadIdx.x; j < v; j += kThreads) argMaxCombine(m, arg, load(logits, base + j), j);
        blockArgMax(m, arg);
        float s = 0.0f;
        for (int j = threadIdx.x; j < v; j += kThreads) s += expf(load(logits, base + j) - m);
        s = blockSum<kThreads>(s);
        const float logSum = logf(s);
        if (threadIdx.x == 0) {
            rowLoss[row] = counted ? logSum + m - load(logits, base + target) : 0.0f;
            rowFlag[row] = counted ? (arg == target ? 1 : 0) : -1;
        }
        if (dLogits != nullptr) {
            __syncthreads();  // the target logit is read above before dLogits (which may alias) overwrites it
            const float inv = 1.0f / s;
            for (int j = threadIdx.x; j < v; j += kThreads) {
                float g = counted ? (expf(load(logits, base + j) - m) * inv - (j == target ? 1.0f : 0.0f)) * gradScale : 0.0f;
                store(dLogits, base + j, g);
            }
        }
    }
}

}  // namespace

// block 256, grid min(n, 65535); dLogits may be null
extern "C" __global__ void __launch_bounds__(256) mode_crossentropy_fwd_f32(const float* logits, const int* targets, float* dLogits, float gradScale, int n, int v, float* rowLoss, int* rowFlag, int* err) {
    crossEntropyFwd(logits, targets, dLogits, gradScale, n, v, rowLoss, rowFlag, err);
}
extern "C" __global__ void __launch_bounds__(256) mode_crossentropy_fwd_bf16(const bf16* logits, const int* targets, bf16* dLogits, float gradScale, int n, int v, float* rowLoss, int* rowFlag, int* err) {
    crossEntropyFwd(logits, targets, dLogits, gradScale, n, v, rowLoss, rowFlag, err);
}

// stats = {sum of row losses, correct rows, counted rows} in float64; one block of 256 threads.
extern "C" __global__ void __launch_bounds__(256) mode_crossentropy_reduce_f32(const float* rowLoss, const int* rowFlag, int n, double* stats) {
    double loss = 0.0, correct = 0.0, count = 0.0;
    for (int i = threadIdx.x; i < n; i += kThreads) {
        loss += (double)rowLoss[i];
        correct += rowFlag[i] == 1 ? 1.0 : 0.0;
        count += rowFlag[i] >= 0 ? 1.0 : 0.0;
    }
    loss = blockSum<kThreads>(loss);
    correct = blockSum<kThreads>(correct);
    count = blockSum<kThreads>(count);
    if (threadIdx.x == 0) {
        stats[0] = loss;
        stats[1] = correct;
        stats[2] = count;
    }
}
