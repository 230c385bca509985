package ai.mode.bench;

import ai.mode.runtime.cpu.CpuIdentity;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.ZonedDateTime;
import java.time.format.DateTimeFormatter;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.TimeUnit;

/**
 * Facts about the machine and software a benchmark ran on, recorded with every result so numbers from different
 * machines or builds are never compared by accident. Reads CPU model, memory, OS, JDK and load from the running system
 * (Linux /proc where present).
 */
public final class MachineInfo {
    private MachineInfo() {}

    /** Key facts, in display order. */
    public static Map<String, String> collect() {
        Map<String, String> m = new LinkedHashMap<>();
        m.put("date", ZonedDateTime.now().format(DateTimeFormatter.ISO_OFFSET_DATE_TIME));
        m.put("cpu", CpuIdentity.current().describe());
        m.put("cores", String.valueOf(Runtime.getRuntime().availableProcessors()));
        memoryGiB().ifPresent(g -> m.put("memory", g));
        m.put("os", System.getProperty("os.name") + " " + System.getProperty("os.version"));
        m.put("jdk", System.getProperty("java.vm.name") + " " + System.getProperty("java.runtime.version"));
        m.put("vector", PeakProbes.lanes() * 32 + "-bit (" + PeakProbes.lanes() + " x float32)");
        gitCommit().ifPresent(c -> m.put("commit", c));
        return m;
    }

    static Optional<String> memoryGiB() {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/meminfo"))) {
                if (line.startsWith("MemTotal:")) {
                    long kb = Long.parseLong(line.replaceAll("[^0-9]", ""));
                    return Optional.of(String.format(java.util.Locale.ROOT, "%.1f GiB", kb / 1024.0 / 1024.0));
                }
            }
        } catch (IOException | RuntimeException e) {
            return Optional.empty();
        }
        return Optional.empty();
    }

    /** The 1-minute load average, or NaN where /proc/loadavg is absent. */
    public static double loadAverage() {
        try {
            return Double.parseDouble(
                    Files.readString(Path.of("/proc/loadavg")).trim().split("\\s+")[0]);
        } catch (IOException | RuntimeException e) {
            return Double.NaN;
        }
    }

    /** The short commit of the working tree we run from, with {@code +dirty} when it has changes. */
    static Optional<String> gitCommit() {
        try {
            String head = run(List.of("git", "rev-parse", "--short", "HEAD"));
            if (head.isEmpty()) return Optional.empty();
            String dirty = run(List.of("git", "status", "--porcelain", "--untracked-files=no"));
            return Optional.of(dirty.isEmpty() ? head : head + "+dirty");
        } catch (IOException e) {
            return Optional.empty();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return Optional.empty();
        }
    }

    private static String run(List<String> cmd) throws IOException, InterruptedException {
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes()).trim();
        if (!p.waitFor(10, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            return "";
        }
        return p.exitValue() == 0 ? out : "";
    }
}
