package ai.mode.parallel.net;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * The torchrun launch conventions: MASTER_ADDR, MASTER_PORT, RANK, WORLD_SIZE, LOCAL_RANK. One process per RANK; rank 0
 * hosts the rendezvous (and the exchange hub) on MASTER_ADDR:MASTER_PORT.
 *
 * @param masterAddr where rank 0 listens (a host name or address every process can reach)
 * @param masterPort the rendezvous port
 * @param rank       this process, 0..worldSize-1
 * @param worldSize  number of processes
 * @param localRank  this process's index on its node (picks its GPU by default)
 */
public record LaunchEnv(String masterAddr, int masterPort, int rank, int worldSize, int localRank) {
    /** The variables, as torchrun sets them. */
    public static final List<String> VARIABLES =
            List.of("MASTER_ADDR", "MASTER_PORT", "RANK", "WORLD_SIZE", "LOCAL_RANK");

    public LaunchEnv {
        if (masterAddr == null || masterAddr.isBlank())
            throw new IllegalArgumentException("MASTER_ADDR is empty; set it to rank 0's host");
        if (masterPort < 1 || masterPort > 65535)
            throw new IllegalArgumentException("MASTER_PORT must be 1..65535, got " + masterPort);
        if (worldSize < 1) throw new IllegalArgumentException("WORLD_SIZE must be >= 1, got " + worldSize);
        if (rank < 0 || rank >= worldSize)
            throw new IllegalArgumentException(
                    "RANK must be in 0.." + (worldSize - 1) + " for WORLD_SIZE=" + worldSize + ", got " + rank);
        if (localRank < 0) throw new IllegalArgumentException("LOCAL_RANK must be >= 0, got " + localRank);
    }

    /**
     * The launch from environment variables: empty when none of RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT is set
     * (a single-process run); an error naming the missing ones when only some are. LOCAL_RANK defaults to 0.
     */
    public static Optional<LaunchEnv> from(Map<String, String> env) {
        List<String> required = List.of("MASTER_ADDR", "MASTER_PORT", "RANK", "WORLD_SIZE");
        List<String> missing = new ArrayList<>();
        int present = 0;
        for (String v : required) {
            String s = env.get(v);
            if (s == null || s.isBlank()) missing.add(v);
            else present++;
        }
        if (present == 0) return Optional.empty();
        if (!missing.isEmpty()) {
            throw new IllegalArgumentException("multi-process launch needs " + String.join(", ", required) + " but "
                    + String.join(", ", missing) + (missing.size() == 1 ? " is" : " are")
                    + " not set (torchrun sets them; or set them by hand on every node)");
        }
        return Optional.of(new LaunchEnv(
                env.get("MASTER_ADDR").strip(),
                number(env, "MASTER_PORT"),
                number(env, "RANK"),
                number(env, "WORLD_SIZE"),
                env.containsKey("LOCAL_RANK") && !env.get("LOCAL_RANK").isBlank() ? number(env, "LOCAL_RANK") : 0));
    }

    private static int number(Map<String, String> env, String key) {
        try {
            return Integer.parseInt(env.get(key).strip());
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException(key + " must be an integer, got '" + env.get(key) + "'");
        }
    }

    /** {@code host:port}. */
    public String master() {
        return masterAddr + ":" + masterPort;
    }
}
