// mode_launch.cuh: the launch geometry that the host side must match, one constant per fact, written only here.
// kernels/build-kernels.sh copies every "constexpr int kLaunch<Name> = <value>;" line of this file into the
// generated resource launch.properties (with each entry point's __launch_bounds__ as its block size), and the
// Java DeviceBackend launches from that resource (ai.mode.kernels.KernelLaunch), so the two cannot drift.
// Keep one constant per line in exactly that form.
#pragma once

namespace mode {

// Blocks of an x-dimension grid the host asks for at most (grid-stride and one-block-per-row kernels).
constexpr int kLaunchMaxGridBlocks = 65535;

// columnSumPartial (sumRowsAccumulate, RMSNorm dWeight): block (X, Y), grid (ceil(cols / X), chunks); each x owns
// one column and each y every Y-th row.
constexpr int kLaunchColumnBlockX = 32;
constexpr int kLaunchColumnBlockY = 8;

// GEMM (tiled and WMMA kernels): the output tile of one block, rows x columns; grid (ceil(N / N-tile),
// ceil(M / M-tile), batch).
constexpr int kLaunchGemmTileM = 64;
constexpr int kLaunchGemmTileN = 64;
// GEMMs of at most this many multiply-adds per matrix sum each output in float64 (the op contract's small GEMMs,
// ai.mode.runtime.OpShapes.SMALL_GEMM_WORK on the host, which routes them to the tiled kernel on every device).
constexpr int kLaunchGemmSmallWork = 4096;

// Grouped expert GEMM (grouped.cu): the output tile of one block. Forward and input-gradient grids are (row tiles
// of every group, ceil(N / N-tile)); the weight-gradient grid is (ceil(K / N-tile), ceil(N / M-tile), groups).
constexpr int kLaunchGroupedTileM = 64;
constexpr int kLaunchGroupedTileN = 64;

// Attention: head-dimension tiles compiled (one entry point each), the query rows of a forward block, and the
// tile rows of the backward kernels (fewer for the widest head tile, which shares the shared-memory budget).
constexpr int kLaunchAttentionHeadTileSmall = 32;
constexpr int kLaunchAttentionHeadTileMedium = 64;
constexpr int kLaunchAttentionHeadTileLarge = 128;
constexpr int kLaunchAttentionForwardRows = 32;
constexpr int kLaunchAttentionTileRows = 32;
constexpr int kLaunchAttentionTileRowsLarge = 16;
// Tensor-core attention backward (attention_wmma.cu): warps per 16-row fragment of a block's tile (a pair: one
// computes S, the other dP); the forward has one warp per fragment.
constexpr int kLaunchAttentionWmmaBackwardWarpsPerFragment = 2;

}  // namespace mode
