package ai.mode.runtime.cuda;

import ai.mode.bindings.CublasLt;
import ai.mode.bindings.CudaStream;
import ai.mode.runtime.DType;
import ai.mode.runtime.device.Gemm;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.HashMap;
import java.util.Map;
import java.util.Optional;

/**
 * The cuBLASLt GEMM hook of the cuda backend ({@link Gemm}): float32 or bf16 inputs, float32 or bf16 output,
 * float32 accumulation ({@code CUBLAS_COMPUTE_32F}; the cuda option {@code tf32=true} allows TF32 for float32
 * inputs), transposes and strided batches (stride 0 broadcasts).
 *
 * <p>Our tensors are row-major and cuBLASLt's default is column-major. A row-major {@code [r, c]} matrix is
 * the column-major {@code [c, r]} matrix with the same bytes, so {@code C = op(A) op(B)} (row-major) is
 * computed as {@code C^T = op(B)^T op(A)^T} (column-major): the operands swap, and each keeps its own
 * transpose flag ({@link #columnMajor}). Plans (descriptors, layouts and the heuristic's algorithm) are cached
 * per shape, types, strides and pointer alignment; problems cuBLASLt has no algorithm for are declined
 * (the caller's kernel runs).
 */
public final class CublasLtGemm implements Gemm, AutoCloseable {
    /** Workspace offered to cuBLASLt (its recommendation for Hopper is 32 MiB). */
    public static final long WORKSPACE_BYTES = 32L << 20;

    /** One operand of the column-major call: {@code rows x cols}, leading dimension {@code ld}, batch stride in elements. */
    public record Operand(long ptr, long rows, long cols, long ld, long stride) {}

    /**
     * The column-major problem {@code D = opA(A) opB(B)} (D is {@code m x n}) equivalent to a row-major {@link Problem}.
     *
     * @param opA {@link CublasLt#OP_N} or {@link CublasLt#OP_T}
     */
    public record ColumnMajor(int opA, int opB, long m, long n, long k, Operand a, Operand b, Operand c) {}

    /** Maps a row-major problem to the column-major call (operands swapped, see the class comment). */
    public static ColumnMajor columnMajor(Problem p) {
        // first operand: the B buffer. Stored [k,n] (no transpose) it is column-major n x k; stored [n,k] it is k x n,
        // transposed.
        Operand a = p.transB()
                ? new Operand(p.b(), p.k(), p.n(), p.k(), p.strideB())
                : new Operand(p.b(), p.n(), p.k(), p.n(), p.strideB());
        // second operand: the A buffer. Stored [m,k] it is column-major k x m; stored [k,m] it is m x k, transposed.
        Operand b = p.transA()
                ? new Operand(p.a(), p.m(), p.k(), p.m(), p.strideA())
                : new Operand(p.a(), p.k(), p.m(), p.k(), p.strideA());
        Operand c = new Operand(p.c(), p.n(), p.m(), p.n(), p.strideC());
        return new ColumnMajor(
                p.transB() ? CublasLt.OP_T : CublasLt.OP_N,
                p.transA() ? CublasLt.OP_T : CublasLt.OP_N,
                p.n(),
                p.m(),
                p.k(),
                a,
                b,
                c);
    }

    private record Key(
            boolean transA,
            boolean transB,
            int m,
            int n,
            int k,
            DType ab,
            DType c,
            int batch,
            long strideA,
            long strideB,
            long strideC,
            int alignA,
            int alignB,
            int alignC) {}

    private final class Plan implements AutoCloseable {
        final CublasLt.MatmulDesc desc;
        final CublasLt.Layout a;
        final CublasLt.Layout b;
        final CublasLt.Layout c;
        final Optional<CublasLt.Algo> algo;

        Plan(Key key, ColumnMajor cm) {
            int computeType = key.ab() == DType.F32 && tf32 ? CublasLt.COMPUTE_32F_FAST_TF32 : CublasLt.COMPUTE_32F;
            desc = lt.createMatmulDesc(computeType, CublasLt.R_32F).transposes(cm.opA(), cm.opB());
            a = layout(key.ab(), cm.a(), key.batch());
            b = layout(key.ab(), cm.b(), key.batch());
            c = layout(key.c(), cm.c(), key.batch());
            try (CublasLt.Preference pref = lt.createPreference()) {
                pref.maxWorkspace(WORKSPACE_BYTES)
                        .minAlignments(key.alignB(), key.alignA(), key.alignC(), key.alignC());
                algo = lt.heuristic(handle, desc, a, b, c, c, pref, arena);
            }
        }

