package ai.mode.parallel.comm;

import java.util.Arrays;

/**
 * What one member asked a collective to do; the hub checks that all members asked for the same thing. One member's
 * description of a collective call.
 *
 * @param kind       the collective
 * @param op         the reduction (all-reduce, reduce-scatter), else null
 * @param root       the root (broadcast), else -1
 * @param counts     all-gather / reduce-scatter: elements per member; all-to-all: elements sent to each member;
 *                   broadcast: {1 element: this member's buffer length}; else empty
 * @param recvCounts all-to-all: elements received from each member; else empty
 */
public record CollectiveSpec(Kind kind, ReduceOp op, int root, int[] counts, int[] recvCounts) {
    /** The collectives. */
    public enum Kind {
        ALL_REDUCE("all-reduce"),
        ALL_GATHER("all-gather"),
        REDUCE_SCATTER("reduce-scatter"),
        BROADCAST("broadcast"),
        ALL_TO_ALL("all-to-all"),
        BARRIER("barrier");

        private final String label;

        Kind(String label) {
            this.label = label;
        }

        public String label() {
            return label;
        }
    }

    private static final int[] NONE = new int[0];

    public CollectiveSpec {
        counts = counts == null ? NONE : counts.clone();
        recvCounts = recvCounts == null ? NONE : recvCounts.clone();
    }

    public static CollectiveSpec allReduce(ReduceOp op) {
        return new CollectiveSpec(Kind.ALL_REDUCE, op, -1, null, null);
    }

    public static CollectiveSpec allGather(int[] counts) {
        return new CollectiveSpec(Kind.ALL_GATHER, null, -1, counts, null);
    }

    public static CollectiveSpec reduceScatter(int[] counts, ReduceOp op) {
        return new CollectiveSpec(Kind.REDUCE_SCATTER, op, -1, counts, null);
    }

    public static CollectiveSpec broadcast(int root, int length) {
        return new CollectiveSpec(Kind.BROADCAST, null, root, new int[] {length}, null);
    }

    public static CollectiveSpec allToAll(int[] sendCounts, int[] recvCounts) {
        return new CollectiveSpec(Kind.ALL_TO_ALL, null, -1, sendCounts, recvCounts);
    }

    public static CollectiveSpec barrier() {
        return new CollectiveSpec(Kind.BARRIER, null, -1, null, null);
    }

    /** Same call as {@code o} (ignoring what is per member: broadcast length, all-to-all counts). */
    boolean sameCall(CollectiveSpec o) {
        if (kind != o.kind || op != o.op || root != o.root) return false;
        return switch (kind) {
            case ALL_GATHER, REDUCE_SCATTER -> Arrays.equals(counts, o.counts);
            default -> true;
        };
    }

    /** E.g. {@code all-reduce(SUM)} or {@code broadcast(root 2)}. */
    public String describe() {
        StringBuilder sb = new StringBuilder(kind.label);
        if (op != null) sb.append('(').append(op).append(')');
        if (root >= 0) sb.append("(root ").append(root).append(')');
        if ((kind == Kind.ALL_GATHER || kind == Kind.REDUCE_SCATTER) && counts.length > 0)
            sb.append(" counts ").append(Arrays.toString(counts));
        return sb.toString();
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof CollectiveSpec s
                && kind == s.kind
                && op == s.op
                && root == s.root
                && Arrays.equals(counts, s.counts)
                && Arrays.equals(recvCounts, s.recvCounts);
    }

    @Override
    public int hashCode() {
        return ((kind.hashCode() * 31 + (op == null ? 0 : op.hashCode())) * 31 + root) * 31
                + Arrays.hashCode(counts) * 17
                + Arrays.hashCode(recvCounts);
    }

    @Override
    public String toString() {
        return describe();
    }
}
