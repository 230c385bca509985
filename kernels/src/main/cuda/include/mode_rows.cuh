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

// out[index[r], :] += src[r, :] for r in order 0..m-1: one thread per column walks the rows in order, so
// the sums are the same on every run (no float atomics). src [m, d] of TS, out [nout, d] of TO.
// Block of 128 threads over columns, grid ceil(d / 128). Indices outside [0, nout) raise `errCode`
// and are skipped.
template <class TS, class TO>
__device__ __forceinline__ void scatterAddRows(const TS* src, const int* index, TO* out, int m, int d, int nout,
                                               int* err, int errCode) {
    int j = blockIdx.x * blockDim.x + threadIdx.x;
    for (int row = 0; row < m; row++) {
        int r = index[row];
        if (r < 0 || r >= nout) {
            if (j == 0) raiseError(err, errCode, r, row);
            continue;
        }
        if (j < d) {
            long long o = (long long)r * d + j;
            store(out, o, load(out, o) + load(src, (long long)row * d + j));
        }
    }
}

}  // namespace mode
