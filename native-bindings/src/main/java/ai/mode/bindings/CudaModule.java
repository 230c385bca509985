package ai.mode.bindings;

import java.lang.foreign.MemorySegment;
import java.util.HashMap;
import java.util.Map;

/** A loaded module ({@code CUmodule}); {@link #close()} unloads it, invalidating its functions. */
public final class CudaModule implements AutoCloseable {
    private final CudaDriver driver;
    private final String name;
    private final MemorySegment handle;
    private final Map<String, CudaFunction> functions = new HashMap<>();
    private boolean closed;

    CudaModule(CudaDriver driver, String name, MemorySegment handle) {
        this.driver = driver;
        this.name = name;
        this.handle = handle;
    }

    /** The kernel {@code entry} ({@code cuModuleGetFunction}, cached); throws {@link CudaException} if absent. */
    public synchronized CudaFunction function(String entry) {
        if (closed) throw new IllegalStateException("module " + name + " is unloaded");
        CudaFunction f = functions.get(entry);
        if (f == null) {
            f = new CudaFunction(entry, driver.moduleGetFunction(handle, name, entry));
            functions.put(entry, f);
        }
        return f;
    }

    /** The label given at load time. */
    public String name() {
        return name;
    }

    /** {@code cuModuleUnload}; idempotent. */
    @Override
    public synchronized void close() {
        if (closed) return;
        closed = true;
        functions.clear();
        driver.moduleUnload(handle, name);
    }
}
