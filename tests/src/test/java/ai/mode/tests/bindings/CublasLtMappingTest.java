package ai.mode.tests.bindings;

import static org.junit.jupiter.api.Assertions.assertEquals;

import ai.mode.bindings.CublasLt;
import ai.mode.runtime.DType;
import ai.mode.runtime.cuda.CublasLtGemm;
import ai.mode.runtime.device.Gemm;
import ai.mode.tests.reference.TestData;
import org.junit.jupiter.api.Test;

/**
 * The row-major to column-major mapping of the cuBLASLt GEMM hook, checked without a GPU: the mapped call is
 * executed by a naive model of cuBLASLt's column-major semantics (op, rows, cols, leading dimension, batch
 * stride) and compared with a float64 row-major GEMM, for every transpose combination, batches and broadcasts.
 */
class CublasLtMappingTest {

    /** cuBLASLt's D = opA(A) opB(B) on one flat memory, with "pointers" as element offsets. */
    private static void columnMajorGemm(CublasLtGemm.ColumnMajor cm, float alpha, float beta, double[] mem, int batch) {
        for (int bi = 0; bi < batch; bi++) {
            long aBase = cm.a().ptr() + bi * cm.a().stride();
            long bBase = cm.b().ptr() + bi * cm.b().stride();
            long cBase = cm.c().ptr() + bi * cm.c().stride();
            double[] out = new double[(int) (cm.m() * cm.n())];
            for (long i = 0; i < cm.m(); i++) {
                for (long j = 0; j < cm.n(); j++) {
                    double s = 0;
                    for (long l = 0; l < cm.k(); l++) {
                        // element (r, c) of a column-major operand is at base + r + c * ld
                        double av = cm.opA() == CublasLt.OP_N
                                ? mem[(int) (aBase + i + l * cm.a().ld())]
                                : mem[(int) (aBase + l + i * cm.a().ld())];
                        double bv = cm.opB() == CublasLt.OP_N
                                ? mem[(int) (bBase + l + j * cm.b().ld())]
                                : mem[(int) (bBase + j + l * cm.b().ld())];
                        s += av * bv;
                    }
                    out[(int) (i + j * cm.m())] = s;
                }
            }
            for (long i = 0; i < cm.m(); i++) {
                for (long j = 0; j < cm.n(); j++) {
                    int at = (int) (cBase + i + j * cm.c().ld());
                    mem[at] = alpha * out[(int) (i + j * cm.m())] + beta * mem[at];
                }
            }
        }
    }

    private static void check(boolean transA, boolean transB, int m, int n, int k, int batch, boolean broadcastB) {
        int aSize = m * k, bSize = k * n, cSize = m * n;
        int aOff = 3, bOff = aOff + aSize * batch + 5, cOff = bOff + bSize * batch + 7;
        double[] mem = TestData.toDouble(TestData.normal(42 + m + n * 7 + k * 13, cOff + cSize * batch));
        double[] orig = mem.clone();
        float alpha = 0.75f, beta = 0.5f;
        long strideB = broadcastB ? 0 : bSize;
        Gemm.Problem p = new Gemm.Problem(
                transA, transB, m, n, k, alpha, aOff, aSize, bOff, strideB, DType.F32, beta, cOff, cSize, DType.F32,
                batch);
        CublasLtGemm.ColumnMajor cm = CublasLtGemm.columnMajor(p);
        columnMajorGemm(cm, alpha, beta, mem, batch);
        for (int bi = 0; bi < batch; bi++) {
            for (int i = 0; i < m; i++) {
                for (int j = 0; j < n; j++) {
                    double s = 0;
                    for (int l = 0; l < k; l++) {
                        double a = transA ? orig[aOff + bi * aSize + l * m + i] : orig[aOff + bi * aSize + i * k + l];
                        int bb = bOff + (int) (bi * strideB);
                        double b = transB ? orig[bb + j * k + l] : orig[bb + l * n + j];
                        s += a * b;
                    }
                    int at = cOff + bi * cSize + i * n + j;
                    double want = alpha * s + beta * orig[at];
                    assertEquals(
                            want,
                            mem[at],
                            1e-9,
                            "transA=" + transA + " transB=" + transB + " batch " + bi + " C[" + i + "," + j + "]");
                }
            }
        }
        for (int i = 0; i < cOff; i++) assertEquals(orig[i], mem[i], "A and B are not written");
    }

    @Test
    void everyTransposeCombination() {
        for (boolean ta : new boolean[] {false, true}) {
            for (boolean tb : new boolean[] {false, true}) {
                check(ta, tb, 5, 3, 4, 1, false);
                check(ta, tb, 1, 7, 2, 1, false);
            }
        }
    }

    @Test
    void stridedBatchesAndBroadcast() {
        for (boolean ta : new boolean[] {false, true}) {
            for (boolean tb : new boolean[] {false, true}) {
                check(ta, tb, 4, 6, 3, 3, false);
                check(ta, tb, 4, 6, 3, 3, true);
            }
        }
    }

    @Test
    void mappedShapes() {
        Gemm.Problem p = new Gemm.Problem(
                false, true, 8, 16, 32, 1f, 0x1000, 0, 0x2000, 0, DType.BF16, 0f, 0x3000, 0, DType.F32, 1);
        CublasLtGemm.ColumnMajor cm = CublasLtGemm.columnMajor(p);
        assertEquals(16, cm.m(), "D is C^T: n x m");
        assertEquals(8, cm.n());
        assertEquals(32, cm.k());
        assertEquals(CublasLt.OP_T, cm.opA(), "the B buffer (stored [n,k]) comes first, transposed");
        assertEquals(CublasLt.OP_N, cm.opB());
        assertEquals(0x2000, cm.a().ptr());
        assertEquals(0x1000, cm.b().ptr());
        assertEquals(new CublasLtGemm.Operand(0x3000, 16, 8, 16, 0), cm.c());
    }
}
