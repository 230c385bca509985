package ai.mode.runtime;

import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;

/**
 * Which backend to open, on which device, with which settings: the one argument of
 * {@link BackendProvider#create(BackendSpec)}. Backends read nothing else; system properties and environment
 * variables are read only by {@link #fromEnvironment}, which the CLI (and {@link Backends#create(String, int)})
 * call at the edge.
 *
 * @param backend the provider's name: {@code cpu}, {@code cuda}, {@code emu}, or an outside backend's
 * @param ordinal the device index: for {@code cuda} the GPU as the driver numbers them (after
 *     {@code CUDA_VISIBLE_DEVICES}); for {@code cpu} it only names a logical device of a multi-device placement (all
 *     share the machine); for {@code emu} each ordinal is its own emulator instance
 * @param threads worker threads of the {@code cpu} backend, {@code <= 0} for one per available core; device
 *     backends ignore it
 * @param options backend-specific settings by name (each provider rejects names it does not know, listing its own):
 *     {@code cpu} takes {@code gemm} ({@code auto|vector|mkl}) and {@code vector} ({@code true|false});
 *     {@code cuda} takes {@code gemm} ({@code cublaslt|kernel}), {@code kernels} ({@code fatbin|nvrtc}) and
 *     {@code tf32} ({@code false|true}); {@code emu} takes none
 */
public record BackendSpec(String backend, int ordinal, int threads, Map<String, String> options) {
    /** {@code cpu} option: which SGEMM the {@code gemm} op runs ({@code auto}, {@code vector} or {@code mkl}). */
    public static final String CPU_GEMM = "gemm";

    /** {@code cpu} option: {@code false} runs the scalar kernels instead of the Vector API ones. */
    public static final String CPU_VECTOR = "vector";

    public BackendSpec {
        Objects.requireNonNull(backend, "backend");
        if (backend.isBlank()) throw new IllegalArgumentException("backend name is empty; give cpu, cuda or emu");
        if (ordinal < 0) {
            throw new IllegalArgumentException(
                    "device ordinal must be >= 0, got " + ordinal + " (backend " + backend + ")");
        }
        options = Map.copyOf(options);
    }

    /** Device 0 of {@code backend}, with {@code threads} and no options. */
    public static BackendSpec of(String backend, int threads) {
        return new BackendSpec(backend, 0, threads, Map.of());
    }

    /** This spec on device {@code ordinal}. */
    public BackendSpec withOrdinal(int ordinal) {
        return new BackendSpec(backend, ordinal, threads, options);
    }

    /** This spec with option {@code name} set to {@code value} (replacing an earlier value). */
    public BackendSpec withOption(String name, String value) {
        Map<String, String> o = new TreeMap<>(options);
        o.put(name, value);
        return new BackendSpec(backend, ordinal, threads, o);
    }

    /** The value of option {@code name}, if set. */
    public Optional<String> option(String name) {
        return Optional.ofNullable(options.get(name));
    }

    /**
     * For providers: throws, naming the option and the known ones, when an option is not in {@code known}, so a typo
     * is an error rather than a silently ignored setting.
     */
    public void requireOnlyOptions(Set<String> known) {
        for (String name : new TreeSet<>(options.keySet())) {
            if (!known.contains(name)) {
                throw new IllegalArgumentException("backend '" + backend + "' has no option '" + name + "'; "
                        + (known.isEmpty()
                                ? "it takes none"
                                : "its options are " + String.join(", ", new TreeSet<>(known))));
            }
        }
    }

    /**
     * The spec the command line means by {@code --backend NAME --threads N}: device 0 and no options, except what these
     * system properties (or, where named, environment variables) set, the only ones the runtime reads:
     *
     * <table>
     *   <caption>What {@code fromEnvironment} reads</caption>
     *   <tr><th>backend</th><th>sets</th><th>property</th><th>else environment</th></tr>
     *   <tr><td>cpu</td><td>option {@code gemm}</td><td>{@code mode.cpu.gemm}</td><td>{@code MODE_CPU_GEMM}</td></tr>
     *   <tr><td>cpu</td><td>option {@code vector}</td><td>{@code mode.cpu.vector}</td><td></td></tr>
     *   <tr><td>cuda</td><td>ordinal</td><td>{@code mode.cuda.device}</td><td>{@code MODE_CUDA_DEVICE}, else
     *       {@code LOCAL_RANK} (one process per GPU, as torchrun starts them)</td></tr>
     *   <tr><td>cuda</td><td>option {@code gemm}</td><td>{@code mode.cuda.gemm}</td><td></td></tr>
     *   <tr><td>cuda</td><td>option {@code kernels}</td><td>{@code mode.cuda.kernels}</td><td></td></tr>
     *   <tr><td>cuda</td><td>option {@code tf32}</td><td>{@code mode.cuda.tf32}</td><td></td></tr>
     * </table>
     */
    public static BackendSpec fromEnvironment(String backend, int threads) {
        BackendSpec spec = of(backend, threads);
        switch (backend) {
            case "cpu" -> {
                String gemm = firstSet(System.getProperty("mode.cpu.gemm"), System.getenv("MODE_CPU_GEMM"));
                if (gemm != null) spec = spec.withOption(CPU_GEMM, gemm);
                String vector = firstSet(System.getProperty("mode.cpu.vector"));
                if (vector != null) spec = spec.withOption(CPU_VECTOR, vector);
            }
            case "cuda" -> {
                String ordinal = firstSet(
                        System.getProperty("mode.cuda.device"),
                        System.getenv("MODE_CUDA_DEVICE"),
                        System.getenv("LOCAL_RANK"));
                if (ordinal != null) spec = spec.withOrdinal(parseOrdinal(ordinal));
                for (String option : new String[] {"gemm", "kernels", "tf32"}) {
                    String v = firstSet(System.getProperty("mode.cuda." + option));
                    if (v != null) spec = spec.withOption(option, v);
                }
            }
            default -> {}
        }
        return spec;
    }

    private static int parseOrdinal(String v) {
        try {
            return Integer.parseInt(v.strip());
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("CUDA device ordinal must be an integer, got '" + v
                    + "' (from -Dmode.cuda.device, MODE_CUDA_DEVICE or LOCAL_RANK)");
        }
    }

    private static String firstSet(String... values) {
        for (String v : values) if (v != null && !v.isBlank()) return v;
        return null;
    }
}
