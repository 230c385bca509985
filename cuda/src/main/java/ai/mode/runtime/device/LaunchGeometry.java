package ai.mode.runtime.device;

import ai.mode.kernels.KernelLaunch;

/**
 * The launch grids of the kernels whose grid depends on a shape in more than one dimension, computed on the host
 * so that the limits are tested without a GPU. CUDA allows {@value #MAX_GRID_X} blocks along x but only
 * {@value #MAX_GRID_YZ} along y and z: a grid is arranged to stay inside them, and a shape that truly cannot
 * run gets a one-line {@link IllegalArgumentException} naming the op and the shape instead of the driver's
 * {@code CUDA_ERROR_INVALID_VALUE}.
 *
 * <p>The reductions ({@link #scatterSlices}, {@link #columnSumChunk}) aim for {@value #TARGET_BLOCKS} blocks, more
 * than twice the SMs of current GPUs (132 on an H100 SXM), from the shape alone: their summation order, and so
 * their bits, never depend on the device.
 *
 * <p>The kernels' own tile and block sizes come from their generated launch table ({@link KernelLaunch}, written
 * from {@code kernels/src/main/cuda/include/mode_launch.cuh} and the entry points' {@code __launch_bounds__}); the
 * grid limits here are CUDA's.
 */
public final class LaunchGeometry {
    /** Largest {@code gridDim.x}. */
    public static final int MAX_GRID_X = Integer.MAX_VALUE;

    /** Largest {@code gridDim.y} and {@code gridDim.z}. */
    public static final int MAX_GRID_YZ = 65_535;

    /** Blocks a reduction is spread over when its shape allows. */
    public static final int TARGET_BLOCKS = 512;

    /** Output tile rows of the GEMM kernels ({@code kLaunchGemmTileM}). */
    public static final int GEMM_TILE_M = KernelLaunch.constant("kLaunchGemmTileM");

    /** Output tile columns of the GEMM kernels ({@code kLaunchGemmTileN}). */
    public static final int GEMM_TILE_N = KernelLaunch.constant("kLaunchGemmTileN");

    /**
     * Most multiply-adds of a GEMM the tiled kernel sums in float64 ({@code kLaunchGemmSmallWork}); the host's
     * {@link ai.mode.runtime.OpShapes#SMALL_GEMM_WORK} must be the same number.
     */
    public static final int GEMM_SMALL_WORK = KernelLaunch.constant("kLaunchGemmSmallWork");

    /**
     * Columns per block of the row scatter-add ({@code NT} in mode_rows.cuh): the block size of its entry points.
     */
    public static final int SCATTER_COLUMNS = KernelLaunch.threads("mode_scatter_add_fwd_f32");

    /** Columns per block of the column sums ({@code kLaunchColumnBlockX}, used by {@code columnSumPartial}). */
    public static final int COLUMN_SUM_COLUMNS = KernelLaunch.constant("kLaunchColumnBlockX");

    /** Smallest row chunk of a column sum: below it a chunk's blocks would do too little work. */
    public static final int MIN_COLUMN_SUM_CHUNK = 64;

    private LaunchGeometry() {}

    /** A grid of {@code x * y * z} blocks. */
    public record Grid(int x, int y, int z) {}

    /**
     * The GEMM grid for {@code C [batch, m, n]}: (column tiles, row tiles, batch), or (row tiles, column tiles,
     * batch) when there are more than {@value #MAX_GRID_YZ} row tiles (above 4,194,240 rows with 64-row tiles); the kernel tells the
     * two apart by {@code gridDim.x}, which equals the column-tile count only in the first.
     */
    public static Grid gemm(int m, int n, int batch) {
        int rowTiles = tiles(m, GEMM_TILE_M), colTiles = tiles(n, GEMM_TILE_N);
        if (batch > MAX_GRID_YZ) {
            throw new IllegalArgumentException("gemm: batch " + batch + " of [" + m + ", " + n
                    + "] outputs exceeds the " + MAX_GRID_YZ + " the launch grid allows; split the batch");
        }
        if (rowTiles <= MAX_GRID_YZ) return new Grid(colTiles, rowTiles, batch);
        if (colTiles <= MAX_GRID_YZ) return new Grid(rowTiles, colTiles, batch);
        throw new IllegalArgumentException("gemm: output [" + m + ", " + n + "] needs " + rowTiles + " x " + colTiles
                + " tiles of " + GEMM_TILE_M + " x " + GEMM_TILE_N + "; one side must have at most " + MAX_GRID_YZ
                + " tiles (" + (long) MAX_GRID_YZ * GEMM_TILE_M + " rows or " + (long) MAX_GRID_YZ * GEMM_TILE_N
                + " columns); split the problem");
    }

