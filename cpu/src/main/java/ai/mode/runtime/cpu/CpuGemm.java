package ai.mode.runtime.cpu;

import ai.mode.runtime.BackendSpec;
import java.util.Locale;

/**
 * Which SGEMM the cpu backend's {@code gemm} op runs: our Vector API kernel ({@link Sgemm}), Intel oneMKL's
 * ({@link MklSgemm}), or {@code auto}: oneMKL where it loads, except on non-Intel CPUs whose vectors are 512 bits
 * wide, where ours measured faster (docs/cpu-backend.md). Chosen per backend by the {@code gemm} option of its
 * {@link BackendSpec} (which {@code -Dmode.cpu.gemm} or {@code MODE_CPU_GEMM} set on the command line), else
 * {@code auto}. Attention's internal products always
 * run our kernel (they are fused with the softmax).
 */
public enum CpuGemm {
    AUTO,
    VECTOR,
    MKL;

    /** The system property that picks the default. */
    public static final String PROPERTY = "mode.cpu.gemm";

    /** {@code auto}, {@code vector} or {@code mkl} (any case), or a one-line error naming the choices. */
    public static CpuGemm parse(String value) {
        try {
            return valueOf(value.trim().toUpperCase(Locale.ROOT));
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(PROPERTY + "=" + value + " is not a cpu GEMM; give auto, vector or mkl");
        }
    }

    /** The {@value BackendSpec#CPU_GEMM} option of {@code spec}, else {@code auto}. */
    public static CpuGemm of(BackendSpec spec) {
        return spec.option(BackendSpec.CPU_GEMM).map(CpuGemm::parse).orElse(AUTO);
    }

    /** Lower-case name, as given on the command line. */
    public String label() {
        return name().toLowerCase(Locale.ROOT);
    }
}
