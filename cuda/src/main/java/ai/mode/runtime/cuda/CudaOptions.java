package ai.mode.runtime.cuda;

import ai.mode.runtime.BackendSpec;
import java.util.Locale;
import java.util.Set;

/**
 * Settings of a {@link CudaDevice}, from the options of the {@code cuda} backend's {@link BackendSpec} (on the command
 * line {@code -Dmode.cuda.gemm}, {@code -Dmode.cuda.kernels}, {@code -Dmode.cuda.tf32} set them through
 * {@link BackendSpec#fromEnvironment}).
 *
 * @param kernelGemm option {@code gemm=kernel}: GEMMs run the project's kernel even where cuBLASLt is available
 *     ({@code gemm=cublaslt}, the default, uses cuBLASLt where it loads)
 * @param nvrtcKernels option {@code kernels=nvrtc}: every module is compiled with NVRTC, even where a fatbin was built
 *     (default {@code fatbin})
 * @param tf32 option {@code tf32=true}: cuBLASLt may use TF32 for float32 GEMMs (default {@code false})
 */
public record CudaOptions(boolean kernelGemm, boolean nvrtcKernels, boolean tf32) {
    /** cuBLASLt GEMMs, shipped fatbins, no TF32. */
    public static final CudaOptions DEFAULT = new CudaOptions(false, false, false);

    /** The option names the {@code cuda} backend takes. */
    public static final Set<String> NAMES = Set.of("gemm", "kernels", "tf32");

    /** The options of {@code spec}; throws naming the option and its choices for an unknown name or value. */
    public static CudaOptions of(BackendSpec spec) {
        spec.requireOnlyOptions(NAMES);
        return new CudaOptions(
                choice(spec, "gemm", "cublaslt", "kernel"),
                choice(spec, "kernels", "fatbin", "nvrtc"),
                choice(spec, "tf32", "false", "true"));
    }

    /** False for {@code no} (also the default), true for {@code yes}. */
    private static boolean choice(BackendSpec spec, String name, String no, String yes) {
        String v = spec.option(name).orElse(no).strip().toLowerCase(Locale.ROOT);
        if (v.equals(no)) return false;
        if (v.equals(yes)) return true;
        throw new IllegalArgumentException("cuda option " + name + "=" + v + " is not one of " + no + ", " + yes);
    }
}
