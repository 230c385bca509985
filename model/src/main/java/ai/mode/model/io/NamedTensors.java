package ai.mode.model.io;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * An ordered collection of named float32 host tensors (shape + flat row-major data): the backend-independent currency
 * of every checkpoint file in this package.
 *
 * <p>Ordered map from tensor name to a float32 array with its shape, in insertion order. Data arrays are stored by
 * reference (not copied): the caller must not resize them, and mutations are visible through this object.
 *
 * <pre>{@code
 * NamedTensors t = new NamedTensors();
 * t.put("model.norm.weight", new int[]{256}, normWeights);   // data.length must equal the shape's product
 * float[] w = t.data("model.norm.weight");
 * }</pre>
 */
public final class NamedTensors implements Iterable<NamedTensors.Entry> {

    /** One tensor: name, shape (outermost first) and row-major data of exactly {@code prod(shape)} floats. */
    public record Entry(String name, int[] shape, float[] data) {
        public Entry {
            shape = shape.clone();
        }

        /** The dimensions (a copy). */
        @Override
        public int[] shape() {
            return shape.clone();
        }

        /** Number of elements. */
        public long numel() {
            return data.length;
        }

        @Override
        public boolean equals(Object o) {
            return o instanceof Entry e
                    && name.equals(e.name)
                    && Arrays.equals(shape, e.shape)
                    && Arrays.equals(data, e.data);
        }

        @Override
        public int hashCode() {
            return name.hashCode();
        }

        @Override
        public String toString() {
            return name + Arrays.toString(shape);
        }
    }

    private final LinkedHashMap<String, Entry> entries = new LinkedHashMap<>();

    /**
     * Adds a tensor. Throws if the name is already present, the shape has a negative dimension, or
     * {@code data.length} differs from the product of the shape.
     */
    public NamedTensors put(String name, int[] shape, float[] data) {
        if (name == null || name.isEmpty()) throw new IllegalArgumentException("tensor name must be non-empty");
        if (entries.containsKey(name)) throw new IllegalArgumentException("duplicate tensor name " + name);
        long numel = numel(shape);
        if (numel < 0)
            throw new IllegalArgumentException("tensor " + name + ": invalid shape " + Arrays.toString(shape));
        if (numel != data.length) {
            throw new IllegalArgumentException("tensor " + name + ": shape " + Arrays.toString(shape) + " holds "
                    + numel + " elements but data has " + data.length);
        }
        entries.put(name, new Entry(name, shape, data));
        return this;
    }

    /** Adds every entry of {@code other} (same duplicate rules as {@link #put}). */
    public NamedTensors putAll(NamedTensors other) {
        for (Entry e : other) put(e.name(), e.shape, e.data());
        return this;
    }

    /** Whether a tensor of this name is present. */
    public boolean contains(String name) {
        return entries.containsKey(name);
    }

    /** The entry, or throws {@link IllegalArgumentException} naming the missing tensor. */
    public Entry get(String name) {
        Entry e = entries.get(name);
        if (e == null) throw new IllegalArgumentException("no tensor named " + name + " (have " + size() + " tensors)");
        return e;
    }

    /** The data array of a tensor (not a copy). */
    public float[] data(String name) {
        return get(name).data();
    }

    /** The shape of a tensor (a copy). */
    public int[] shape(String name) {
        return get(name).shape();
    }

    /** Removes a tensor if present; returns it or null. */
    public Entry remove(String name) {
        return entries.remove(name);
    }

    /** Names in insertion order (unmodifiable view). */
    public List<String> names() {
        return Collections.unmodifiableList(new ArrayList<>(entries.keySet()));
    }

    /** Number of tensors. */
    public int size() {
        return entries.size();
    }

    public boolean isEmpty() {
        return entries.isEmpty();
    }

    /** Total number of float elements over all tensors. */
    public long totalElements() {
        long n = 0;
        for (Entry e : entries.values()) n += e.data().length;
        return n;
    }

    /** Name -> data view of the tensors, insertion-ordered (unmodifiable). */
    public Map<String, float[]> asDataMap() {
        LinkedHashMap<String, float[]> m = new LinkedHashMap<>();
        for (Entry e : entries.values()) m.put(e.name(), e.data());
        return Collections.unmodifiableMap(m);
    }

    /**
     * The first element that is NaN or infinite, as {@code tensor <name> holds <value> at element <i>} (prefixed by
     * {@code prefix}, e.g. {@code "optimizer.m."}), or empty when every value is finite.
     */
    public Optional<String> firstNonFinite(String prefix) {
        for (Entry e : entries.values()) {
            float[] d = e.data();
            for (int i = 0; i < d.length; i++) {
                if (!Float.isFinite(d[i]))
                    return Optional.of("tensor " + prefix + e.name() + " holds " + d[i] + " at element " + i);
            }
        }
        return Optional.empty();
    }

    /** A copy with freshly allocated data arrays (same order). */
    public NamedTensors deepCopy() {
        NamedTensors c = new NamedTensors();
        for (Entry e : entries.values()) c.put(e.name(), e.shape, e.data().clone());
        return c;
    }

    /** Whether both hold the same names in the same order with equal shapes and bitwise-equal data. */
    public boolean bitwiseEquals(NamedTensors other) {
        if (!names().equals(other.names())) return false;
        for (Entry e : entries.values()) {
            Entry o = other.entries.get(e.name());
            if (!Arrays.equals(e.shape, o.shape)) return false;
            float[] a = e.data(), b = o.data();
            for (int i = 0; i < a.length; i++) {
                if (Float.floatToRawIntBits(a[i]) != Float.floatToRawIntBits(b[i])) return false;
            }
        }
        return true;
    }

    @Override
    public Iterator<Entry> iterator() {
        return Collections.unmodifiableCollection(entries.values()).iterator();
    }

    @Override
    public String toString() {
        return "NamedTensors" + entries.values();
    }

    /** Product of the dimensions; -1 if a dimension is negative or the product overflows a long. */
    static long numel(int[] shape) {
        long n = 1;
        for (int d : shape) {
            if (d < 0) return -1;
            try {
                n = Math.multiplyExact(n, d);
            } catch (ArithmeticException overflow) {
                return -1;
            }
        }
        return n;
    }
}
