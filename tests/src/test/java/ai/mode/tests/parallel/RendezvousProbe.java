// A child process of RendezvousTest: joins a multi-process rendezvous from the torchrun environment variables
// and runs collectives over the TCP hub, printing what it got; or dies right after joining ("die" mode).
package ai.mode.tests.parallel;

import ai.mode.parallel.comm.Communicator;
import ai.mode.parallel.comm.HubCommunicator;
import ai.mode.parallel.comm.ReduceOp;
import ai.mode.parallel.net.LaunchEnv;
import ai.mode.parallel.net.Rendezvous;
import ai.mode.runtime.Backend;
import ai.mode.runtime.Backends;
import ai.mode.runtime.Tensor;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

public final class RendezvousProbe {
    private RendezvousProbe() {}

    public static void main(String[] args) throws Exception {
        LaunchEnv env = LaunchEnv.from(System.getenv()).orElseThrow();
        try (Rendezvous.Joined j = Rendezvous.join(env, 1, Duration.ofSeconds(20), () -> new byte[0]);
                Backend be = Backends.create("cpu", 1)) {
            if (args.length > 0 && args[0].equals("die")) {
                System.out.println("joined as " + j.firstRank() + "; dying");
                System.out.flush();
                Runtime.getRuntime().halt(3);
            }
            System.out.println(run(j, be));
        }
    }

    /** The collectives both sides run: all-reduce of rank+1, an all-gather of ranks, a ring message. */
    static String run(Rendezvous.Joined j, Backend be) {
        return run(j, be, "world");
    }

    /** {@link #run(Rendezvous.Joined, Backend)} on a communicator of the whole world named {@code group}. */
    static String run(Rendezvous.Joined j, Backend be, String group) {
        List<Integer> ranks = new ArrayList<>();
        for (int r = 0; r < j.worldSize(); r++) ranks.add(r);
        Communicator c = new HubCommunicator(j.transport(), group, j.firstRank(), ranks, be, Duration.ofSeconds(20));
        int r = c.rank(), n = c.size();
        try (Tensor t = be.fromHost(new float[] {r + 1f}, 1);
                Tensor g = be.zeros(n);
                Tensor ring = be.zeros(1);
                Tensor mine = be.fromHost(new float[] {r}, 1)) {
            c.allReduce(t, ReduceOp.SUM).await();
            c.allGather(be.fromHost(new float[] {10f * r}, 1), g).await();
            c.exchange(List.of(
                            Communicator.Transfer.send(mine, (r + 1) % n),
                            Communicator.Transfer.recv(ring, (r + n - 1) % n)))
                    .await();
            c.barrier();
            return "rank=" + r + " sum=" + be.toHostFloats(t)[0] + " gathered="
                    + java.util.Arrays.toString(be.toHostFloats(g)) + " ring=" + be.toHostFloats(ring)[0];
        }
    }
}
