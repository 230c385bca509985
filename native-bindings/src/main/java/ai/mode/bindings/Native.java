package ai.mode.bindings;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.util.List;
import java.util.Optional;
import java.util.function.Supplier;

/** Small FFM helpers shared by the bindings: downcall lookup, C strings, and exception unwrapping. */
@SuppressWarnings("restricted")
final class Native {
    static final Linker LINKER = Linker.nativeLinker();

    private Native() {}

    /**
     * A downcall handle for the first of {@code names} that {@code lib} exports (versioned names such as
     * {@code cuMemAlloc_v2} first, then the legacy name), or a one-line {@link NativeLibraryException}.
     */
    static MethodHandle function(SymbolLookup lib, String library, FunctionDescriptor fd, String... names) {
        return optionalFunction(lib, fd, names).orElseThrow(() -> missing(library, names));
    }

    /** Like {@link #function}, the downcall linked with {@code option} (e.g. {@link Linker.Option#critical}). */
    static MethodHandle function(
            SymbolLookup lib, String library, FunctionDescriptor fd, Linker.Option option, String name) {
        return lib.find(name)
                .map(sym -> LINKER.downcallHandle(sym, fd, option))
                .orElseThrow(() -> missing(library, name));
    }

    /** Like {@link #function} but empty when no name is exported (for optional, newer entry points). */
    static Optional<MethodHandle> optionalFunction(SymbolLookup lib, FunctionDescriptor fd, String... names) {
        for (String name : names) {
            Optional<MemorySegment> sym = lib.find(name);
            if (sym.isPresent()) {
                return Optional.of(LINKER.downcallHandle(sym.get(), fd));
            }
        }
        return Optional.empty();
    }

    private static NativeLibraryException missing(String library, String... names) {
        return new NativeLibraryException("symbol " + String.join(" / ", names) + " not found in " + library
                + ": the library is too old for MoDE-J; install a newer one");
    }

    /**
     * A binding made once per JVM: the first {@link #get} runs the loader; its result, or its
     * {@link NativeLibraryException}, is kept, and every later call returns it or throws the same line again.
     */
    static final class Once<T> {
        private final Supplier<T> loader;
        private volatile Object result;

        Once(Supplier<T> loader) {
            this.loader = loader;
        }

        @SuppressWarnings("unchecked")
        T get() {
            Object r = result;
            if (r == null) {
                synchronized (this) {
                    r = result;
                    if (r == null) {
                        try {
                            r = loader.get();
                        } catch (NativeLibraryException e) {
                            r = e;
                        }
                        result = r;
                    }
                }
            }
            if (r instanceof NativeLibraryException e) throw new NativeLibraryException(e.getMessage(), e);
            return (T) r;
        }
    }

    /** The NUL-terminated string at {@code ptr}, or {@code null} for a NULL pointer. */
    static String string(MemorySegment ptr) {
        if (ptr == null || ptr.equals(MemorySegment.NULL)) return null;
        return ptr.reinterpret(Long.MAX_VALUE).getString(0);
    }

    /** A {@code const char*[]} array of NUL-terminated copies of {@code strings}, allocated in {@code arena}. */
    static MemorySegment stringArray(Arena arena, List<String> strings) {
        if (strings.isEmpty()) return MemorySegment.NULL;
        MemorySegment array = arena.allocate(ValueLayout.ADDRESS, strings.size());
        for (int i = 0; i < strings.size(); i++) {
            array.setAtIndex(ValueLayout.ADDRESS, i, arena.allocateFrom(strings.get(i)));
        }
        return array;
    }

    /** Rethrows unchecked throwables from {@code invokeExact}; wraps anything else (never expected). */
    static RuntimeException rethrow(Throwable t) {
        if (t instanceof RuntimeException r) return r;
        if (t instanceof Error e) throw e;
        return new IllegalStateException("unexpected checked exception from a native call", t);
    }
}
