package ai.mode.parallel.comm;

import java.util.Arrays;

/**
 * The semantics of every collective as a pure function of all members' contributions: the single place the hub
 * transports (in-process and TCP) compute results, so both give the same bits. Reductions run in member order, which
 * makes results reproducible and identical on every member. Combines the contributions of all members of one collective
 * into each member's result.
 */
public final class Collectives {
    private Collectives() {}

    /**
     * @param where    e.g. {@code collective #4 on group world}, for error messages
     * @param specs    each member's call
     * @param data     each member's contribution
     * @return each member's result (members may share one array; results are read only)
     * @throws CommunicatorException naming the first inconsistency between the members' calls
     */
    public static HostBuffer[] combine(String where, CollectiveSpec[] specs, HostBuffer[] data) {
        int n = specs.length;
        for (int r = 1; r < n; r++) {
            if (!specs[r].sameCall(specs[0])) {
                throw new CommunicatorException(where + ": member 0 called " + specs[0].describe() + " but member " + r
                        + " called " + specs[r].describe() + " (the members' programs diverged)");
            }
        }
        CollectiveSpec s = specs[0];
        HostBuffer.Kind kind = data[0].kind();
        for (int r = 1; r < n; r++) {
            if (data[r].kind() != kind && s.kind() != CollectiveSpec.Kind.BARRIER) {
                throw new CommunicatorException(
                        where + ": member 0 sent " + kind + " data but member " + r + " sent " + data[r].kind());
            }
        }
        return switch (s.kind()) {
            case ALL_REDUCE -> allReduce(where, s.op(), data);
            case ALL_GATHER -> allGather(where, s.counts(), data);
            case REDUCE_SCATTER -> reduceScatter(where, s.op(), s.counts(), data);
            case BROADCAST -> broadcast(where, s.root(), specs, data);
            case ALL_TO_ALL -> allToAll(where, specs, data);
            case BARRIER -> {
                HostBuffer[] out = new HostBuffer[n];
                Arrays.fill(out, HostBuffer.empty(kind));
                yield out;
            }
        };
    }

    private static HostBuffer[] allReduce(String where, ReduceOp op, HostBuffer[] data) {
        int n = data.length, len = data[0].length();
        for (int r = 1; r < n; r++) {
            if (data[r].length() != len) {
                throw new CommunicatorException(where + ": all-reduce sizes differ: member 0 has " + len
                        + " elements, member " + r + " has " + data[r].length());
            }
        }
        HostBuffer out = reduce(op, data, 0, len);
        HostBuffer[] res = new HostBuffer[n];
        Arrays.fill(res, out);
        return res;
    }

    /** Elementwise reduction of {@code data[*][from, from+len)} in member order. */
    private static HostBuffer reduce(ReduceOp op, HostBuffer[] data, int from, int len) {
        int n = data.length;
        switch (data[0].kind()) {
            case F32 -> {
                float[] acc = Arrays.copyOfRange(data[0].floats(), from, from + len);
                for (int r = 1; r < n; r++) {
                    float[] x = data[r].floats();
                    if (op == ReduceOp.MAX) {
                        for (int i = 0; i < len; i++) acc[i] = Math.max(acc[i], x[from + i]);
                    } else {
                        for (int i = 0; i < len; i++) acc[i] += x[from + i];
                    }
                }
                if (op == ReduceOp.AVG) for (int i = 0; i < len; i++) acc[i] /= n;
                return HostBuffer.of(acc);
            }
            case F64 -> {
                double[] acc = Arrays.copyOfRange(data[0].doubles(), from, from + len);
                for (int r = 1; r < n; r++) {
                    double[] x = data[r].doubles();
                    if (op == ReduceOp.MAX) {
                        for (int i = 0; i < len; i++) acc[i] = Math.max(acc[i], x[from + i]);
                    } else {
                        for (int i = 0; i < len; i++) acc[i] += x[from + i];
                    }
                }
                if (op == ReduceOp.AVG) for (int i = 0; i < len; i++) acc[i] /= n;
                return HostBuffer.of(acc);
            }
            default -> {
                int[] acc = Arrays.copyOfRange(data[0].ints(), from, from + len);
                for (int r = 1; r < n; r++) {
                    int[] x = data[r].ints();
                    if (op == ReduceOp.MAX) {
                        for (int i = 0; i < len; i++) acc[i] = Math.max(acc[i], x[from + i]);
                    } else {
                        for (int i = 0; i < len; i++) acc[i] += x[from + i];
                    }
                }
                if (op == ReduceOp.AVG) for (int i = 0; i < len; i++) acc[i] /= n;
                return HostBuffer.of(acc);
            }
        }
    }

