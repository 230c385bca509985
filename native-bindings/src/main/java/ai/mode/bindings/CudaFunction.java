package ai.mode.bindings;

import java.lang.foreign.MemorySegment;

/**
 * A kernel entry point ({@code CUfunction}) of a {@link CudaModule}; valid while the module is loaded.
 *
 * @param name   the {@code extern "C"} entry-point name
 * @param handle the raw {@code CUfunction}
 */
public record CudaFunction(String name, MemorySegment handle) {}