    /** Output tile rows of the grouped expert GEMM ({@code kLaunchGroupedTileM}). */
    public static final int GROUPED_TILE_M = KernelLaunch.constant("kLaunchGroupedTileM");

    /** Output tile columns of the grouped expert GEMM ({@code kLaunchGroupedTileN}). */
    public static final int GROUPED_TILE_N = KernelLaunch.constant("kLaunchGroupedTileN");

    /**
     * The grid of a grouped GEMM's forward or input-gradient product over {@code rows} operand rows in {@code groups}
     * groups and {@code cols} output columns: (row-tile slots, column tiles). Equal groups need exactly {@code groups
     * * ceil(rows / groups / tile)} row tiles; ragged ones at most {@code ceil(rows / tile) + groups} (the kernel's
     * spare blocks exit).
     */
    public static Grid groupedRows(int rows, int groups, boolean uniform, int cols) {
        long slots = uniform
                ? (long) groups * tiles(rows / groups, GROUPED_TILE_M)
                : (long) tiles(rows, GROUPED_TILE_M) + groups;
        int colTiles = tiles(cols, GROUPED_TILE_N);
        if (colTiles > MAX_GRID_YZ || slots > MAX_GRID_X) {
            throw new IllegalArgumentException("groupedGemm: " + rows + " rows x " + cols + " columns in " + groups
                    + " groups need " + slots + " x " + colTiles + " tiles; at most " + MAX_GRID_YZ + " column tiles ("
                    + (long) MAX_GRID_YZ * GROUPED_TILE_N + " columns); split the projection");
        }
        return new Grid((int) slots, colTiles, 1);
    }

    /** The grid of a grouped weight gradient {@code [groups, n, k]}: (column tiles of k, row tiles of n, groups). */
    public static Grid groupedWeights(int n, int k, int groups) {
        int rowTiles = tiles(n, GROUPED_TILE_M), colTiles = tiles(k, GROUPED_TILE_N);
        if (rowTiles > MAX_GRID_YZ || groups > MAX_GRID_YZ) {
            throw new IllegalArgumentException("groupedGemmBackwardWeight: " + groups + " weights of [" + n + ", " + k
                    + "] need " + rowTiles + " row tiles and " + groups + " groups; at most " + MAX_GRID_YZ
                    + " of each; split the groups");
        }
        return new Grid(colTiles, rowTiles, groups);
    }

    /**
     * Checks that an attention launch of grid (query tiles, {@code heads}, {@code batch}) fits; {@code shape}
     * describes the query tensor for the message.
     */
    public static void requireAttentionGrid(String op, String shape, int heads, int batch) {
        if (heads > MAX_GRID_YZ || batch > MAX_GRID_YZ) {
            throw new IllegalArgumentException(op + ": q " + shape + " has batch " + batch + " and " + heads
                    + " heads; the launch grid allows at most " + MAX_GRID_YZ + " of each; split the batch");
        }
    }

    /**
     * Slices of the output rows for the scatter-add of {@code d} columns into {@code nout} rows: block (x, y) adds
     * the rows {@code r % slices == y} of column tile x. Enough slices for {@value #TARGET_BLOCKS} blocks, at most
     * one per output row and at most {@value #MAX_GRID_YZ}.
     */
    public static int scatterSlices(int d, int nout) {
        int colTiles = tiles(d, SCATTER_COLUMNS);
        int want = Math.max(1, tiles(TARGET_BLOCKS, colTiles));
        return Math.max(1, Math.min(want, Math.min(nout, MAX_GRID_YZ)));
    }

    /**
     * Rows per block of a column sum over {@code rows x cols}: chunks enough for {@value #TARGET_BLOCKS} blocks,
     * each at least {@value #MIN_COLUMN_SUM_CHUNK} rows. The chunk count, {@code ceil(rows / chunk)}, is then at
     * most {@value #TARGET_BLOCKS}.
     */
    public static int columnSumChunk(int rows, int cols) {
        int colTiles = tiles(cols, COLUMN_SUM_COLUMNS);
        int wantChunks = Math.max(1, tiles(TARGET_BLOCKS, colTiles));
        return Math.max(MIN_COLUMN_SUM_CHUNK, tiles(rows, wantChunks));
    }

    /** {@code ceil(n / per)} for {@code n >= 0}. */
    public static int tiles(long n, int per) {
        return Math.toIntExact((n + per - 1) / per);
    }
}
