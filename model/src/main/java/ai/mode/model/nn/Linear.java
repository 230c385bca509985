package ai.mode.model.nn;

import ai.mode.runtime.Backend;
import ai.mode.runtime.Tensor;

/**
 * Bias-free linear map with HF [out,in] weights, as GEMMs with transB; shared by every projection so the
 * forward/backward GEMM conventions live in one place. Static helpers for {@code y = x @ W^T} with {@code W [out,in]}.
 */
public final class Linear {
    private Linear() {}

    /** y [N,out] = x [N,in] @ W^T (overwrites y). */
    public static void forward(Backend b, Tensor x, Parameter w, Tensor y) {
        b.gemm(false, true, 1f, x, w.value(), 0f, y);
    }

    /**
     * Backward of {@link #forward}: {@code dx [N,in] (=|+=) dy [N,out] @ W} when dx is not null
     * ({@code accumulate} chooses += over =), and {@code dW [out,in] += dy^T @ x} when W is trainable.
     */
    public static void backward(Backend b, Tensor dy, Tensor x, Parameter w, Tensor dx, boolean accumulate) {
        if (dx != null) b.gemm(false, false, 1f, dy, w.value(), accumulate ? 1f : 0f, dx);
        if (w.trainable()) b.gemm(true, false, 1f, dy, x, 1f, w.grad());
    }
}
