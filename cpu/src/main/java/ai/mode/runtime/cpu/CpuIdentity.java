package ai.mode.runtime.cpu;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Set;

/**
 * Which CPU this is: vendor, model name and SIMD extensions, read once from {@code /proc/cpuinfo} (where absent,
 * an unknown CPU). The cpu backend picks its default GEMM provider by vendor ({@link CpuGemm}), and benchmarks
 * label every figure with {@link #describe()}.
 */
public record CpuIdentity(String vendor, String model, Set<String> flags) {
    /** {@code vendor_id} of Intel CPUs. */
    public static final String INTEL = "GenuineIntel";
    /** {@code vendor_id} of AMD CPUs. */
    public static final String AMD = "AuthenticAMD";

    private static final class Holder {
        static final CpuIdentity CURRENT = read(Path.of("/proc/cpuinfo"));
    }

    public CpuIdentity {
        flags = Set.copyOf(flags);
    }

    /** This machine's CPU. */
    public static CpuIdentity current() {
        return Holder.CURRENT;
    }

    /** The CPU described by a cpuinfo file; unknown when it cannot be read. */
    static CpuIdentity read(Path cpuinfo) {
        try {
            return parse(Files.readAllLines(cpuinfo));
        } catch (IOException | RuntimeException e) {
            return new CpuIdentity("unknown", System.getProperty("os.arch", "unknown"), Set.of());
        }
    }

    /** The first processor's {@code vendor_id}, {@code model name} and {@code flags} lines of a cpuinfo text. */
    public static CpuIdentity parse(List<String> lines) {
        String vendor = "unknown", model = System.getProperty("os.arch", "unknown");
        Set<String> flags = Set.of();
        boolean haveVendor = false, haveModel = false, haveFlags = false;
        for (String line : lines) {
            int colon = line.indexOf(':');
            if (colon < 0) continue;
            String key = line.substring(0, colon).trim(),
                    value = line.substring(colon + 1).trim();
            if (!haveVendor && key.equals("vendor_id")) {
                vendor = value;
                haveVendor = true;
            } else if (!haveModel && key.equals("model name")) {
                model = value;
                haveModel = true;
            } else if (!haveFlags && key.equals("flags")) {
                flags = Set.of(value.split("\\s+"));
                haveFlags = true;
            }
        }
        return new CpuIdentity(vendor, model, flags);
    }

    /** Whether this is an Intel CPU. */
    public boolean intel() {
        return INTEL.equals(vendor);
    }

    /** The widest x86 SIMD extension the CPU has: {@code AVX-512}, {@code AVX2}, {@code AVX} or {@code SSE}/other. */
    public String isa() {
        if (flags.contains("avx512f")) return "AVX-512";
        if (flags.contains("avx2") && flags.contains("fma")) return "AVX2";
        if (flags.contains("avx")) return "AVX";
        return flags.isEmpty() ? "unknown ISA" : "SSE";
    }

    /** E.g. {@code AMD EPYC (AuthenticAMD, AVX-512)}. */
    public String describe() {
        return model + " (" + vendor + ", " + isa() + ")";
    }
}
