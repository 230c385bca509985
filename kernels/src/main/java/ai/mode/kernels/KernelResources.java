package ai.mode.kernels;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * Locates the kernel artefacts that the {@code mode-kernels} build embeds as classpath resources under
 * {@code /ai/mode/kernels/}:
 * <ul>
 *   <li>{@code entrypoints.txt}: one line per kernel, {@code <entry point> <module>}, always present;</li>
 *   <li>{@code src/<module>.cu} and {@code src/include/*.cuh}: the CUDA sources (for NVRTC), always present;</li>
 *   <li>{@code launch.properties}: each entry point's block size and the launch constants, always present
 *       (read by {@link KernelLaunch});</li>
 *   <li>{@code fatbin/<module>.fatbin}: SASS sm_80 + sm_90a and PTX compute_80, present when nvcc built them;</li>
 *   <li>{@code kernels.json}: per-kernel registers, shared memory and spills per architecture (nvcc builds only);</li>
 *   <li>{@code emu/libmode_emu.so}: the kernels compiled for the CPU emulator, present when g++ built it.</li>
 * </ul>
 * A module is one {@code .cu} file, named by its path below {@code src/main/cuda} without the extension,
 * e.g. {@code rmsnorm/rmsnorm}.
 */
public final class KernelResources {
    private static final String ROOT = "/ai/mode/kernels/";

    private static volatile Map<String, String> moduleOfEntryPoint;

    private KernelResources() {}

    /** Entry point name to module name, in file order; empty if the resources are missing. */
    public static Map<String, String> entryPoints() {
        Map<String, String> m = moduleOfEntryPoint;
        if (m == null) {
            Map<String, String> parsed = new LinkedHashMap<>();
            Optional<byte[]> bytes = resource("entrypoints.txt");
            if (bytes.isPresent()) {
                for (String line : new String(bytes.get(), StandardCharsets.UTF_8).split("\n")) {
                    String t = line.strip();
                    if (t.isEmpty() || t.startsWith("#")) continue;
                    String[] parts = t.split("\\s+");
                    if (parts.length != 2) {
                        throw new IllegalStateException(
                                "malformed line in " + ROOT + "entrypoints.txt: '" + t + "'; rebuild mode-kernels");
                    }
                    parsed.put(parts[0], parts[1]);
                }
            }
            m = Collections.unmodifiableMap(parsed);
            moduleOfEntryPoint = m;
        }
        return m;
    }

    /** The module that defines {@code entryPoint}, or throws naming the problem. */
    public static String moduleOf(String entryPoint) {
        String module = entryPoints().get(entryPoint);
        if (module == null) {
            if (entryPoints().isEmpty()) {
                throw new IllegalStateException("kernel resources not found on the classpath (" + ROOT
                        + "entrypoints.txt); put mode-kernels on the classpath");
            }
            throw new IllegalArgumentException("unknown kernel entry point '" + entryPoint + "'");
        }
        return module;
    }

    /** All module names, in a stable order. */
    public static List<String> modules() {
        List<String> out = new ArrayList<>();
        for (String m : entryPoints().values()) {
            if (!out.contains(m)) out.add(m);
        }
        return out;
    }

    /** The fatbin of a module, if nvcc built one. */
    public static Optional<byte[]> fatbin(String module) {
        return resource("fatbin/" + module + ".fatbin");
    }

    /** The CUDA source of a module (for NVRTC). */
    public static String source(String module) {
        return resource("src/" + module + ".cu")
                .map(b -> new String(b, StandardCharsets.UTF_8))
                .orElseThrow(() -> new IllegalStateException("kernel source " + ROOT + "src/" + module
                        + ".cu not found on the classpath; rebuild mode-kernels"));
    }

    /** Names of the shared headers under {@code src/include/} (e.g. {@code mode_common.cuh}). */
    public static List<String> headerNames() {
        return resource("src/include/headers.txt")
                .map(b -> List.of(new String(b, StandardCharsets.UTF_8).strip().split("\\s+")))
                .orElse(List.of());
    }

    /** A shared header's text, for NVRTC's header list. */
    public static String header(String name) {
        return resource("src/include/" + name)
                .map(b -> new String(b, StandardCharsets.UTF_8))
                .orElseThrow(() -> new IllegalStateException("kernel header " + name + " not found on the classpath"));
    }

    /** The JSON resource index (registers, shared memory, spills per kernel and arch), if nvcc built it. */
    public static Optional<String> indexJson() {
        return resource("kernels.json").map(b -> new String(b, StandardCharsets.UTF_8));
    }

    /** The emulator shared library built by g++, if present. */
    public static Optional<byte[]> emulatorLibrary() {
        return resource("emu/libmode_emu.so");
    }

    /** Any resource below {@code /ai/mode/kernels/}. */
    public static Optional<byte[]> resource(String relativePath) {
        try (InputStream in = KernelResources.class.getResourceAsStream(ROOT + relativePath)) {
            return in == null ? Optional.empty() : Optional.of(in.readAllBytes());
        } catch (IOException e) {
            throw new UncheckedIOException("reading kernel resource " + ROOT + relativePath, e);
        }
    }
}
