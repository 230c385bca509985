// routing.cu: sparse routing: top-k expert selection with renormalised weights, and the token permute
// (gather rows) / unpermute (deterministic scatter-add rows) around grouped expert computation.
#include "mode_rows.cuh"

namespace {

using namespace mode;

// One thread per row of probs [n, e]. The order is (value descending, index ascending); slot s takes the
// first element, in that order, that comes after the one slot s-1 took, so ties go to the lower index.
template <class T>
__device__ void topK(const T* probs, int n, int e, int k, int* indices, T* weights) {
    for (long long row = globalThread(); row < n; row += globalStride()) {
        const T* p = probs + row * e;
        float prevV = infinity();
        int prevI = -1;
        float total = 0.0f;
        for (int s = 0; s < k; s++) {
            float bestV = -infinity();
            int bestI = -1;
            for (int j = 0; j < e; j++) {
                float v = load(p, j);
                bool after = v < prevV || (v == prevV && j > prevI);
                bool better = bestI < 0 || v > bestV;
                if (after && better) {
                    bestV = v;
                    bestI = j;
                }
            }
            indices[row * k + s] = bestI;
            store(weights, row * k + s, bestV);
            total += bestV;
            prevV = bestV;
            prevI = bestI;
        }
        float inv = 1.0f / total;
        for (int s = 0; s < k; s++) store(weights, row * k + s, load(weights, row * k + s) * inv);
    }
}

}  // namespace

// probs [n, e], indices [n, k], weights [n, k]; block 128, grid ceil(n / 128).
extern "C" __global__ void __launch_bounds__(128) mode_topk_fwd_f32(const float* probs, int n, int e, int k, int* indices, float* weights) { topK(probs, n, e, k, indices, weights); }
extern "C" __global__ void __launch_bounds__(128) mode_topk_fwd_bf16(const bf16* probs, int n, int e, int k, int* indices, bf16* weights) { topK(probs, n, e, k, indices, weights); }

// src [nsrc, d], index [m], out [m, d]; block 128, grid min(m, 65535).
extern "C" __global__ void __launch_bounds__(128) mode_gather_fwd_f32(const float* src, const int* index, float* out, int m, int d, int nsrc, int* err) {
    gatherRows(src, index, out, m, d, nsrc, err, kErrGatherIndex);
}
extern "C" __global__ void __launch_bounds__(128) mode_gather_fwd_bf16(const bf16* src, const int* index, bf16* out, int m, int d, int nsrc, int* err) {
    gatherRows(src, index, out, m, d, nsrc, err, kErrGatherIndex);
}

// src [m, d], index [m], out [nout, d] accumulated; block 128, grid (ceil(d / 128), slices) (see scatterAddRows).
extern "C" __global__ void __launch_bounds__(128) mode_scatter_add_fwd_f32(const float* src, const int* index, float* out, int m, int d, int nout, int* err) {
    scatterAddRows(src, index, out, m, d, nout, err, kErrScatterIndex);
}
extern "C" __global__ void __launch_bounds__(128) mode_scatter_add_fwd_bf16(const bf16* src, const int* index, bf16* out, int m, int d, int nout, int* err) {
    scatterAddRows(src, index, out, m, d, nout, err, kErrScatterIndex);
}
