package ai.mode.parallel.sched;

import ai.mode.bindings.Nccl;
import ai.mode.model.train.AdamW;
import ai.mode.parallel.comm.Communicator;
import ai.mode.parallel.comm.HubCommunicator;
import ai.mode.parallel.comm.NcclCommunicator;
import ai.mode.parallel.net.LaunchEnv;
import ai.mode.parallel.net.Rendezvous;
import ai.mode.parallel.place.DeviceId;
import ai.mode.parallel.place.DeviceSpec;
import ai.mode.parallel.place.Placement;
import ai.mode.runtime.Backend;
import ai.mode.runtime.Backends;
import ai.mode.runtime.cuda.CudaDevice;
import ai.mode.runtime.device.DeviceBackend;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Optional;

/**
 * Everything between command-line options and a running ParallelModeModel: the local devices and their backends, the
 * multi-process rendezvous (torchrun variables) when present, the world's device list, the placement, and the
 * communicator (NCCL for cuda devices when available, else the exchange hub). One process's share of a parallel run.
 * Close after the model.
 */
public final class ParallelLaunch implements AutoCloseable {
    /** Which communicator carries the traffic. */
    public enum Comm {
        /** NCCL when every device is cuda and NCCL loads, else the hub. */
        AUTO,
        /** The exchange hub: in-process, or over TCP to rank 0's process. */
        HUB,
        /** NCCL (cuda devices only). */
        NCCL;

        public static Comm parse(String s) {
            return switch (s.toLowerCase(Locale.ROOT)) {
                case "auto" -> AUTO;
                case "hub" -> HUB;
                case "nccl" -> NCCL;
                default -> throw new IllegalArgumentException("unknown --comm '" + s + "'; use auto, hub or nccl");
            };
        }
    }

    /**
     * @param localDevices      this process's devices
     * @param placement         single, data, mpmd or a custom spec (see {@link Placement#fromOption})
     * @param groups            groups of the mpmd preset
     * @param backboneDevices   devices of the mpmd backbone group (0 = half)
     * @param comm              communicator choice
     * @param cpuThreads        threads of each cpu device (0 = the cores split evenly over the local cpu devices)
     * @param commTimeout       longest wait for a peer in any collective
     * @param rendezvousTimeout longest wait for every process to join
     */
    public record Options(
            List<DeviceId> localDevices,
            String placement,
            int groups,
            int backboneDevices,
            Comm comm,
            int cpuThreads,
            Duration commTimeout,
            Duration rendezvousTimeout) {}

    private final Options options;
    private final Rendezvous.Joined joined;
    private final int firstRank;
    private final Placement placement;
    private final boolean nccl;
    private final Nccl.UniqueId ncclId;

    private ParallelLaunch(
            Options o, Rendezvous.Joined joined, int firstRank, Placement placement, boolean nccl, Nccl.UniqueId id) {
        this.options = o;
        this.joined = joined;
        this.firstRank = firstRank;
        this.placement = placement;
        this.nccl = nccl;
        this.ncclId = id;
    }

