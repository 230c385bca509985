// embedding.cu: token embedding lookup (a row gather) and its backward (a deterministic scatter-add of
// the output gradient into the float32 table gradient).
#include "mode_rows.cuh"

using namespace mode;

// table [v, d], ids [n], out [n, d]; block 128, grid min(n, 65535).
extern "C" __global__ void __launch_bounds__(128) mode_embedding_fwd_f32(const float* table, const int* ids, float* out, int n, int d, int v, int* err) {
    gatherRows(table, ids, out, n, d, v, err, kErrEmbeddingId);
}
extern "C" __global__ void __launch_bounds__(128) mode_embedding_fwd_bf16(const bf16* table, const int* ids, bf16* out, int n, int d, int v, int* err) {
    gatherRows(table, ids, out, n, d, v, err, kErrEmbeddingId);
}

// dTable [v, d] float32 += rows of dOut [n, d]; block 128, grid (ceil(d / 128), slices) (see scatterAddRows).
extern "C" __global__ void __launch_bounds__(128) mode_embedding_bwd_f32(const float* dOut, const int* ids, float* dTable, int n, int d, int v, int* err) {
    scatterAddRows(dOut, ids, dTable, n, d, v, err, kErrEmbeddingId);
}
extern "C" __global__ void __launch_bounds__(128) mode_embedding_bwd_bf16(const bf16* dOut, const int* ids, float* dTable, int n, int d, int v, int* err) {
    scatterAddRows(dOut, ids, dTable, n, d, v, err, kErrEmbeddingId);
}
