package ai.mode.runtime;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;

/**
 * The op contract on its own, without a backend: the dimensions each op resolves (batched and broadcast GEMMs,
 * tensors read by rows, grouped-query attention) and the dtype rules (shared activation dtype, F32 parameters and
 * statistics, I32 indices, the GEMM combinations). The backends' agreement with it is the conformance suite's.
 */
class OpShapesTest {
    /** A tensor that is only a shape and a dtype. */
    private record Shaped(DType dtype, int... shape) implements Tensor {
        @Override
        public Backend backend() {
            throw new UnsupportedOperationException("a shape has no backend");
        }

        @Override
        public void close() {}
    }

    private static Tensor f32(int... shape) {
        return new Shaped(DType.F32, shape);
    }

    private static Tensor bf16(int... shape) {
        return new Shaped(DType.BF16, shape);
    }

    private static Tensor i32(int... shape) {
        return new Shaped(DType.I32, shape);
    }

    private static void rejects(String fragment, Executable call) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, call);
        assertTrue(e.getMessage().contains(fragment), "'" + e.getMessage() + "' should contain '" + fragment + "'");
    }

    @Test
    void gemmResolvesTransposesBatchesAndBroadcast() {
        assertEquals(
                new OpShapes.MatmulDims(4, 7, 5, 1, false, DType.F32, DType.F32),
                OpShapes.gemm(false, false, f32(4, 5), f32(5, 7), f32(4, 7)));
        assertEquals(
                new OpShapes.MatmulDims(4, 7, 5, 1, false, DType.F32, DType.F32),
                OpShapes.gemm(true, true, f32(5, 4), f32(7, 5), f32(4, 7)));
        assertEquals(
                new OpShapes.MatmulDims(4, 7, 5, 3, true, DType.BF16, DType.F32),
                OpShapes.gemm(false, true, bf16(3, 4, 5), bf16(7, 5), f32(3, 4, 7)));
        assertEquals(
                new OpShapes.MatmulDims(4, 7, 5, 3, false, DType.BF16, DType.BF16),
                OpShapes.gemm(false, false, bf16(3, 4, 5), bf16(3, 5, 7), bf16(3, 4, 7)));
        rejects("gemm: supported dtypes", () -> OpShapes.gemm(false, false, f32(4, 5), f32(5, 7), bf16(4, 7)));
        rejects("gemm: supported dtypes", () -> OpShapes.gemm(false, false, f32(4, 5), bf16(5, 7), f32(4, 7)));
        rejects("gemm: supported dtypes", () -> OpShapes.gemm(false, false, i32(4, 5), i32(5, 7), i32(4, 7)));
        rejects("gemm: batch of b", () -> OpShapes.gemm(false, false, f32(3, 4, 5), f32(2, 5, 7), f32(3, 4, 7)));
        rejects(
                "gemm: b must be 2-D or have the rank of a",
                () -> OpShapes.gemm(false, false, f32(4, 5), f32(1, 5, 7), f32(4, 7)));
    }

    @Test
    void tensorsAreReadByRowsOfTheirLastDimension() {
        assertEquals(
                new OpShapes.TopKDims(6, 8, 2, DType.F32), OpShapes.topK(f32(2, 3, 8), 2, i32(6, 2), f32(2, 3, 2)));
        assertEquals(
                new OpShapes.RowMoveDims(5, 4, 9, DType.BF16), OpShapes.gatherRows(bf16(3, 3, 4), i32(5), bf16(5, 4)));
        assertEquals(
                new OpShapes.RowMoveDims(5, 4, 9, DType.F32), OpShapes.scatterAddRows(f32(1, 5, 4), i32(5), f32(9, 4)));
        assertEquals(new OpShapes.RowDims(6, 4, DType.F32), OpShapes.sumRowsAccumulate(f32(2, 3, 4), f32(4)));
        assertEquals(
                new OpShapes.MergeDims(3, 6, 4, DType.F32),
                OpShapes.weightedMergeForward(f32(3, 6, 4), f32(2, 3, 3), f32(2, 3, 4)));
        rejects("gatherRows: out must be [5, 4]", () -> OpShapes.gatherRows(f32(9, 4), i32(5), f32(4, 5)));
    }

    @Test
    void parametersAndStatisticsStayFloat32UnderBf16Activations() {
        assertEquals(
                new OpShapes.RowDims(6, 8, DType.BF16),
                OpShapes.rmsNormForward(bf16(2, 3, 8), f32(8), 1e-5f, bf16(2, 3, 8), f32(6)));
        rejects(
                "rmsNormForward: rstd must be F32",
                () -> OpShapes.rmsNormForward(bf16(2, 8), f32(8), 1e-5f, bf16(2, 8), bf16(2)));
        rejects(
                "embeddingBackward: dTable must be F32",
                () -> OpShapes.embeddingBackward(bf16(3, 4), i32(3), bf16(9, 4)));
        rejects("adamW: m must be F32", () -> OpShapes.adamW(f32(5), f32(5), bf16(5), f32(5), step()));
        rejects(
                "swiGluForward: out bf16[4] must have the dtype of gate f32[4]",
                () -> OpShapes.swiGluForward(f32(4), f32(4), bf16(4)));
        rejects("embeddingForward: ids must be I32", () -> OpShapes.embeddingForward(f32(9, 4), f32(3), f32(3, 4)));
    }

    @Test
    void attentionResolvesGroupedQueryHeads() {
        assertEquals(
                new OpShapes.AttentionDims(2, 5, 6, 2, 8, DType.BF16),
                OpShapes.attentionForward(
                        bf16(2, 5, 6, 8), bf16(2, 5, 2, 8), bf16(2, 5, 2, 8), bf16(2, 5, 6, 8), f32(2, 6, 5)));
        rejects(
                "attentionForward: lse must be F32",
                () -> OpShapes.attentionForward(
                        bf16(2, 5, 6, 8), bf16(2, 5, 2, 8), bf16(2, 5, 2, 8), bf16(2, 5, 6, 8), bf16(2, 6, 5)));
        rejects(
                "attentionBackward: shape mismatch",
                () -> OpShapes.attentionBackward(
                        f32(1, 2, 2, 4),
                        f32(1, 2, 2, 4),
                        f32(1, 2, 1, 4),
                        f32(1, 2, 1, 4),
                        f32(1, 2, 2, 4),
                        f32(1, 2, 2),
                        f32(1, 2, 2, 4),
                        f32(1, 2, 2, 4),
                        f32(1, 2, 1, 4)));
    }

    @Test
    void memoryOpsAndRopeLimits() {
        assertEquals(6, OpShapes.slice(f32(4, 2, 3), 1, 3));
        assertEquals(0, OpShapes.slice(f32(0, 5), 0, 0));
        rejects("slice: cannot slice a rank-0 tensor", () -> OpShapes.slice(f32(), 0, 0));
        rejects("fromHost: 5 ints do not fill shape [2, 3]", () -> OpShapes.fromHost(new int[] {2, 3}, 5, "ints"));
        rejects(
                "ropeForward: the RoPE frequency table has 2 pairs but head dimension 2 of",
                () -> OpShapes.rope(
                        "ropeForward", f32(1, 1, 1, 2), RopeFrequencies.plain(1e4f, 4), 0, f32(1, 1, 1, 2)));
        rejects(
                "ropeForward: the RoPE frequency table must be non-null",
                () -> OpShapes.rope("ropeForward", f32(1, 1, 1, 2), null, 0, f32(1, 1, 1, 2)));
        assertEquals(
                new OpShapes.RopeDims(1, 3, 2, 4, DType.BF16),
                OpShapes.rope("ropeBackward", bf16(1, 3, 2, 4), RopeFrequencies.of(0.5, 1e-3), 7, bf16(1, 3, 2, 4)));
        assertEquals(
                "gatherRows: row index 9 at position 2 is outside [0, 4)",
                OpShapes.indexOutOfRange("gatherRows", "row index", 9, 2, "[0, 4)"));
    }

    private static AdamWStep step() {
        return new AdamWStep(1e-3f, 0.9f, 0.99f, 1e-8f, 0f, 1, 1f);
    }
}
