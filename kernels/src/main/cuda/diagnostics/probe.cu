// probe.cu: a diagnostic kernel that echoes its scalar parameters and launch geometry into memory, so
// tests can check the host-side parameter marshalling (KernelArgs) end to end, on the emulator and on GPUs.
#include "mode_common.cuh"

// out[0..5] = i, l, bits of f, bits of d, u, p; out[6..11] = gridDim.xyz, blockDim.xyz;
// counter[0] += 1 per thread that ran (integer atomics: exact).
extern "C" __global__ void __launch_bounds__(1024) mode_probe_params_fwd_f32(int i, long long l, float f, double d, unsigned u, const float* p, long long* out, int* counter) {
    atomicAdd(counter, 1);
    if (threadIdx.x == 0 && threadIdx.y == 0 && threadIdx.z == 0 && blockIdx.x == 0 && blockIdx.y == 0 && blockIdx.z == 0) {
        out[0] = i;
        out[1] = l;
        out[2] = (long long)(unsigned)__float_as_int(f);
        out[3] = __double_as_longlong(d);
        out[4] = (long long)u;
        out[5] = (long long)p;
        out[6] = gridDim.x;
        out[7] = gridDim.y;
        out[8] = gridDim.z;
        out[9] = blockDim.x;
        out[10] = blockDim.y;
        out[11] = blockDim.z;
    }
}
