package ai.mode.tests.bindings;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import ai.mode.bindings.NativeLibraries;
import ai.mode.bindings.NativeLibraries.Library;
import ai.mode.bindings.NativeLibraryException;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.net.URL;
import java.net.URLClassLoader;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.jar.JarEntry;
import java.util.jar.JarOutputStream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Library discovery: missing libraries give one clear line naming the fix; system directories win over
 * carrier jars; carrier jars are extracted once to the cache (with NVRTC's builtins companion) and loaded.
 * Uses tiny shared libraries compiled here with g++ in place of the real CUDA libraries.
 */
class NativeLibrariesTest {
    @TempDir
    static Path tmp;

    private static Path fakeA;
    private static Path fakeB;

    @BeforeAll
    static void buildFakeLibraries() throws Exception {
        fakeA = compile("fake_a", "extern \"C\" int mode_fake_marker_a() { return 11; }");
        fakeB = compile("fake_b", "extern \"C\" int mode_fake_marker_b() { return 22; }");
    }

    private static Path compile(String name, String source) throws Exception {
        Path src = tmp.resolve(name + ".cpp");
        Path lib = tmp.resolve("lib" + name + ".so");
        Files.writeString(src, source);
        Process p;
        try {
            p = new ProcessBuilder(
                            "g++",
                            "-shared",
                            "-fPIC",
                            "-Wl,-soname,lib" + name + ".so",
                            "-o",
                            lib.toString(),
                            src.toString())
                    .redirectErrorStream(true)
                    .start();
        } catch (IOException e) {
            assumeTrue(false, "g++ is not installed; cannot build the fake libraries for discovery tests");
            return null;
        }
        String out = new String(p.getInputStream().readAllBytes());
        assertTrue(p.waitFor(60, TimeUnit.SECONDS), "g++ timed out");
        assertEquals(0, p.exitValue(), "g++ failed: " + out);
        return lib;
    }

    private static NativeLibraries discovery(List<Path> dirs, URL jar, Path cache) {
        ClassLoader cl = jar == null ? null : new URLClassLoader(new URL[] {jar}, null);
        return new NativeLibraries(dirs, false, cl, cache);
    }

    private static Path jar(String name, String... entriesAndFiles) throws IOException {
        return jarIn(NativeLibraries.carrierFolder(), name, entriesAndFiles);
    }

    private static Path jarIn(String folder, String name, String... entriesAndFiles) throws IOException {
        Path jar = tmp.resolve(name + ".jar");
        try (JarOutputStream out = new JarOutputStream(Files.newOutputStream(jar))) {
            for (int i = 0; i < entriesAndFiles.length; i += 2) {
                out.putNextEntry(new JarEntry(folder + entriesAndFiles[i]));
                Files.copy(Path.of(entriesAndFiles[i + 1]), out);
                out.closeEntry();
            }
        }
        return jar;
    }

    @Test
    void missingDriverIsOneLineNamingTheFix() throws IOException {
        Path empty = Files.createDirectories(tmp.resolve("empty"));
        NativeLibraries d = discovery(List.of(empty), null, tmp.resolve("cache0"));
        NativeLibraryException e = assertThrows(NativeLibraryException.class, () -> d.load(Library.CUDA_DRIVER));
        assertEquals("libcuda.so.1 / libcuda.so not found: no NVIDIA driver; use --backend cpu", e.getMessage());
        assertTrue(d.problem(Library.CUDA_DRIVER).isPresent());
        // the failure is cached and rethrown with the same line
        assertEquals(
                e.getMessage(),
                assertThrows(NativeLibraryException.class, () -> d.load(Library.CUDA_DRIVER))
                        .getMessage());
    }

    @Test
    void missingLibrariesNameTheirProfile() throws IOException {
        Path empty = Files.createDirectories(tmp.resolve("empty2"));
        NativeLibraries d = discovery(List.of(empty), null, tmp.resolve("cache1"));
        for (Library lib : List.of(Library.NVRTC, Library.CUBLASLT, Library.NCCL)) {
            String msg = assertThrows(NativeLibraryException.class, () -> d.load(lib))
                    .getMessage();
            assertFalse(msg.contains("\n"), "one line: " + msg);
            assertTrue(msg.startsWith(lib.sonames().getFirst()), msg);
            assertTrue(msg.contains(lib == Library.NVRTC ? "-Pcuda-redist" : "-Pcuda-libs"), msg);
        }
    }

    @Test
    void systemDirectoryWinsOverCarrierJar() throws IOException {
        Path sys = Files.createDirectories(tmp.resolve("sys"));
        Files.copy(fakeA, sys.resolve("libnccl.so.2"));
        Path jar = jar("carrier-nccl", "libnccl.so.2", fakeB.toString());
        NativeLibraries d =
                discovery(List.of(tmp.resolve("missing-dir"), sys), jar.toUri().toURL(), tmp.resolve("cache2"));
        NativeLibraries.Loaded l = d.load(Library.NCCL);
        assertEquals(sys.resolve("libnccl.so.2").toString(), l.origin());
        assertTrue(l.lookup().find("mode_fake_marker_a").isPresent());
        assertFalse(Files.exists(tmp.resolve("cache2")), "nothing extracted when the system has the library");
    }

    @Test
    void carrierJarIsExtractedOnceWithNvrtcBuiltins() throws IOException {
        Path jar = jar(
                "cuda-redist-test",
                "libnvrtc.so.13",
                fakeA.toString(),
                "libnvrtc-builtins.so.13.3",
                fakeB.toString(),
                "libunrelated.so.1",
                fakeB.toString());
        Path cache = tmp.resolve("cache3");
        NativeLibraries.Loaded l =
                discovery(List.of(), jar.toUri().toURL(), cache).load(Library.NVRTC);
        Path dir = cache.resolve("cuda-redist-test");
        assertEquals("libnvrtc.so.13", l.soname());
        assertTrue(l.origin().contains("cuda-redist-test.jar"), l.origin());
        MemorySegment sym = l.lookup().find("mode_fake_marker_a").orElseThrow();
        assertFalse(sym.equals(MemorySegment.NULL));
        assertEquals(Files.size(fakeA), Files.size(dir.resolve("libnvrtc.so.13")));
        assertEquals(Files.size(fakeB), Files.size(dir.resolve("libnvrtc-builtins.so.13.3")));
        assertFalse(Files.exists(dir.resolve("libunrelated.so.1")), "only the library and its companion are extracted");

        FileTime before = FileTime.fromMillis(1_000_000L);
        Files.setLastModifiedTime(dir.resolve("libnvrtc.so.13"), before);
        discovery(List.of(), jar.toUri().toURL(), cache).load(Library.NVRTC);
        assertEquals(
                before,
                Files.getLastModifiedTime(dir.resolve("libnvrtc.so.13")),
                "a cached copy of the right size is reused");
    }

    @Test
    void mklCarrierJarIsExtractedWithTheLibrariesItOpens() throws IOException {
        assertEquals(
                NativeLibraries.carrierFolder().replace("/cuda/", "/mkl/"), NativeLibraries.carrierFolder(Library.MKL));
        Path jar = jarIn(
                NativeLibraries.carrierFolder(Library.MKL),
                "mkl-redist-test",
                "libmkl_rt.so.2",
                fakeA.toString(),
                "libmkl_core.so.2",
                fakeB.toString(),
                "libiomp5.so",
                fakeB.toString(),
                "libmkl_vml_avx2.so.2",
                fakeB.toString(),
                "include/mkl.h",
                fakeB.toString());
        Path cache = tmp.resolve("cache-mkl");
        NativeLibraries.Loaded l =
                discovery(List.of(), jar.toUri().toURL(), cache).load(Library.MKL);
        Path dir = cache.resolve("mkl-redist-test");
        assertEquals("libmkl_rt.so.2", l.soname());
        assertTrue(l.lookup().find("mode_fake_marker_a").isPresent());
        assertFalse(l.lookup().find("mode_fake_marker_b").isPresent(), "the siblings are extracted, not loaded");
        assertEquals(Files.size(fakeB), Files.size(dir.resolve("libmkl_core.so.2")));
        assertEquals(Files.size(fakeB), Files.size(dir.resolve("libiomp5.so")));
        assertFalse(Files.exists(dir.resolve("libmkl_vml_avx2.so.2")), "vector math libraries are not needed");
        assertFalse(Files.exists(dir.resolve("include")), "nothing from sub-folders");
    }

    @Test
    void missingMklNamesTheDependencyAndTheFallback() throws IOException {
        Path empty = Files.createDirectories(tmp.resolve("empty-mkl"));
        String msg = assertThrows(
                        NativeLibraryException.class,
                        () -> discovery(List.of(empty), null, tmp.resolve("cache-mkl0"))
                                .load(Library.MKL))
                .getMessage();
        assertFalse(msg.contains("\n"), "one line: " + msg);
        assertTrue(msg.startsWith("libmkl_rt.so.2 not found: "), msg);
        assertTrue(msg.contains("org.bytedeco:mkl:") && msg.contains("-Dmode.cpu.gemm=vector"), msg);
    }

    @Test
    void truncatedCacheEntryIsReplaced() throws IOException {
        Path jar = jar("carrier-lt", "libcublasLt.so.12", fakeA.toString());
        Path cache = tmp.resolve("cache4");
        Path stale = Files.createDirectories(cache.resolve("carrier-lt")).resolve("libcublasLt.so.12");
        Files.write(stale, new byte[] {1, 2, 3});
        NativeLibraries.Loaded l =
                discovery(List.of(), jar.toUri().toURL(), cache).load(Library.CUBLASLT);
        assertEquals(Files.size(fakeA), Files.size(stale));
        assertTrue(l.lookup().find("mode_fake_marker_a").isPresent());
    }

    @Test
    void driverNeverComesFromACarrierJar() throws IOException {
        Path jar = jar("carrier-driver", "libcuda.so.1", fakeA.toString());
        NativeLibraries d = discovery(List.of(), jar.toUri().toURL(), tmp.resolve("cache5"));
        assertThrows(NativeLibraryException.class, () -> d.load(Library.CUDA_DRIVER));
    }

    @Test
    void defaultSearchSkipsDriverStubs() {
        List<Path> dirs = NativeLibraries.defaultSearchDirs();
        assertTrue(dirs.contains(Path.of("/usr/local/cuda/lib64")), dirs.toString());
        assertTrue(dirs.stream().noneMatch(p -> p.endsWith("stubs")), dirs.toString());
        assertTrue(
                dirs.indexOf(Path.of("/usr/local/cuda/lib64")) < dirs.indexOf(Path.of("/usr/lib64")),
                "CUDA installs are searched before the distribution's directories");
    }

    /** A fake wheel install: {@code site/nvidia/<pkg>/lib/<file>} holding a copy of {@code lib}. */
    private static Path wheelFile(Path site, String pkg, String file, Path lib) throws IOException {
        Path dir = Files.createDirectories(site.resolve("nvidia").resolve(pkg).resolve("lib"));
        return Files.copy(lib, dir.resolve(file));
    }

    @Test
    void pythonWheelLayoutOfTheVirtualEnvironmentOnPathIsSearched() throws IOException {
        Path venv = tmp.resolve("wheels-venv");
        Path bin = Files.createDirectories(venv.resolve("bin"));
        Path python = Files.writeString(bin.resolve("python3"), "#!/bin/sh\n");
        assertTrue(python.toFile().setExecutable(true));
        Path site = venv.resolve("lib").resolve("python3.12").resolve("site-packages");
        Path cublasLt = wheelFile(site, "cublas", "libcublasLt.so.13", fakeA);
        Path nccl = wheelFile(site, "nccl", "libnccl.so.2", fakeB);
        Path nvrtc = wheelFile(site, "cu13", "libnvrtc.so.13", fakeA);
        wheelFile(site, "cu13", "libnvrtc-builtins.so.13.0", fakeB);
        Files.createDirectories(site.resolve("nvidia/cuda_runtime/lib/stubs"));

        List<Path> dirs =
                NativeLibraries.pythonWheelLibraryDirs(Map.of("PATH", tmp.resolve("no-such-bin") + ":" + bin), null);
        assertTrue(dirs.contains(cublasLt.getParent()) && dirs.contains(nccl.getParent()), dirs.toString());
        assertTrue(dirs.stream().noneMatch(p -> p.endsWith("stubs")), dirs.toString());

        NativeLibraries d = discovery(dirs, null, tmp.resolve("cache-wheels"));
        assertEquals(cublasLt.toString(), d.load(Library.CUBLASLT).origin());
        assertTrue(d.load(Library.CUBLASLT).lookup().find("mode_fake_marker_a").isPresent());
        assertEquals(nccl.toString(), d.load(Library.NCCL).origin());
        assertEquals(nvrtc.toString(), d.load(Library.NVRTC).origin());
        NativeLibraryException e = assertThrows(NativeLibraryException.class, () -> d.load(Library.CUDA_DRIVER));
        assertTrue(e.getMessage().startsWith("libcuda.so.1 / libcuda.so not found"), e.getMessage());
    }

    @Test
    void explicitSitePackagesComeFirstAndReachTheDefaultSearch() throws IOException {
        Path first = tmp.resolve("site-first");
        Path second = tmp.resolve("site-second");
        Path winner = wheelFile(first, "nccl", "libnccl.so.2", fakeA);
        wheelFile(second, "nccl", "libnccl.so.2", fakeB);
        List<Path> dirs = NativeLibraries.pythonWheelLibraryDirs(
                Map.of("MODE_PYTHON_SITE", first.toString(), "PYTHONPATH", second.toString()), null);
        assertEquals(List.of(winner.getParent(), second.resolve("nvidia/nccl/lib")), dirs.subList(0, 2));
        NativeLibraries.Loaded l =
                discovery(dirs, null, tmp.resolve("cache-site")).load(Library.NCCL);
        assertTrue(l.lookup().find("mode_fake_marker_a").isPresent(), l.origin());

        String before = System.getProperty("mode.python.site");
        System.setProperty("mode.python.site", first.toString());
        try {
            List<Path> all = NativeLibraries.defaultSearchDirs();
            assertTrue(
                    all.indexOf(Path.of("/usr/lib64")) < all.indexOf(winner.getParent()),
                    "wheels come after the system's directories: " + all);
        } finally {
            if (before == null) System.clearProperty("mode.python.site");
            else System.setProperty("mode.python.site", before);
        }
    }
}
