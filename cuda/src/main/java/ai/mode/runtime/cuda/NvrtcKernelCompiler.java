package ai.mode.runtime.cuda;

import ai.mode.bindings.NativeLibraries;
import ai.mode.bindings.Nvrtc;
import ai.mode.kernels.KernelResources;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Compiles the kernel sources embedded in {@code mode-kernels} with NVRTC, for a GPU whose architecture the
 * shipped fatbins do not cover (or whose driver cannot JIT their PTX). Needs no GPU: the target is chosen
 * from the compute capability. Results are cached on disk, keyed by NVRTC version, target, options and the
 * exact source text, so a restart loads instead of recompiling.
 *
 * <p>Target choice: a CUBIN for {@code sm_<cc>} when this NVRTC supports that architecture (no driver JIT
 * involved, so an older driver can load it); else PTX for the highest supported {@code compute_XY <= cc},
 * which the driver JIT-compiles.
 */
public final class NvrtcKernelCompiler {
    private static final System.Logger LOG = System.getLogger(NvrtcKernelCompiler.class.getName());

    /** Preprocessor symbol defined for NVRTC builds, so sources can skip host-only includes. */
    public static final String NVRTC_DEFINE = "-DMODE_NVRTC=1";

    /**
     * A compiled module image.
     *
     * @param bytes  CUBIN, or PTX text (for {@code cuModuleLoadData}, which needs it NUL-terminated: the loader adds it)
     * @param target {@code sm_XY} (CUBIN) or {@code compute_XY} (PTX)
     * @param cached whether it came from the disk cache
     */
    public record Image(byte[] bytes, String target, boolean cached) {
        public boolean isCubin() {
            return target.startsWith("sm_");
        }
    }

    private final Nvrtc nvrtc;
    private final Path cacheDir;

    /** @param cacheDir where compiled images are kept; null disables the disk cache */
    public NvrtcKernelCompiler(Nvrtc nvrtc, Path cacheDir) {
        this.nvrtc = nvrtc;
        this.cacheDir = cacheDir;
    }

    /** A compiler over the process's NVRTC with the default cache ({@code ~/.cache/mode-j/nvrtc-cache}). */
    public static NvrtcKernelCompiler standard() {
        return new NvrtcKernelCompiler(
                Nvrtc.get(), NativeLibraries.defaultCacheDir().resolveSibling("nvrtc-cache"));
    }

    /** The NVRTC target for compute capability {@code cc} ({@code major*10+minor}) given the supported {@code sm} list. */
    public static String target(int cc, int[] supportedArchs) {
        if (Arrays.stream(supportedArchs).anyMatch(a -> a == cc)) return "sm_" + cc;
        int best = Arrays.stream(supportedArchs).filter(a -> a <= cc).max().orElse(-1);
        if (best < 0) {
            throw new IllegalStateException("NVRTC supports no architecture at or below sm_" + cc + " (it supports "
                    + Arrays.toString(supportedArchs) + "); use an NVRTC that matches this GPU");
        }
        return "compute_" + best;
    }

    /** The options used for {@code target}: architecture, C++17, {@link #NVRTC_DEFINE}, CUDA include directories. */
    public List<String> options(String target) {
        List<String> out = new ArrayList<>(List.of("--gpu-architecture=" + target, "-std=c++17", NVRTC_DEFINE));
        out.addAll(nvrtc.includeOptions());
        return out;
    }

    /** The embedded shared headers, under their plain name and {@code include/<name>}. */
    static Map<String, String> headers() {
        Map<String, String> out = new LinkedHashMap<>();
        for (String name : KernelResources.headerNames()) {
            String text = KernelResources.header(name);
            out.put(name, text);
            out.put("include/" + name, text);
        }
        return out;
    }

    /** Compiles (or loads from the cache) module {@code module} for compute capability {@code cc}. */
    public Image compile(String module, int cc) {
        return compile(module, target(cc, nvrtc.supportedArchs()));
    }

    /** Compiles (or loads from the cache) module {@code module} for {@code target} ({@code sm_XY} or {@code compute_XY}). */
    public Image compile(String module, String target) {
        String source = KernelResources.source(module);
        Map<String, String> headers = headers();
        List<String> options = options(target);
        Path cached = cacheDir == null
                ? null
                : cacheDir.resolve(module.replace('/', '_') + "-" + target + "-" + key(source, headers, options)
                        + (target.startsWith("sm_") ? ".cubin" : ".ptx"));
        if (cached != null && Files.isRegularFile(cached)) {
            try {
                return new Image(Files.readAllBytes(cached), target, true);
            } catch (IOException e) {
                LOG.log(System.Logger.Level.DEBUG, "unreadable NVRTC cache entry {0}: {1}", cached, e.getMessage());
            }
        }
        long start = System.nanoTime();
        Nvrtc.Compiled c = nvrtc.compile(source, module + ".cu", headers, options);
        byte[] image = target.startsWith("sm_") ? c.cubin() : c.ptx().getBytes(StandardCharsets.UTF_8);
        if (image == null) {
            throw new IllegalStateException("NVRTC returned no " + (target.startsWith("sm_") ? "CUBIN" : "PTX")
                    + " for kernel module " + module + " (" + target + ")");
        }
        LOG.log(
                System.Logger.Level.INFO,
                "compiled kernel module {0} for {1} with NVRTC in {2} ms",
                module,
                target,
                (System.nanoTime() - start) / 1_000_000);
        if (cached != null) store(cached, image);
        return new Image(image, target, false);
    }

    private String key(String source, Map<String, String> headers, List<String> options) {
        try {
            MessageDigest md = MessageDigest.getInstance("SHA-256");
            md.update(Arrays.toString(nvrtc.version()).getBytes(StandardCharsets.UTF_8));
            md.update(String.join("\u0000", options).getBytes(StandardCharsets.UTF_8));
            md.update(source.getBytes(StandardCharsets.UTF_8));
            for (Map.Entry<String, String> h : headers.entrySet()) {
                md.update(h.getKey().getBytes(StandardCharsets.UTF_8));
                md.update(h.getValue().getBytes(StandardCharsets.UTF_8));
            }
            return HexFormat.of().formatHex(md.digest(), 0, 8);
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("SHA-256 unavailable", e);
        }
    }

    private static void store(Path file, byte[] image) {
        try {
            Files.createDirectories(file.getParent());
            Path tmp = Files.createTempFile(file.getParent(), file.getFileName().toString(), ".part");
            Files.write(tmp, image);
            try {
                Files.move(tmp, file, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            } catch (AtomicMoveNotSupportedException e) {
                Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING);
            }
        } catch (IOException e) {
            LOG.log(System.Logger.Level.DEBUG, "could not cache NVRTC output in {0}: {1}", file, e.getMessage());
        }
    }
}
