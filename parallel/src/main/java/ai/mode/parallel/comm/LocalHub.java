package ai.mode.parallel.comm;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;

/**
 * The in-memory exchange hub: collective slots filled by the members' contributions and combined by the last to arrive,
 * FIFO mailboxes for point-to-point messages, and an abort that fails everything pending. Used directly by
 * threads-as-ranks and, behind the TCP server, by ranks in other processes. A thread-safe {@link Transport} in this
 * JVM.
 */
public final class LocalHub implements Transport {
    private final Object lock = new Object();
    private final Map<String, Slot> slots = new HashMap<>();
    private final Map<String, ArrayDeque<HostBuffer>> mail = new HashMap<>();
    private final Map<String, ArrayDeque<CompletableFuture<HostBuffer>>> waiting = new HashMap<>();
    private String aborted;

    private static final class Slot {
        final int members;
        final CollectiveSpec[] specs;
        final HostBuffer[] data;
        final List<CompletableFuture<HostBuffer>> futures;
        int arrived;

        Slot(int members) {
            this.members = members;
            this.specs = new CollectiveSpec[members];
            this.data = new HostBuffer[members];
            this.futures = new ArrayList<>(java.util.Collections.nCopies(members, null));
        }
    }

    private static String slotKey(String group, long seq) {
        return group + "#" + seq;
    }

    private static String mailKey(String group, int src, int dst) {
        return group + ":" + src + ">" + dst;
    }

    @Override
    public CompletableFuture<HostBuffer> collective(
            String group, int members, long seq, int member, CollectiveSpec spec, HostBuffer contribution) {
        CompletableFuture<HostBuffer> f = new CompletableFuture<>();
        Slot ready = null;
        String error = null;
        synchronized (lock) {
            if (aborted != null) {
                f.completeExceptionally(new CommunicatorException(aborted));
                return f;
            }
            Slot s = slots.computeIfAbsent(slotKey(group, seq), k -> new Slot(members));
            if (s.members != members || member < 0 || member >= members) {
                error = "collective #" + seq + " on group " + group + ": member " + member + " of " + members
                        + " does not fit the group of " + s.members;
            } else if (s.data[member] != null) {
                error = "collective #" + seq + " on group " + group + ": member " + member + " contributed twice";
            } else {
                s.specs[member] = spec;
                s.data[member] = contribution;
                s.futures.set(member, f);
                if (++s.arrived == members) {
                    slots.remove(slotKey(group, seq));
                    ready = s;
                }
            }
        }
        if (error != null) {
            abort(error);
            f.completeExceptionally(new CommunicatorException(error));
            return f;
        }
        if (ready != null) {
            HostBuffer[] res;
            try {
                res = Collectives.combine("collective #" + seq + " on group " + group, ready.specs, ready.data);
            } catch (CommunicatorException e) {
                abort(e.getMessage());
                CommunicatorException failed = new CommunicatorException(abortReason());
                for (CompletableFuture<HostBuffer> g : ready.futures) g.completeExceptionally(failed);
                return f;
            }
            for (int i = 0; i < members; i++) ready.futures.get(i).complete(res[i]);
        }
        return f;
    }

    @Override
    public void send(String group, int src, int dst, HostBuffer data) {
        CompletableFuture<HostBuffer> taker = null;
        synchronized (lock) {
            if (aborted != null) throw new CommunicatorException(aborted);
            String key = mailKey(group, src, dst);
            ArrayDeque<CompletableFuture<HostBuffer>> w = waiting.get(key);
            if (w != null && !w.isEmpty()) {
                taker = w.poll();
            } else {
                mail.computeIfAbsent(key, k -> new ArrayDeque<>()).add(data);
            }
        }
        if (taker != null) taker.complete(data);
    }

    @Override
    public CompletableFuture<HostBuffer> receive(String group, int src, int dst) {
        CompletableFuture<HostBuffer> f = new CompletableFuture<>();
        synchronized (lock) {
            if (aborted != null) {
                f.completeExceptionally(new CommunicatorException(aborted));
                return f;
            }
            String key = mailKey(group, src, dst);
            ArrayDeque<HostBuffer> m = mail.get(key);
            if (m != null && !m.isEmpty()) {
                f.complete(m.poll());
            } else {
                waiting.computeIfAbsent(key, k -> new ArrayDeque<>()).add(f);
            }
        }
        return f;
    }

    @Override
    public List<Integer> missing(String group, long seq) {
        synchronized (lock) {
            Slot s = slots.get(slotKey(group, seq));
            List<Integer> out = new ArrayList<>();
            if (s == null) return out;
            for (int i = 0; i < s.members; i++) if (s.data[i] == null) out.add(i);
            return out;
        }
    }

    @Override
    public void abort(String reason) {
        List<CompletableFuture<HostBuffer>> pending = new ArrayList<>();
        String why;
        synchronized (lock) {
            if (aborted == null) aborted = reason;
            why = aborted;
            for (Slot s : slots.values())
                for (CompletableFuture<HostBuffer> f : s.futures) if (f != null) pending.add(f);
            for (ArrayDeque<CompletableFuture<HostBuffer>> q : waiting.values()) pending.addAll(q);
            slots.clear();
            waiting.clear();
            mail.clear();
        }
        CommunicatorException e = new CommunicatorException(why);
        for (CompletableFuture<HostBuffer> f : pending) f.completeExceptionally(e);
    }

    /** The abort reason, or null while healthy. */
    public String abortReason() {
        synchronized (lock) {
            return aborted;
        }
    }
}
