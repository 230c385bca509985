package ai.mode.model.tokenizer;

/**
 * The BPE merge loop, shared by the byte-level {@link BpeTokenizer} and the BPE model of {@link HfTokenizer}: on a
 * word given as its initial symbol ids, repeatedly merge the adjacent pair of lowest merge rank, leftmost first (the
 * order Hugging Face {@code tokenizers} applies), until no adjacent pair has a merge.
 */
final class BpeMerges {

    private BpeMerges() {}

    /**
     * Merges {@code sym} (overwritten) and returns the resulting ids.
     *
     * @param pairRank    {@link BpeTokenizer#pairKey(int, int)} of a pair to its merge rank
     * @param mergeResult the id each rank produces
     */
    static int[] apply(int[] sym, LongLongMap pairRank, int[] mergeResult) {
        int n = sym.length;
        int[] next = new int[n], prev = new int[n];
        for (int i = 0; i < n; i++) {
            prev[i] = i - 1;
            next[i] = i + 1 < n ? i + 1 : -1;
        }
        LongPairHeap heap = new LongPairHeap();
        for (int i = 0; i + 1 < n; i++) {
            long r = pairRank.get(BpeTokenizer.pairKey(sym[i], sym[i + 1]), -1);
            if (r >= 0) heap.push(r, i);
        }
        int alive = n;
        while (!heap.isEmpty()) {
            long r = heap.peekPrimary();
            int i = (int) heap.peekSecondary();
            heap.pop();
            int j = next[i];
            if (sym[i] < 0 || j < 0 || pairRank.get(BpeTokenizer.pairKey(sym[i], sym[j]), -1) != r) continue;
            sym[i] = mergeResult[(int) r];
            sym[j] = -1;
            next[i] = next[j];
            if (next[j] >= 0) prev[next[j]] = i;
            alive--;
            if (prev[i] >= 0) {
                long rp = pairRank.get(BpeTokenizer.pairKey(sym[prev[i]], sym[i]), -1);
                if (rp >= 0) heap.push(rp, prev[i]);
            }
            if (next[i] >= 0) {
                long rn = pairRank.get(BpeTokenizer.pairKey(sym[i], sym[next[i]]), -1);
                if (rn >= 0) heap.push(rn, i);
            }
        }
        int[] out = new int[alive];
        for (int i = n == 0 ? -1 : 0, o = 0; i >= 0; i = next[i]) out[o++] = sym[i];
        return out;
    }
}
