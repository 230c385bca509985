// rope.cu: rotary position embedding, Hugging Face Llama convention (rotate_half: element i pairs with
// i + hd/2), forward and backward (the inverse rotation). Pair i turns by position * invFreq[i] radians, the
// frequency table the model computed once from its config (plain or scaled RoPE), in float64 so long positions
// keep their precision. In place is allowed: each thread reads its pair before writing it.
#include "mode_common.cuh"

namespace {

using namespace mode;

// x, out [b, t, h, hd]; invFreq [hd/2] float64; position of token ti is posOffset + ti; sign +1 rotates, -1 back.
template <class T>
__device__ void rope(const T* x, T* out, const double* invFreq, int b, int t, int h, int hd, int posOffset,
                     float sign) {
    const int half = hd / 2;
    const long long pairs = (long long)b * t * h * half;
    for (long long p = globalThread(); p < pairs; p += globalStride()) {
        int i = (int)(p % half);
        long long row = p / half;  // (bi * t + ti) * h + hi
        int ti = (int)((row / h) % t);
        // angle / pi in float64; sincospi needs no slow argument reduction (no local memory).
        double turns = (double)(posOffset + ti) * invFreq[i] * 0.31830988618379067154;
        double sn, cs;
        sincospi(turns, &sn, &cs);
        float c = (float)cs, s = sign * (float)sn;
        long long lo = row * hd + i, hi = lo + half;
        float x1 = load(x, lo), x2 = load(x, hi);
        store(out, lo, x1 * c - x2 * s);
        store(out, hi, x2 * c + x1 * s);
    }
}

}  // namespace

// block 256, grid min(ceil(pairs / 256), 65535)
extern "C" __global__ void __launch_bounds__(256) mode_rope_fwd_f32(const float* x, float* out, const double* invFreq, int b, int t, int h, int hd, int posOffset) { rope(x, out, invFreq, b, t, h, hd, posOffset, 1.0f); }
extern "C" __global__ void __launch_bounds__(256) mode_rope_fwd_bf16(const bf16* x, bf16* out, const double* invFreq, int b, int t, int h, int hd, int posOffset) { rope(x, out, invFreq, b, t, h, hd, posOffset, 1.0f); }
extern "C" __global__ void __launch_bounds__(256) mode_rope_bwd_f32(const float* dOut, float* dx, const double* invFreq, int b, int t, int h, int hd, int posOffset) { rope(dOut, dx, invFreq, b, t, h, hd, posOffset, -1.0f); }
extern "C" __global__ void __launch_bounds__(256) mode_rope_bwd_bf16(const bf16* dOut, bf16* dx, const double* invFreq, int b, int t, int h, int hd, int posOffset) { rope(dOut, dx, invFreq, b, t, h, hd, posOffset, -1.0f); }
