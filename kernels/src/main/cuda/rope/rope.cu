// rope.cu: rotary position embedding, Hugging Face Llama convention (rotate_half: element i pairs with
// i + hd/2), forward and backward (the inverse rotation). Angles in float64 so long positions keep their
// precision. In place is allowed: each thread reads its pair before writing it.
#include "mode_common.cuh"

namespace {

using namespace mode;

// x, out [b, t, h, hd]; position of token ti is posOffset + ti; sign +1 rotates, -1 rotates back.
template <class T>
__device__ void rope(const T* x, T* out, int b, int t, int h, int hd, float theta, int posOffset, float sign) {
    const int half = hd / 2;
    const long long pairs = (long long)b * t * h * half;
    for (long long p = globalThread(); p < pairs; p += globalStride()) {
        int i = (int)(p % half);
        long long row = p / half;  // (bi * t + ti) * h + hi
        int ti = (int)((row / h) % t);
        // angle / pi in float64; sincospi needs no slow argument reduction (no local memory).
        double turns = (double)(posOffset + ti) * pow((double)theta, -2.0 * i / hd) * 0.31830988618379067154;
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
extern "C" __global__ void __launch_bounds__(256) mode_rope_fwd_f32(const float* x, float* out, int b, int t, int h, int hd, float theta, int posOffset) { rope(x, out, b, t, h, hd, theta, posOffset, 1.0f); }
extern "C" __global__ void __launch_bounds__(256) mode_rope_fwd_bf16(const bf16* x, bf16* out, int b, int t, int h, int hd, float theta, int posOffset) { rope(x, out, b, t, h, hd, theta, posOffset, 1.0f); }
extern "C" __global__ void __launch_bounds__(256) mode_rope_bwd_f32(const float* dOut, float* dx, int b, int t, int h, int hd, float theta, int posOffset) { rope(dOut, dx, b, t, h, hd, theta, posOffset, -1.0f); }
extern "C" __global__ void __launch_bounds__(256) mode_rope_bwd_bf16(const bf16* dOut, bf16* dx, int b, int t, int h, int hd, float theta, int posOffset) { rope(dOut, dx, b, t, h, hd, theta, posOffset, -1.0f); }
