package ai.mode.model.tokenizer;

import java.util.Arrays;

/**
 * Open-addressing hash map from non-negative long keys to long values (absent reads as a default), used for
 * BPE pair statistics and merge ranks where boxed maps would dominate the cost. Not thread-safe for writes.
 */
final class LongLongMap {

    private static final long EMPTY = -1L;
    private long[] keys;
    private long[] values;
    private int size;
    private int mask;

    LongLongMap(int expected) {
        int cap = Integer.highestOneBit(Math.max(16, expected * 2 - 1)) << 1;
        keys = new long[cap];
        values = new long[cap];
        Arrays.fill(keys, EMPTY);
        mask = cap - 1;
    }

    int size() {
        return size;
    }

    /** The value for {@code key}, or {@code absent} when there is none. */
    long get(long key, long absent) {
        int i = slot(key);
        while (true) {
            long k = keys[i];
            if (k == key) return values[i];
            if (k == EMPTY) return absent;
            i = (i + 1) & mask;
        }
    }

    void put(long key, long value) {
        int i = find(key);
        values[i] = value;
    }

    /** Adds {@code delta} to the value for {@code key} (absent counts as 0) and returns the new value. */
    long add(long key, long delta) {
        int i = find(key);
        values[i] += delta;
        return values[i];
    }

    /** Calls {@code visitor} for every entry, in table order. */
    void forEach(EntryVisitor visitor) {
        for (int i = 0; i < keys.length; i++) if (keys[i] != EMPTY) visitor.visit(keys[i], values[i]);
    }

    interface EntryVisitor {
        void visit(long key, long value);
    }

    /** Slot holding {@code key}, inserting it with value 0 when absent. */
    private int find(long key) {
        if (key < 0) throw new IllegalArgumentException("negative key " + key);
        int i = slot(key);
        while (true) {
            long k = keys[i];
            if (k == key) return i;
            if (k == EMPTY) {
                if ((size + 1) * 2 > keys.length) {
                    grow();
                    return find(key);
                }
                keys[i] = key;
                values[i] = 0;
                size++;
                return i;
            }
            i = (i + 1) & mask;
        }
    }

    private int slot(long key) {
        long h = key * 0x9E3779B97F4A7C15L;
        return (int) (h ^ (h >>> 29)) & mask;
    }

    private void grow() {
        long[] oldKeys = keys, oldValues = values;
        keys = new long[oldKeys.length * 2];
        values = new long[oldKeys.length * 2];
        Arrays.fill(keys, EMPTY);
        mask = keys.length - 1;
        size = 0;
        for (int i = 0; i < oldKeys.length; i++) {
            if (oldKeys[i] != EMPTY) put(oldKeys[i], oldValues[i]);
        }
    }
}
