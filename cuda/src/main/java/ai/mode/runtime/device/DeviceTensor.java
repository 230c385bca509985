package ai.mode.runtime.device;

import ai.mode.runtime.Backend;
import ai.mode.runtime.DType;
import ai.mode.runtime.Tensor;

/**
 * A tensor of a {@link DeviceBackend}: a device address plus shape and element type. A tensor made by
 * {@code allocate}/{@code fromHost} owns its memory and frees it on {@link #close()}; views and slices
 * share it and must not outlive it.
 */
public final class DeviceTensor implements Tensor {
    private final DeviceBackend backend;
    private final long pointer;
    private final int[] shape;
    private final DType dtype;
    private final boolean owner;
    private boolean closed;

    DeviceTensor(DeviceBackend backend, long pointer, int[] shape, DType dtype, boolean owner) {
        this.backend = backend;
        this.pointer = pointer;
        this.shape = shape.clone();
        this.dtype = dtype;
        this.owner = owner;
    }

    /** The device address of element 0 (0 for an empty tensor). */
    public long pointer() {
        if (closed) throw new IllegalStateException("tensor " + describe() + " was closed");
        return pointer;
    }

    /** Size of the data in bytes. */
    public long byteSize() {
        return numel() * dtype.bytes();
    }

    @Override
    public int[] shape() {
        return shape;
    }

    @Override
    public DType dtype() {
        return dtype;
    }

    @Override
    public Backend backend() {
        return backend;
    }

    @Override
    public void close() {
        if (!closed) {
            closed = true;
            if (owner) backend.release(pointer);
        }
    }
}