        private CublasLt.Layout layout(DType t, Operand o, int batch) {
            CublasLt.Layout l =
                    lt.createLayout(t == DType.BF16 ? CublasLt.R_16BF : CublasLt.R_32F, o.rows(), o.cols(), o.ld());
            if (batch > 1) l.batch(batch, o.stride());
            return l;
        }

        @Override
        public void close() {
            c.close();
            b.close();
            a.close();
            desc.close();
        }
    }

    private final CublasLt lt;
    private final CudaStream stream;
    private final CublasLt.Handle handle;
    private final long workspace;
    private final java.util.function.LongConsumer freeWorkspace;
    private final Arena arena = Arena.ofShared();
    private final MemorySegment alpha = arena.allocate(ValueLayout.JAVA_FLOAT);
    private final MemorySegment beta = arena.allocate(ValueLayout.JAVA_FLOAT);
    private final Map<Key, Plan> plans = new HashMap<>();
    private final boolean tf32;
    private boolean closed;

    /**
     * A hook queuing on {@code stream}; the context must be current. {@code workspace} is a device buffer of
     * {@link #WORKSPACE_BYTES}, released through {@code freeWorkspace} on close; {@code tf32} lets float32 GEMMs use
     * TF32.
     */
    CublasLtGemm(
            CublasLt lt,
            CudaStream stream,
            long workspace,
            java.util.function.LongConsumer freeWorkspace,
            boolean tf32) {
        this.lt = lt;
        this.tf32 = tf32;
        this.stream = stream;
        this.handle = lt.create();
        this.workspace = workspace;
        this.freeWorkspace = freeWorkspace;
    }

    /** The alignment (up to 256 bytes) every batch member's pointer has: that of the base and of the stride in bytes. */
    private static int alignment(long ptr, long strideElements, DType t, int batch) {
        long a = Math.min(256, Long.lowestOneBit(ptr));
        if (batch > 1 && strideElements != 0) a = Math.min(a, Long.lowestOneBit(strideElements * t.bytes()));
        return (int) a;
    }

    @Override
    public boolean run(Problem p) {
        if (closed) throw new IllegalStateException("cuBLASLt GEMM hook is closed");
        boolean abOk = p.abType() == DType.F32 || p.abType() == DType.BF16;
        boolean cOk = p.cType() == DType.F32 || (p.cType() == DType.BF16 && p.abType() == DType.BF16);
        if (!abOk || !cOk || p.m() <= 0 || p.n() <= 0 || p.k() <= 0 || p.batch() <= 0) return false;
        Key key = new Key(
                p.transA(),
                p.transB(),
                p.m(),
                p.n(),
                p.k(),
                p.abType(),
                p.cType(),
                p.batch(),
                p.batch() > 1 ? p.strideA() : 0,
                p.batch() > 1 ? p.strideB() : 0,
                p.batch() > 1 ? p.strideC() : 0,
                alignment(p.a(), p.strideA(), p.abType(), p.batch()),
                alignment(p.b(), p.strideB(), p.abType(), p.batch()),
                alignment(p.c(), p.strideC(), p.cType(), p.batch()));
        ColumnMajor cm = columnMajor(p);
        Plan plan = plans.get(key);
        if (plan == null) {
            plan = new Plan(key, cm);
            plans.put(key, plan);
        }
        if (plan.algo.isEmpty() || plan.algo.get().workspaceBytes() > WORKSPACE_BYTES) return false;
        alpha.set(ValueLayout.JAVA_FLOAT, 0, p.alpha());
        beta.set(ValueLayout.JAVA_FLOAT, 0, p.beta());
        lt.matmul(
                handle,
                plan.desc,
                alpha,
                cm.a().ptr(),
                plan.a,
                cm.b().ptr(),
                plan.b,
                beta,
                cm.c().ptr(),
                plan.c,
                cm.c().ptr(),
                plan.c,
                plan.algo.get(),
                workspace,
                WORKSPACE_BYTES,
                stream,
                "m=" + p.m() + ", n=" + p.n() + ", k=" + p.k() + ", batch=" + p.batch() + ", transA=" + p.transA()
                        + ", transB=" + p.transB() + ", ab=" + p.abType() + ", c=" + p.cType());
        return true;
    }

    /** Number of cached plans (distinct problem shapes seen). */
    public int planCount() {
        return plans.size();
    }

    @Override
    public void close() {
        if (closed) return;
        closed = true;
        for (Plan p : plans.values()) p.close();
        plans.clear();
        handle.close();
        freeWorkspace.accept(workspace);
        arena.close();
    }
}
