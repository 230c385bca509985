package ai.mode.runtime.device;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * Builds the {@code void** kernelParams} array of {@link Device#launch}: one 8-byte value slot per
 * parameter, and an array of pointers to the slots. Kernel parameters are scalars only (device pointers
 * as {@code long}, {@code int}, {@code float}), never structs, so the C side's layout is the C ABI of
 * each scalar type; {@code ai.mode.tests.emu.KernelArgsLayoutTest} checks the marshalling.
 *
 * <pre>
 * try (Arena arena = Arena.ofConfined()) {
 *     MemorySegment params = new KernelArgs(arena, 3).ptr(x).i32(n).f32(eps).build();
 *     device.launch(f, grid, 1, 1, 256, 1, 1, 0, params);
 * }
 * </pre>
 */
public final class KernelArgs {
    private static final long SLOT = 8;

    private final MemorySegment slots;
    private final MemorySegment pointers;
    private final int capacity;
    private final StringBuilder signature = new StringBuilder();
    private int count;

    /** Room for up to {@code capacity} parameters, allocated in {@code arena}. */
    public KernelArgs(Arena arena, int capacity) {
        this.capacity = capacity;
        this.slots = arena.allocate(SLOT * Math.max(1, capacity), SLOT);
        this.pointers = arena.allocate(ValueLayout.ADDRESS, Math.max(1, capacity));
    }

    private MemorySegment next(char code) {
        if (count == capacity) {
            throw new IllegalStateException("KernelArgs: more than " + capacity + " parameters");
        }
        MemorySegment slot = slots.asSlice(count * SLOT, SLOT);
        pointers.setAtIndex(ValueLayout.ADDRESS, count, slot);
        count++;
        signature.append(code);
        return slot;
    }

    /** A device pointer parameter ({@code T*} on the C side). */
    public KernelArgs ptr(long devicePointer) {
        next('p').set(ValueLayout.JAVA_LONG, 0, devicePointer);
        return this;
    }

    /** An {@code int} parameter. */
    public KernelArgs i32(int value) {
        next('i').set(ValueLayout.JAVA_INT, 0, value);
        return this;
    }

    /** A {@code long long} parameter. */
    public KernelArgs i64(long value) {
        next('l').set(ValueLayout.JAVA_LONG, 0, value);
        return this;
    }

    /** A {@code float} parameter. */
    public KernelArgs f32(float value) {
        next('f').set(ValueLayout.JAVA_FLOAT, 0, value);
        return this;
    }

    /** A {@code double} parameter. */
    public KernelArgs f64(double value) {
        next('d').set(ValueLayout.JAVA_DOUBLE, 0, value);
        return this;
    }

    /** An {@code unsigned int} parameter (the low 32 bits of {@code value}). */
    public KernelArgs u32(int value) {
        next('u').set(ValueLayout.JAVA_INT, 0, value);
        return this;
    }

    /** The parameter types so far, one character each, as {@link Device#verifyParameters} takes them. */
    public String signature() {
        return signature.toString();
    }

    /** Number of parameters added so far. */
    public int count() {
        return count;
    }

    /** The {@code void*[count]} array to pass as {@code kernelParams}; valid while the arena is alive. */
    public MemorySegment build() {
        return pointers.asSlice(0, ValueLayout.ADDRESS.byteSize() * Math.max(1, count));
    }
}
