package ai.mode.bench;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * JNI leg of the native-call overhead comparison: a tiny C shim (resource jni_shim.c) compiled with the system C
 * compiler at first use, which calls a function pointer obtained through FFM. Native methods implemented by
 * {@code jni_shim.c}; call {@link #load()} first.
 */
public final class JniShim {
    private static volatile boolean loaded;

    private JniShim() {}

    /** Calls {@code int fn(void)}. */
    public static native int callInt(long fn);

    /** Calls {@code float fn(int n, const float* x, 1, const float* y, 1)} (cblas_sdot's signature). */
    public static native float callSdot(long fn, int n, long x, long y);

    /** Compiles the shim with {@code cc} into a temporary folder (once per JVM) and loads it. */
    public static synchronized void load() {
        if (loaded) return;
        Path javaHome = Path.of(System.getProperty("java.home"));
        Path include = javaHome.resolve("include");
        if (!Files.isRegularFile(include.resolve("jni.h"))) {
            throw new IllegalStateException("no jni.h under " + include + "; run the JNI benchmark on a full JDK");
        }
        try {
            Path dir = Files.createTempDirectory("mode-jni-shim");
            Path src = dir.resolve("jni_shim.c"), lib = dir.resolve("libmodejnishim.so");
            try (InputStream in = JniShim.class.getResourceAsStream("/ai/mode/bench/jni_shim.c")) {
                if (in == null) throw new IllegalStateException("jni_shim.c is missing from the classpath");
                Files.write(src, in.readAllBytes());
            }
            List<String> cmd = List.of(
                    "cc",
                    "-O2",
                    "-shared",
                    "-fPIC",
                    "-I" + include,
                    "-I" + include.resolve("linux"),
                    "-o",
                    lib.toString(),
                    src.toString());
            Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
            String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            if (!p.waitFor(60, TimeUnit.SECONDS) || p.exitValue() != 0) {
                throw new IllegalStateException(
                        "compiling the JNI shim failed (" + String.join(" ", cmd) + "): " + out.strip());
            }
            System.load(lib.toString());
            loaded = true;
        } catch (IOException e) {
            throw new IllegalStateException(
                    "cannot build the JNI shim (is a C compiler 'cc' installed? apt-get install gcc): "
                            + e.getMessage(),
                    e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while compiling the JNI shim", e);
        }
    }
}
