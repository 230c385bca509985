/**
 * The device SPI and the backend built on it.
 *
 * <p>{@link ai.mode.runtime.device.Device} is what a concrete device implements (memory, copies,
 * kernel lookup, {@code cuLaunchKernel}-style launch); {@link ai.mode.runtime.device.DeviceBackend}
 * implements every {@link ai.mode.runtime.Backend} op by launching the project's kernels on any device,
 * with an optional {@link ai.mode.runtime.device.Gemm} hook for a vendor GEMM. The {@code cuda} backend is
 * {@code DeviceBackend} over the CUDA driver; {@code emu} is {@code DeviceBackend} over the CPU emulator.
 */
package ai.mode.runtime.device;
