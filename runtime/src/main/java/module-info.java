/**
 * The MoDE-J compute API: {@link ai.mode.runtime.Backend} and {@link ai.mode.runtime.Tensor}, their dtypes and shape
 * checks, and the {@link ai.mode.runtime.BackendProvider} service through which backend artifacts (mode-cpu,
 * mode-cuda, or another framework's) are found by name. It needs nothing beyond {@code java.base}; the backends bring
 * their own requirements (the cpu backend's Vector API kernels need {@code --add-modules jdk.incubator.vector}).
 */
module ai.mode.runtime {
    exports ai.mode.runtime;

    uses ai.mode.runtime.BackendProvider;
}