    private static void checkCounts(String where, String what, int[] counts, int n) {
        if (counts.length != n)
            throw new CommunicatorException(
                    where + ": " + what + " needs one count per member (" + n + "), got " + counts.length);
        for (int c : counts)
            if (c < 0)
                throw new CommunicatorException(
                        where + ": " + what + " counts must be >= 0, got " + Arrays.toString(counts));
    }

    private static HostBuffer[] allGather(String where, int[] counts, HostBuffer[] data) {
        int n = data.length;
        checkCounts(where, "all-gather", counts, n);
        int total = 0;
        for (int r = 0; r < n; r++) {
            if (data[r].length() != counts[r]) {
                throw new CommunicatorException(where + ": all-gather member " + r + " sent " + data[r].length()
                        + " elements but the counts say " + counts[r]);
            }
            total += counts[r];
        }
        HostBuffer out = HostBuffer.allocate(data[0].kind(), total);
        int pos = 0;
        for (int r = 0; r < n; r++) {
            data[r].copyTo(0, out, pos, counts[r]);
            pos += counts[r];
        }
        HostBuffer[] res = new HostBuffer[n];
        Arrays.fill(res, out);
        return res;
    }

    private static HostBuffer[] reduceScatter(String where, ReduceOp op, int[] counts, HostBuffer[] data) {
        int n = data.length;
        checkCounts(where, "reduce-scatter", counts, n);
        int total = Arrays.stream(counts).sum();
        for (int r = 0; r < n; r++) {
            if (data[r].length() != total) {
                throw new CommunicatorException(where + ": reduce-scatter member " + r + " sent " + data[r].length()
                        + " elements but the blocks add up to " + total);
            }
        }
        HostBuffer[] res = new HostBuffer[n];
        int pos = 0;
        for (int r = 0; r < n; r++) {
            res[r] = reduce(op, data, pos, counts[r]);
            pos += counts[r];
        }
        return res;
    }

    private static HostBuffer[] broadcast(String where, int root, CollectiveSpec[] specs, HostBuffer[] data) {
        int n = data.length;
        if (root < 0 || root >= n)
            throw new CommunicatorException(
                    where + ": broadcast root " + root + " is not a member (0.." + (n - 1) + ")");
        int len = data[root].length();
        for (int r = 0; r < n; r++) {
            int expect = specs[r].counts().length == 1 ? specs[r].counts()[0] : -1;
            if (expect != len) {
                throw new CommunicatorException(where + ": broadcast from member " + root + " sends " + len
                        + " elements but member " + r + " expects " + expect);
            }
        }
        HostBuffer[] res = new HostBuffer[n];
        Arrays.fill(res, data[root]);
        return res;
    }

    private static HostBuffer[] allToAll(String where, CollectiveSpec[] specs, HostBuffer[] data) {
        int n = data.length;
        int[][] offsets = new int[n][n + 1];
        for (int s = 0; s < n; s++) {
            int[] sc = specs[s].counts();
            checkCounts(where, "all-to-all send", sc, n);
            checkCounts(where, "all-to-all receive", specs[s].recvCounts(), n);
            for (int d = 0; d < n; d++) offsets[s][d + 1] = offsets[s][d] + sc[d];
            if (offsets[s][n] != data[s].length()) {
                throw new CommunicatorException(where + ": all-to-all member " + s + " sent " + data[s].length()
                        + " elements but its send counts add up to " + offsets[s][n]);
            }
        }
        HostBuffer[] res = new HostBuffer[n];
        for (int d = 0; d < n; d++) {
            int total = 0;
            for (int s = 0; s < n; s++) {
                int sent = specs[s].counts()[d], expected = specs[d].recvCounts()[s];
                if (sent != expected) {
                    throw new CommunicatorException(where + ": all-to-all member " + s + " sends " + sent
                            + " elements to member " + d + " but member " + d + " expects " + expected);
                }
                total += sent;
            }
            HostBuffer out = HostBuffer.allocate(data[0].kind(), total);
            int pos = 0;
            for (int s = 0; s < n; s++) {
                int c = specs[s].counts()[d];
                data[s].copyTo(offsets[s][d], out, pos, c);
                pos += c;
            }
            res[d] = out;
        }
        return res;
    }
}
