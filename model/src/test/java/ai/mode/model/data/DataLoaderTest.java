package ai.mode.model.data;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.ObjectInputStream;
import java.io.ObjectOutputStream;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;

/** Training batches: real windows of the stream, epoch coverage, determinism, exact resume, and mixing proportions. */
class DataLoaderTest {

    /** Stream whose token at position i is base + i, so a row reveals where it came from. */
    static int[] ramp(int base, int n) {
        int[] t = new int[n];
        for (int i = 0; i < n; i++) t[i] = base + i;
        return t;
    }

    @Test
    void rowsAreConsecutiveWindowsAndAnEpochVisitsEachOnce() {
        int n = 1000, seqLen = 16;
        DataLoader loader = DataLoader.of(ramp(0, n), 4, seqLen, 1);
        int windows = loader.windowsPerEpoch(0);
        Set<Integer> starts = new HashSet<>();
        int offset = -1;
        while (starts.size() < windows) {
            Batch b = loader.next();
            assertEquals(4, b.rows());
            for (int r = 0; r < b.rows() && starts.size() < windows; r++) {
                int[] row = b.row(r);
                for (int i = 1; i < row.length; i++) assertEquals(row[0] + i, row[i], "row is not consecutive");
                assertTrue(starts.add(row[0]), "window repeated within an epoch: " + row[0]);
                if (offset < 0) offset = row[0] % seqLen;
                assertEquals(offset, row[0] % seqLen, "windows must be at stride seqLen from one offset");
            }
        }
        assertEquals((n - offset - 1) / seqLen, windows);
        // inputs/targets are the row shifted by one.
        Batch b = loader.next();
        int[] in = b.inputs(), tg = b.targets();
        for (int i = 0; i < in.length; i++) assertEquals(in[i] + 1, tg[i]);
    }

    @Test
    void sameSeedSameBatchesOtherSeedOtherOrder() {
        int[] stream = ramp(0, 5000);
        DataLoader a = DataLoader.of(stream, 3, 20, 42),
                b = DataLoader.of(stream, 3, 20, 42),
                c = DataLoader.of(stream, 3, 20, 43);
        boolean differs = false;
        for (int i = 0; i < 200; i++) {
            Batch ba = a.next(), bb = b.next(), bc = c.next();
            assertArrayEquals(ba.tokens(), bb.tokens());
            differs |= !Arrays.equals(ba.tokens(), bc.tokens());
        }
        assertTrue(differs);
        assertTrue(a.epoch(0) >= 2, "200 batches of 3 should cover several epochs of ~250 windows");
    }

    @Test
    void resumeFromSavedStateGivesIdenticalFollowingBatches() throws Exception {
        List<DataLoader.Source> sources = List.of(
                new DataLoader.Source("code", ramp(0, 3000)),
                new DataLoader.Source("math", ramp(100_000, 700)),
                new DataLoader.Source("english", ramp(200_000, 9000)));
        DataLoader original = new DataLoader(sources, 5, 12, 7);
        for (int i = 0; i < 137; i++) original.next();
        DataLoader.State state = original.state();
        List<int[]> expected = new ArrayList<>();
        for (int i = 0; i < 60; i++) expected.add(original.next().tokens());

        DataLoader.State fromJson = DataLoader.State.fromJson(state.toJson());
        assertEquals(state, fromJson);
        DataLoader.State fromJava = javaRoundTrip(state);
        assertEquals(state, fromJava);
        for (DataLoader.State s : List.of(fromJson, fromJava)) {
            DataLoader resumed = new DataLoader(sources, 5, 12, 7);
            resumed.restore(s);
            assertEquals(137, resumed.batchesServed());
            for (int[] e : expected) assertArrayEquals(e, resumed.next().tokens());
        }
    }

    @Test
    void restoreRejectsAMismatchedLoader() {
        DataLoader a = DataLoader.of(ramp(0, 500), 2, 10, 1);
        a.next();
        DataLoader.State s = a.state();
        IllegalArgumentException e = assertThrows(
                IllegalArgumentException.class,
                () -> DataLoader.of(ramp(0, 600), 2, 10, 1).restore(s));
        assertTrue(e.getMessage().contains("500 tokens"), e.getMessage());
        e = assertThrows(
                IllegalArgumentException.class,
                () -> DataLoader.of(ramp(0, 500), 2, 11, 1).restore(s));
        assertTrue(e.getMessage().contains("sequence length 10 vs 11"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> DataLoader.State.fromJson("{not json"));
        assertFalse(e.getMessage().contains("\n"));
        e = assertThrows(IllegalArgumentException.class, () -> DataLoader.of(ramp(0, 10), 2, 10, 1));
        assertTrue(e.getMessage().contains("fewer than one sequence of 11"), e.getMessage());
    }

    @Test
    void equalMixStaysWithinOneRowOfEqualShares() {
        List<DataLoader.Source> sources = List.of(
                new DataLoader.Source("a", ramp(0, 400)),
                new DataLoader.Source("b", ramp(1_000_000, 5000)),
                new DataLoader.Source("c", ramp(2_000_000, 2000)));
        DataLoader loader = new DataLoader(sources, 7, 8, 3);
        long[] count = new long[3];
        for (int i = 0; i < 300; i++) {
            Batch b = loader.next();
            for (int r = 0; r < b.rows(); r++) {
                int src = b.sources()[r];
                count[src]++;
                // The row's tokens really come from the stream it is labelled with.
                assertEquals(src, b.row(r)[0] / 1_000_000);
            }
            long max = Arrays.stream(count).max().orElseThrow(),
                    min = Arrays.stream(count).min().orElseThrow();
            assertTrue(max - min <= 1, "unequal mix " + Arrays.toString(count));
        }
        assertTrue(loader.epoch(0) > loader.epoch(1), "the small stream should cycle faster");
    }

    @Test
    void weightedMixFollowsWeights() {
        List<DataLoader.Source> sources = List.of(
                new DataLoader.Source("a", ramp(0, 400), 2),
                new DataLoader.Source("b", ramp(1_000_000, 400), 1),
                new DataLoader.Source("c", ramp(2_000_000, 400), 1));
        DataLoader loader = new DataLoader(sources, 4, 8, 3);
        long[] count = new long[3];
        for (int i = 0; i < 100; i++) for (int s : loader.next().sources()) count[s]++;
        assertEquals(200, count[0]);
        assertEquals(100, count[1]);
        assertEquals(100, count[2]);
    }

    private static DataLoader.State javaRoundTrip(DataLoader.State s) throws IOException, ClassNotFoundException {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        try (ObjectOutputStream out = new ObjectOutputStream(bytes)) {
            out.writeObject(s);
        }
        try (ObjectInputStream in = new ObjectInputStream(new ByteArrayInputStream(bytes.toByteArray()))) {
            return (DataLoader.State) in.readObject();
        }
    }
}
