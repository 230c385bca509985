package ai.mode.tests.device;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.mode.runtime.OpShapes;
import ai.mode.runtime.device.LaunchGeometry;
import ai.mode.runtime.device.LaunchGeometry.Grid;
import org.junit.jupiter.api.Test;

/**
 * The host-side launch geometry at CUDA's grid limits (2^31 - 1 blocks along x, 65535 along y and z), computed
 * without a GPU: the GEMM grid swap above 4,194,240 rows, the one-line errors for shapes that cannot run, and the
 * reductions' block counts (at least as many blocks as an H100's 132 SMs whenever the shape has that much work,
 * each grid inside the limits).
 */
class LaunchGeometryTest {
    private static final int H100_SMS = 132;

    @Test
    void smallGemmsAreTheSameOnHostAndKernel() {
        // DeviceBackend routes what OpShapes calls small to the tiled kernel, which decides by its own constant
        assertEquals(OpShapes.SMALL_GEMM_WORK, LaunchGeometry.GEMM_SMALL_WORK);
        assertTrue(OpShapes.smallGemm(5, 1, 9) && OpShapes.smallGemm(16, 16, 16) && !OpShapes.smallGemm(16, 16, 17));
        assertTrue(!OpShapes.smallGemm(4, 5, 0), "K = 0 is c = beta c, not a sum");
    }

    @Test
    void gemmSwapsTheGridPastTheRowLimit() {
        int lastRows = LaunchGeometry.MAX_GRID_YZ * LaunchGeometry.GEMM_TILE_M; // 4,194,240
        assertEquals(new Grid(64, 65_535, 1), LaunchGeometry.gemm(lastRows, 4096, 1), "the last unswapped shape");
        assertEquals(new Grid(65_536, 64, 1), LaunchGeometry.gemm(lastRows + 1, 4096, 1), "one row more: swapped");
        assertEquals(new Grid(33_554_432, 1, 7), LaunchGeometry.gemm(Integer.MAX_VALUE, 3, 7), "2^31 - 1 rows");
        assertEquals(new Grid(2, 4, 65_535), LaunchGeometry.gemm(200, 70, 65_535));
        for (int m : new int[] {1, 63, 64, 65, lastRows - 1, lastRows, lastRows + 1, 1 << 30}) {
            for (int n : new int[] {1, 64, 65, 32_000, lastRows}) {
                Grid g = LaunchGeometry.gemm(m, n, 1);
                boolean swapped = g.x() != LaunchGeometry.tiles(n, LaunchGeometry.GEMM_TILE_N);
                // what the kernel does with the grid: every tile once
                assertEquals(
                        LaunchGeometry.tiles(m, LaunchGeometry.GEMM_TILE_M),
                        swapped ? g.x() : g.y(),
                        "row tiles m=" + m + " n=" + n);
                assertEquals(
                        LaunchGeometry.tiles(n, LaunchGeometry.GEMM_TILE_N),
                        swapped ? g.y() : g.x(),
                        "column tiles m=" + m + " n=" + n);
                assertTrue(g.y() <= LaunchGeometry.MAX_GRID_YZ && g.z() <= LaunchGeometry.MAX_GRID_YZ, g.toString());
            }
        }
    }

    @Test
    void groupedGridsCoverEveryTileOfEveryGroup() {
        int tm = LaunchGeometry.GROUPED_TILE_M, tn = LaunchGeometry.GROUPED_TILE_N;
        // equal groups: exactly G * ceil(R / G / tile) row tiles
        assertEquals(new Grid(4 * 2, 3, 1), LaunchGeometry.groupedRows(4 * 100, 4, true, 130));
        // ragged groups: any split of R rows into G groups needs at most floor(R / tile) + G row tiles
        int[][] splits = {{0, 7, 1, 70}, {64, 64, 0}, {1, 1, 1, 1, 1}, {65, 63}};
        for (int[] split : splits) {
            int rows = 0, needed = 0;
            for (int c : split) {
                rows += c;
                needed += LaunchGeometry.tiles(c, tm);
            }
            Grid g = LaunchGeometry.groupedRows(rows, split.length, false, 9);
            assertTrue(g.x() >= needed, "row-tile slots " + g.x() + " for " + java.util.Arrays.toString(split));
            assertEquals(LaunchGeometry.tiles(9, tn), g.y());
        }
        assertEquals(new Grid(3, 2, 5), LaunchGeometry.groupedWeights(70, 130, 5));
        IllegalArgumentException wide = assertThrows(
                IllegalArgumentException.class,
                () -> LaunchGeometry.groupedRows(64, 1, true, LaunchGeometry.MAX_GRID_YZ * tn + 1));
        assertTrue(wide.getMessage().startsWith("groupedGemm: 64 rows x "), wide.getMessage());
        IllegalArgumentException groups =
                assertThrows(IllegalArgumentException.class, () -> LaunchGeometry.groupedWeights(8, 8, 65_536));
        assertTrue(
                groups.getMessage().startsWith("groupedGemmBackwardWeight: 65536 weights of [8, 8]"),
                groups.getMessage());
    }

