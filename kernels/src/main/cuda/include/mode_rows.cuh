// mode_rows.cuh: row gather and deterministic row scatter-add, shared by the embedding and routing
// families (an embedding lookup is a gather of table rows; its backward is a scatter-add into the table).
#pragma once
#include "mode_common.cuh"

namespace mode {

// out[m, :] = src[index[m], :], src [nsrc, d], index [m], out [m, d]. Block of 128 threads per output row
// (grid-stride over rows). An index outside [0, nsrc) raises `errCode` and fills the row with NaN.
template <class T>
__device__ __forceinline__ void gatherRows(const T* src, const int* index, T* out, int m, int d, int nsrc, int* err,
                                           int errCode) {
    for (int row = blockIdx.x; row < m; row += gridDim.x) {
        int r = index[row];
        bool ok = r >= 0 && r < nsrc;
        if (!ok && threadIdx.x == 0) raiseError(err, errCode, r, row);
        for (int j = threadIdx.x; j < d; j += blockDim.x) {
            store(out, (long long)row * d + j, ok ? load(src, (long long)r * d + j) : quietNaN());
        }
    }
}

// out[index[r], :] += src[r, :], each output element summing its source rows in ascending r: the same bits on
// every run and as one serial pass (no float atomics). src [m, d] of TS, out [nout, d] of TO.
// Grid (ceil(d / 128), slices), block 128: block (x, y) owns columns [128x, 128x + 128) of the output rows r
// with r % slices == y, so there are many blocks even when d is small. It walks the source rows in chunks of
// 128: each thread reads one index, the block lists the rows it owns in ascending order (warp ballots, then
// warp offsets), and each thread adds the listed rows to its column. Indices outside [0, nout) raise `errCode`
// (block (0, 0) reports; the lowest position wins) and are skipped.
template <class TS, class TO>
__device__ __forceinline__ void scatterAddRows(const TS* src, const int* index, TO* out, int m, int d, int nout,
                                               int* err, int errCode) {
    constexpr int NT = 128;
    __shared__ int listedRow[NT];
    __shared__ int listedTarget[NT];
    __shared__ int warpCount[NT / 32];
    const int slices = gridDim.y, slice = blockIdx.y;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int j = blockIdx.x * NT + threadIdx.x;
    for (int base = 0; base < m; base += NT) {
        const int row = base + threadIdx.x;
        const int r = row < m ? index[row] : 0;
        const bool valid = row < m && r >= 0 && r < nout;
        if (row < m && !valid && blockIdx.x == 0 && slice == 0) raiseError(err, errCode, r, row);
        const bool mine = valid && r % slices == slice;
        const unsigned votes = __ballot_sync(0xffffffffu, mine);
        if (lane == 0) warpCount[warp] = __popc(votes);
        __syncthreads();
        int before = 0, listed = 0;
        for (int w = 0; w < NT / 32; w++) {
            if (w < warp) before += warpCount[w];
            listed += warpCount[w];
        }
        if (mine) {
            const int at = before + __popc(votes & ((1u << lane) - 1u));
            listedRow[at] = row;
            listedTarget[at] = r;
        }
        __syncthreads();
        if (j < d) {
            for (int q = 0; q < listed; q++) {
                const long long o = (long long)listedTarget[q] * d + j;
                store(out, o, load(out, o) + load(src, (long long)listedRow[q] * d + j));
            }
        }
        __syncthreads();  // the lists are rewritten by the next chunk
    }
}

}  // namespace mode
