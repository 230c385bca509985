package ai.mode.model.tokenizer;

import java.util.Arrays;

/**
 * Binary min-heap of (primary, secondary) long pairs ordered lexicographically. BPE encoding keys it by
 * (merge rank, position) so the lowest-ranked, leftmost pair merges first; BPE training by (-count, pair key)
 * so the most frequent pair, ties broken by the smaller pair, merges next.
 */
final class LongPairHeap {

    private long[] primary = new long[64];
    private long[] secondary = new long[64];
    private int size;

    boolean isEmpty() {
        return size == 0;
    }

    int size() {
        return size;
    }

    void clear() {
        size = 0;
    }

    void push(long p, long s) {
        if (size == primary.length) {
            primary = Arrays.copyOf(primary, size * 2);
            secondary = Arrays.copyOf(secondary, size * 2);
        }
        int i = size++;
        while (i > 0) {
            int parent = (i - 1) >>> 1;
            if (!less(p, s, primary[parent], secondary[parent])) break;
            primary[i] = primary[parent];
            secondary[i] = secondary[parent];
            i = parent;
        }
        primary[i] = p;
        secondary[i] = s;
    }

    long peekPrimary() {
        return primary[0];
    }

    long peekSecondary() {
        return secondary[0];
    }

    /** Removes the smallest entry (read it first with the peek methods). */
    void pop() {
        long p = primary[--size], s = secondary[size];
        int i = 0;
        while (true) {
            int child = 2 * i + 1;
            if (child >= size) break;
            if (child + 1 < size && less(primary[child + 1], secondary[child + 1], primary[child], secondary[child])) {
                child++;
            }
            if (!less(primary[child], secondary[child], p, s)) break;
            primary[i] = primary[child];
            secondary[i] = secondary[child];
            i = child;
        }
        primary[i] = p;
        secondary[i] = s;
    }

    private static boolean less(long p1, long s1, long p2, long s2) {
        return p1 < p2 || (p1 == p2 && s1 < s2);
    }
}