    @Test
    void shapesThatCannotRunGetOneLineNamingTheOpAndShape() {
        int rows = LaunchGeometry.MAX_GRID_YZ * LaunchGeometry.GEMM_TILE_M + 1;
        IllegalArgumentException both =
                assertThrows(IllegalArgumentException.class, () -> LaunchGeometry.gemm(rows, rows, 1));
        assertEquals(
                "gemm: output [4194241, 4194241] needs 65536 x 65536 tiles of 64 x 64; one side must have at most 65535"
                        + " tiles (4194240 rows or 4194240 columns); split the problem",
                both.getMessage());
        IllegalArgumentException batch =
                assertThrows(IllegalArgumentException.class, () -> LaunchGeometry.gemm(8, 8, 65_536));
        assertEquals(
                "gemm: batch 65536 of [8, 8] outputs exceeds the 65535 the launch grid allows; split the batch",
                batch.getMessage());
        IllegalArgumentException heads = assertThrows(
                IllegalArgumentException.class,
                () -> LaunchGeometry.requireAttentionGrid("attentionForward", "F32[1, 4, 70000, 8]", 70_000, 1));
        assertEquals(
                "attentionForward: q F32[1, 4, 70000, 8] has batch 1 and 70000 heads; the launch grid allows at most"
                        + " 65535 of each; split the batch",
                heads.getMessage());
        LaunchGeometry.requireAttentionGrid("attentionForward", "F32[65535, 1, 65535, 1]", 65_535, 65_535);
    }

    @Test
    void scatterAddUsesMoreBlocksThanSmsWithinTheLimits() {
        // the benchmark shape: d = 4096, 64k tokens into a 32k vocabulary
        assertEquals(16, LaunchGeometry.scatterSlices(4096, 32_000));
        for (int d : new int[] {1, 5, 128, 129, 192, 4096, 16_384, 100_000}) {
            for (int nout : new int[] {1, 2, 37, 1000, 32_000, 1 << 20}) {
                int slices = LaunchGeometry.scatterSlices(d, nout);
                long blocks = (long) LaunchGeometry.tiles(d, LaunchGeometry.SCATTER_COLUMNS) * slices;
                assertTrue(slices >= 1 && slices <= Math.min(nout, LaunchGeometry.MAX_GRID_YZ), d + "/" + nout);
                if (nout >= H100_SMS) assertTrue(blocks >= H100_SMS, "d=" + d + " nout=" + nout + ": " + blocks);
            }
        }
    }

    @Test
    void columnSumsUseMoreBlocksThanSmsWithinTheLimits() {
        // the benchmark shape: 64k rows of 4096 columns, 4 chunks of 16k rows x 128 column tiles
        assertEquals(16_384, LaunchGeometry.columnSumChunk(65_536, 4096));
        for (int rows : new int[] {1, 63, 64, 65, 1001, 65_536, 1 << 24, Integer.MAX_VALUE}) {
            for (int cols : new int[] {1, 5, 33, 192, 4096, 100_000}) {
                int chunk = LaunchGeometry.columnSumChunk(rows, cols);
                int chunks = LaunchGeometry.tiles(rows, chunk);
                long blocks = (long) LaunchGeometry.tiles(cols, LaunchGeometry.COLUMN_SUM_COLUMNS) * chunks;
                assertTrue(chunk >= LaunchGeometry.MIN_COLUMN_SUM_CHUNK, rows + "x" + cols);
                assertTrue(chunks <= LaunchGeometry.TARGET_BLOCKS, rows + "x" + cols + ": " + chunks + " chunks");
                if ((long) rows * cols >= (long) H100_SMS * 32 * LaunchGeometry.MIN_COLUMN_SUM_CHUNK) {
                    assertTrue(blocks >= H100_SMS, rows + "x" + cols + ": " + blocks + " blocks");
                }
            }
        }
    }
}
