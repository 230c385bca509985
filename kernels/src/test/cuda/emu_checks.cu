// emu_checks.cu: test-only kernels (not shipped) that exercise the CPU emulator itself: thread and block
// indices, warp shuffles and votes, early-exiting threads at barriers, a divergent barrier (deadlock),
// the shared-memory poison between blocks, atomics, and two deliberate bugs: a missing __syncthreads
// (emu_test_rotate with withSync = 0) and an off-by-one global write (emu_test_write).
#include "mode_common.cuh"

// out[linear thread id over the grid * 6 ..] = threadIdx.xyz, blockIdx.xyz.
extern "C" __global__ void emu_test_indices(int* out) {
    long long block = ((long long)blockIdx.z * gridDim.y + blockIdx.y) * gridDim.x + blockIdx.x;
    long long thread = ((long long)threadIdx.z * blockDim.y + threadIdx.y) * blockDim.x + threadIdx.x;
    int* o = out + (block * blockDim.x * blockDim.y * blockDim.z + thread) * 6;
    o[0] = threadIdx.x;
    o[1] = threadIdx.y;
    o[2] = threadIdx.z;
    o[3] = blockIdx.x;
    o[4] = blockIdx.y;
    o[5] = blockIdx.z;
}

// out[tid * 8 ..]: shuffles of v = 10 * tid with several lane offsets and segment widths.
extern "C" __global__ void emu_test_shuffles(int* out) {
    int v = threadIdx.x * 10;
    int* o = out + threadIdx.x * 8;
    o[0] = __shfl_xor_sync(0xffffffffu, v, 5);
    o[1] = __shfl_down_sync(0xffffffffu, v, 3);
    o[2] = __shfl_up_sync(0xffffffffu, v, 2);
    o[3] = __shfl_sync(0xffffffffu, v, 7);
    o[4] = __shfl_xor_sync(0xffffffffu, v, 4, 8);
    o[5] = __shfl_down_sync(0xffffffffu, v, 3, 16);
    o[6] = __shfl_sync(0xffffffffu, v, 3, 16);
    o[7] = __float_as_int(__shfl_xor_sync(0xffffffffu, (float)v + 0.5f, 1));
}

// Threads >= live exit at once; the others vote (ballot, any, all) and count at a barrier.
extern "C" __global__ void emu_test_votes(int* out, int live) {
    if ((int)threadIdx.x >= live) return;
    int pred = threadIdx.x % 3 == 0;
    unsigned ballot = __ballot_sync(0xffffffffu, pred);
    int any = __any_sync(0xffffffffu, threadIdx.x == 40);
    int all = __all_sync(0xffffffffu, threadIdx.x < 1000);
    int count = __syncthreads_count(pred);
    __syncthreads();
    int* o = out + threadIdx.x * 4;
    o[0] = (int)ballot;
    o[1] = any;
    o[2] = all;
    o[3] = count;
}

// Lanes 0..15 wait at the block barrier, lanes 16..31 at a warp shuffle: neither can complete.
extern "C" __global__ void emu_test_divergent_barrier(int* out) {
    int v = threadIdx.x;
    if (threadIdx.x < 16) __syncthreads();
    else v = __shfl_xor_sync(0xffffffffu, v, 1);
    out[threadIdx.x] = v;
}

// Reads shared memory before writing it: every block must see the poison, not the previous block's data.
extern "C" __global__ void emu_test_shared_poison(unsigned* out) {
    __shared__ unsigned s[64];
    out[blockIdx.x * blockDim.x + threadIdx.x] = s[threadIdx.x];
    __syncthreads();
    s[threadIdx.x] = 7u;
}

// out[i] = in[(i + 1) % n] within each block, through shared memory. withSync = 0 leaves out the barrier
// between the write and the read: a data race (the bug the emulator must expose).
extern "C" __global__ void emu_test_rotate(const float* in, float* out, int withSync) {
    __shared__ float s[256];
    int t = threadIdx.x, n = blockDim.x;
    s[t] = in[blockIdx.x * n + t];
    if (withSync) __syncthreads();
    out[blockIdx.x * n + t] = s[(t + 1) % n];
}

// counter[0] += 1 and counter[1] = max(threadIdx.x) over the grid; sum += global thread id.
extern "C" __global__ void emu_test_atomics(int* counter, unsigned long long* sum) {
    atomicAdd(counter, 1);
    atomicMax(counter + 1, (int)threadIdx.x);
    atomicAdd(sum, (unsigned long long)(blockIdx.x * blockDim.x + threadIdx.x));
}

// Writes out[i] = 1 for i <= n: one element past an n-element buffer (an off-by-one bug).
extern "C" __global__ void emu_test_write(float* out, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i <= n) out[i] = 1.0f;
}

#ifdef MODE_EMU
MODE_EMU_REGISTER(emu_test_indices)
MODE_EMU_REGISTER(emu_test_shuffles)
MODE_EMU_REGISTER(emu_test_votes)
MODE_EMU_REGISTER(emu_test_divergent_barrier)
MODE_EMU_REGISTER(emu_test_shared_poison)
MODE_EMU_REGISTER(emu_test_rotate)
MODE_EMU_REGISTER(emu_test_atomics)
MODE_EMU_REGISTER(emu_test_write)
#endif
