package ai.mode.tests.cpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.mode.runtime.AdamWStep;
import ai.mode.runtime.Backend;
import ai.mode.runtime.Backends;
import ai.mode.runtime.DType;
import ai.mode.runtime.Tensor;
import ai.mode.runtime.cpu.CpuBackend;
import ai.mode.runtime.cpu.CpuTensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;

/** Bad arguments get an IllegalArgumentException whose message names the op and the problem; service lookup. */
class CpuValidationTest {
    private final CpuBackend be = CpuVariants.VECTOR;

    private static void rejects(String expectedFragment, Executable call) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, call);
        assertTrue(
                e.getMessage().contains(expectedFragment),
                "message '" + e.getMessage() + "' should contain '" + expectedFragment + "'");
    }

    @Test
    void shapeAndDtypeErrorsNameTheProblem() {
        Tensor a = be.zeros(3, 4), b = be.zeros(3, 5), ids = be.allocate(DType.I32, 3);
        rejects("add: shape mismatch", () -> be.add(a, b, a));
        rejects("axpy: shape mismatch", () -> be.axpy(1f, a, b));
        rejects("sumRowsAccumulate: out must have 4 elements", () -> be.sumRowsAccumulate(a, be.zeros(5)));
        rejects("embeddingForward: out must have 12 elements", () -> be.embeddingForward(a, ids, be.zeros(3, 5)));
        rejects("embeddingForward: ids must be I32", () -> be.embeddingForward(a, a, a));
        rejects(
                "token id 7 at position 1 is outside [0, 3)",
                () -> be.embeddingForward(a, be.fromHost(new int[] {0, 7, 1}, 3), be.zeros(3, 4)));
        rejects(
                "embeddingBackward: token id -1",
                () -> be.embeddingBackward(be.zeros(1, 4), be.fromHost(new int[] {-1}, 1), a));
        rejects(
                "rmsNormForward: weight must have 4 elements",
                () -> be.rmsNormForward(a, be.zeros(5), 1e-5f, be.zeros(3, 4), be.zeros(3)));
        rejects(
                "rmsNormBackward: rstd must have 3 elements",
                () -> be.rmsNormBackward(a, a, be.zeros(4), be.zeros(2), be.zeros(3, 4), be.zeros(4)));
        rejects("ropeForward: input must have rank 4", () -> be.ropeForward(a, 1e4f, 0, a));
        rejects("head dimension 3", () -> be.ropeForward(be.zeros(1, 2, 1, 3), 1e4f, 0, be.zeros(1, 2, 1, 3)));
        rejects("swiGluForward: shape mismatch", () -> be.swiGluForward(a, b, a));
        rejects(
                "crossEntropy: target 9 at row 2 is outside [0, 4)",
                () -> be.crossEntropy(a, be.fromHost(new int[] {0, 1, 9}, 3), null, 1f));
        rejects(
                "crossEntropy: targets must have 3 elements",
                () -> be.crossEntropy(a, be.allocate(DType.I32, 2), null, 1f));
        rejects(
                "adamW: shape mismatch",
                () -> be.adamW(a, b, a, a, new AdamWStep(1e-3f, 0.9f, 0.99f, 1e-8f, 0f, 1, 1f)));
        rejects("softmaxForward: shape mismatch", () -> be.softmaxForward(a, b));
        rejects(
                "weightedMergeForward: probs must be [3, 2]",
                () -> be.weightedMergeForward(be.zeros(2, 3, 4), be.zeros(3, 3), be.zeros(3, 4)));
        rejects(
                "weightedMergeBackward: dOut must be [3, 4]",
                () -> be.weightedMergeBackward(
                        be.zeros(3, 5), be.zeros(2, 3, 4), be.zeros(3, 2), null, be.zeros(3, 2)));
        rejects("topK: k must be in [1, 4]", () -> be.topK(a, 5, be.allocate(DType.I32, 3, 5), be.zeros(3, 5)));
        rejects(
                "gatherRows: row index 3 at position 0 is outside [0, 3)",
                () -> be.gatherRows(a, be.fromHost(new int[] {3}, 1), be.zeros(1, 4)));
        rejects(
                "scatterAddRows: src must be [2, 4]",
                () -> be.scatterAddRows(a, be.allocate(DType.I32, 2), be.zeros(5, 4)));
        rejects("view: cannot view f32[3, 4] as [5]", () -> be.view(a, 5));
        rejects("slice: rows [2, 4) are outside dimension 0", () -> be.slice(a, 2, 2));
        rejects("fromHost: 3 floats do not fill shape [2, 2]", () -> be.fromHost(new float[3], 2, 2));
        rejects("copy: element count mismatch", () -> be.copy(a, b));
        rejects("toHost: destination length 2", () -> be.toHost(a, new float[2]));
        rejects("BF16 is a cuda storage type", () -> be.allocate(DType.BF16, 2));
    }

    @Test
    void closedStorageAndClosedBackendAreReported() {
        Tensor x = be.zeros(4);
        Tensor view = be.view(x, 2, 2);
        x.close();
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> be.fill(view, 1f));
        assertTrue(e.getMessage().contains("used after its storage was closed"), e.getMessage());
        CpuBackend closed = new CpuBackend(2, true);
        closed.close();
        e = assertThrows(
                IllegalStateException.class,
                () -> closed.add(closed.zeros(100_000), closed.zeros(100_000), closed.zeros(100_000)));
        assertTrue(e.getMessage().contains("closed"), e.getMessage());
    }

    @Test
    void storageIsSharedAndPublic() {
        CpuTensor x = (CpuTensor) be.fromHost(new float[] {1, 2, 3, 4, 5, 6}, 3, 2);
        CpuTensor s = (CpuTensor) be.slice(x, 1, 2);
        assertSame(x.floats(), s.floats());
        assertEquals(2, s.offset());
        assertEquals(4, s.size());
        assertTrue(s.isView());
    }

    @Test
    void providerIsRegistered() {
        try (Backend b = Backends.create("cpu", 2)) {
            assertEquals("cpu", b.name());
            assertEquals(2, ((CpuBackend) b).threads());
        }
        try (Backend b = Backends.create("cpu", 0)) {
            assertEquals(Runtime.getRuntime().availableProcessors(), ((CpuBackend) b).threads());
        }
    }
}
