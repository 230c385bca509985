package ai.mode.runtime.device;

import ai.mode.runtime.DType;

/**
 * Hook for a vendor GEMM (e.g. cuBLASLt) that a {@link Device} may offer through {@link Device#vendorGemm()}.
 * {@link DeviceBackend} offers every GEMM to it first; when it declines, the project's GEMM kernel runs.
 */
public interface Gemm {

    /**
     * One (batched) row-major GEMM on device pointers, all matrices contiguous:
     * for every batch index {@code i < batch},
     * {@code C_i = alpha * op(A_i) @ op(B_i) + beta * C_i} with {@code C_i} [m, n],
     * {@code op(A_i)} [m, k] (A_i stored [k, m] when {@code transA}), {@code op(B_i)} [k, n]
     * (B_i stored [n, k] when {@code transB}). {@code X_i = x + i * strideX * elementSize}; a stride of 0
     * broadcasts one matrix over the batch. With {@code beta == 0}, C is not read.
     *
     * @param a           device address of A; {@code abType} is the element type of A and B (F32 or BF16)
     * @param c           device address of C; {@code cType} its element type (F32 or BF16);
     *                    accumulation is always float32
     * @param strideA     elements between consecutive A matrices (0 = broadcast); likewise strideB, strideC
     */
    record Problem(
            boolean transA,
            boolean transB,
            int m,
            int n,
            int k,
            float alpha,
            long a,
            long strideA,
            long b,
            long strideB,
            DType abType,
            float beta,
            long c,
            long strideC,
            DType cType,
            int batch) {}

    /**
     * Queues the GEMM on the device's stream and returns true, or returns false without side effects when
     * this implementation does not handle the problem (the caller then runs its own kernel).
     */
    boolean run(Problem p);
}
