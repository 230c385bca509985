package ai.mode.runtime.device;

/**
 * A loaded kernel entry point, obtained from {@link Device#function(String)} and passed back to
 * {@link Device#launch}. Each device returns its own implementation (holding, e.g., a {@code CUfunction}
 * handle); a function must only be launched on the device that produced it.
 */
public interface KernelFunction {

    /** The {@code extern "C"} entry-point name, e.g. {@code mode_attention_fwd_f32}. */
    String entryPoint();
}