    /** Joins the other processes when {@code env} is present, and lays out the model's blocks and experts. */
    public static ParallelLaunch start(Options o, Optional<LaunchEnv> env, int numBlocks, int numExperts) {
        List<DeviceId> local = o.localDevices();
        if (local.isEmpty()) throw new IllegalArgumentException("no devices given; use e.g. --devices cpu:0-1");
        String kind = local.get(0).kind();
        boolean allCuda = local.stream().allMatch(d -> d.kind().equals("cuda"));
        boolean nccl = switch (o.comm()) {
            case HUB -> false;
            case NCCL -> {
                if (!allCuda)
                    throw new IllegalArgumentException(
                            "--comm nccl needs cuda devices, got " + DeviceSpec.format(local) + "; use --comm hub");
                Optional<String> why = Nccl.unavailableReason();
                if (why.isPresent()) throw new IllegalStateException("--comm nccl: " + why.get());
                yield true;
            }
            case AUTO -> allCuda && Nccl.unavailableReason().isEmpty();
        };
        Rendezvous.Joined joined = null;
        int first = 0, world = local.size();
        Nccl.UniqueId id = null;
        if (env.isPresent()) {
            if (local.stream().anyMatch(d -> !d.kind().equals(kind))) {
                throw new IllegalArgumentException(
                        "a multi-process run needs one device kind per process, got " + DeviceSpec.format(local));
            }
            joined = Rendezvous.join(
                    env.get(),
                    local.size(),
                    o.rendezvousTimeout(),
                    () -> nccl ? Nccl.get().uniqueId().bytes() : new byte[0]);
            first = joined.firstRank();
            world = joined.worldSize();
            if (nccl) id = new Nccl.UniqueId(joined.payload());
        } else if (nccl) {
            id = Nccl.get().uniqueId();
        }
        List<DeviceId> worldDevices = new ArrayList<>();
        if (joined == null) {
            worldDevices.addAll(local);
        } else {
            // across processes, devices are named by world rank (cuda:0-7 over two nodes of four GPUs each)
            for (int r = 0; r < world; r++) worldDevices.add(new DeviceId(kind, r));
        }
        try {
            Placement p = Placement.fromOption(
                    o.placement(), worldDevices, numBlocks, numExperts, o.groups(), o.backboneDevices());
            return new ParallelLaunch(o, joined, first, p, nccl, id);
        } catch (RuntimeException e) {
            if (joined != null) joined.close();
            throw e;
        }
    }

    public Placement placement() {
        return placement;
    }

    /** Whether this process holds world rank 0 (it reports and writes the outputs). */
    public boolean leader() {
        return firstRank == 0;
    }

    /** World ranks of this process. */
    public int firstRank() {
        return firstRank;
    }

    /** {@code nccl} or {@code hub} (in-process / tcp). */
    public String communicator() {
        return nccl ? "nccl" : joined == null ? "hub (in-process)" : "hub (tcp via rank 0)";
    }

    /** Opens this process's devices and builds its ranks of the model. */
    public ParallelModeModel model(ModelSnapshot snap, AdamW.Config adamw) {
        List<Backend> backends = new ArrayList<>();
        try {
            long cpus = options.localDevices().stream()
                    .filter(d -> d.kind().equals("cpu"))
                    .count();
            int threads = options.cpuThreads() > 0
                    ? options.cpuThreads()
                    : (int) Math.max(1, Runtime.getRuntime().availableProcessors() / Math.max(1, cpus));
            for (DeviceId d : options.localDevices()) backends.add(open(d, threads));
        } catch (RuntimeException e) {
            backends.forEach(Backend::close);
            throw e;
        }
        List<Integer> all = new ArrayList<>();
        for (int r = 0; r < placement.worldSize(); r++) all.add(r);
        if (nccl) {
            return ParallelModeModel.create(
                    placement,
                    firstRank,
                    backends,
                    (rank, be) -> NcclCommunicator.initRank(be, ncclId, rank, all, "world"),
                    snap,
                    adamw);
        }
        if (joined == null) return ParallelModeModel.inProcess(placement, backends, snap, adamw, options.commTimeout());
        return ParallelModeModel.create(
                placement,
                firstRank,
                backends,
                (rank, be) -> (Communicator)
                        new HubCommunicator(joined.transport(), "world", rank, all, be, options.commTimeout()),
                snap,
                adamw);
    }

    /** A backend on one device: cpu (with {@code threads}), emu, or the cuda GPU of that ordinal. */
    public static Backend open(DeviceId d, int threads) {
        return switch (d.kind()) {
            case "cpu" -> Backends.create("cpu", threads);
            case "emu" -> Backends.create("emu", 0);
            case "cuda" -> {
                Backends.providers().stream()
                        .filter(p -> p.name().equals("cuda") && !p.available())
                        .findFirst()
                        .ifPresent(p -> {
                            throw new IllegalStateException("device " + d + " is not usable: " + p.unavailableReason());
                        });
                yield new DeviceBackend(CudaDevice.open(d.ordinal()), "cuda");
            }
            default -> throw new IllegalArgumentException("unknown device kind " + d.kind());
        };
    }

    @Override
    public void close() {
        if (joined != null) joined.close();
    }
}
