package ai.mode.bindings;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.lang.foreign.Arena;
import java.lang.foreign.SymbolLookup;
import java.net.JarURLConnection;
import java.net.URISyntaxException;
import java.net.URL;
import java.net.URLConnection;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.EnumMap;
import java.util.Enumeration;
import java.util.HashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.jar.JarEntry;
import java.util.jar.JarFile;

/**
 * Finds and loads the native libraries that the bindings call through FFM: the CUDA libraries and, for the
 * cpu backend's optional vendor SGEMM, oneMKL.
 *
 * <p>Order, per library and per candidate soname (newest major first):
 * <ol>
 *   <li>the system: directories from {@code -Dmode.native.path} / {@code MODE_NATIVE_PATH},
 *       {@code LD_LIBRARY_PATH}, {@code CUDA_HOME}/{@code CUDA_PATH}, {@code /usr/local/cuda*}
 *       ({@code lib64} and {@code targets/*}{@code /lib}), NCCL installs ({@code NCCL_HOME},
 *       {@code /usr/local/nccl*}, {@code /opt/nccl*}), {@code MKLROOT}, the distribution's library directories,
 *       then the {@code site-packages/nvidia/*}{@code /lib} folders of NVIDIA's Python wheels (see
 *       {@link #pythonWheelLibraryDirs}) ({@code stubs} directories are skipped: the driver stub cannot run
 *       anything);</li>
 *   <li>the system loader ({@code dlopen} by soname, which also reads the {@code ld.so} cache);</li>
 *   <li>bytedeco carrier jars on the classpath ({@code org/bytedeco/cuda|mkl/<platform>/<soname>}): the
 *       {@code .so} files are extracted to a cache directory and loaded from there. bytedeco's Java classes
 *       are never loaded (they need {@code libcuda.so.1} even to initialise).</li>
 * </ol>
 * A library that cannot be found gives one line naming it and the fix, e.g.
 * {@code libcuda.so.1 not found: no NVIDIA driver; use --backend cpu}.
 *
 * <p>NVRTC dlopens {@code libnvrtc-builtins.so.<major>.<minor>} by soname at compile time; when NVRTC is
 * loaded from a directory, the builtins library found beside it is loaded first so that the lookup succeeds.
 *
 * <p>Libraries are loaded into the global arena (they stay loaded for the life of the JVM); results,
 * failures included, are cached per instance.
 */
@SuppressWarnings("restricted")
public final class NativeLibraries {
    private static final System.Logger LOG = System.getLogger(NativeLibraries.class.getName());

    /** The libraries the bindings use, with the sonames tried (newest first) and the fix when missing. */
    public enum Library {
        CUDA_DRIVER(
                "the CUDA driver", List.of("libcuda.so.1", "libcuda.so"), false, "no NVIDIA driver; use --backend cpu"),
        NVRTC(
                "NVRTC",
                List.of("libnvrtc.so.13", "libnvrtc.so.12"),
                true,
                "NVRTC compiles kernels at run time; install the CUDA toolkit or build with -Pcuda-redist"),
        CUBLASLT(
                "cuBLASLt",
                List.of("libcublasLt.so.13", "libcublasLt.so.12"),
                true,
                "install the CUDA toolkit's cuBLAS or build with -Pcuda-libs"),
        NCCL("NCCL", List.of("libnccl.so.2"), true, "install NCCL (libnccl2) or build with -Pcuda-libs"),
        /**
         * Intel oneMKL's single dynamic library, the cpu backend's optional vendor SGEMM. It dlopens its threading
         * and per-ISA kernel libraries from its own directory, so those are extracted beside it (never loaded here).
         */
        MKL(
                "oneMKL",
                List.of("libmkl_rt.so.2"),
                true,
                "put org.bytedeco:mkl:2025.3-1.5.13:linux-x86_64-redist on the classpath or install oneMKL "
                        + "(MKLROOT, or Debian's libmkl-rt); or use -Dmode.cpu.gemm=vector");

        private final String description;
        private final List<String> sonames;
        private final boolean carried;
        private final String fix;

        Library(String description, List<String> sonames, boolean carried, String fix) {
            this.description = description;
            this.sonames = sonames;
            this.carried = carried;
            this.fix = fix;
        }

        /** Human name, e.g. {@code NVRTC}. */
        public String description() {
            return description;
        }

        /** Sonames tried, newest first. */
        public List<String> sonames() {
            return sonames;
        }

        /** Whether bytedeco's carrier jars can supply it (the driver never comes from a jar). */
        public boolean carried() {
            return carried;
        }

        /** The one-line fix shown when the library is missing. */
        public String fix() {
            return fix;
        }

        /**
         * File-name prefix of a library that must be loaded before {@code soname} from the same directory,
         * or null: NVRTC's builtins ({@code libnvrtc-builtins.so.13.} for {@code libnvrtc.so.13}).
         */
        String companionPrefix(String soname) {
            if (this != NVRTC) return null;
            String major = soname.substring(soname.lastIndexOf('.') + 1);
            return "libnvrtc-builtins.so." + major + ".";
        }

        /**
         * File-name prefixes of libraries that {@code soname} opens itself from its own directory, so a carrier
         * jar's copies are extracted beside it but not loaded: oneMKL's core, LP64 interface, Intel threading
         * layer with its OpenMP runtime, and the per-ISA kernels it picks from at run time.
         */
        List<String> siblingPrefixes() {
            if (this != MKL) return List.of();
            return List.of(
                    "libmkl_core.",
                    "libmkl_intel_lp64.",
                    "libmkl_intel_thread.",
                    "libiomp5.",
                    "libmkl_avx512.",
                    "libmkl_avx2.",
                    "libmkl_mc3.",
                    "libmkl_def.");
        }

        /** The bytedeco project whose carrier jars hold it: {@code cuda} or {@code mkl}. */
        String carrierProject() {
            return this == MKL ? "mkl" : "cuda";
        }
    }

    /**
     * A loaded library.
     *
     * @param soname the soname that was loaded, e.g. {@code libnvrtc.so.13}
     * @param origin where it came from: a file path, {@code system loader}, or {@code <jar> -> <file>}
     */
    public record Loaded(Library library, String soname, String origin, SymbolLookup lookup) {}

    private static volatile NativeLibraries system;

    private final List<Path> searchDirs;
    private final boolean useSystemLoader;
    private final ClassLoader carrierLoader;
    private final Path cacheDir;
    private final Map<Library, Object> results = new EnumMap<>(Library.class);

    /**
     * A discovery with an explicit search: {@code searchDirs} scanned in order, then (if
     * {@code useSystemLoader}) {@code dlopen} by soname, then carrier jars visible to {@code carrierLoader}
     * (null: none), extracted below {@code cacheDir}.
     */
    public NativeLibraries(List<Path> searchDirs, boolean useSystemLoader, ClassLoader carrierLoader, Path cacheDir) {
        this.searchDirs = List.copyOf(searchDirs);
        this.useSystemLoader = useSystemLoader;
        this.carrierLoader = carrierLoader;
        this.cacheDir = cacheDir;
    }

    /** The process-wide discovery with the default search order. */
    public static NativeLibraries system() {
        NativeLibraries s = system;
        if (s == null) {
            synchronized (NativeLibraries.class) {
                s = system;
                if (s == null) {
                    ClassLoader cl = Thread.currentThread().getContextClassLoader();
                    if (cl == null) cl = NativeLibraries.class.getClassLoader();
                    s = new NativeLibraries(defaultSearchDirs(), true, cl, defaultCacheDir());
                    system = s;
                }
            }
        }
        return s;
    }

    /** Loads {@code library} (cached), or throws a one-line {@link NativeLibraryException}. */
    public synchronized Loaded load(Library library) {
        Object r = results.get(library);
        if (r == null) {
            try {
                r = find(library);
            } catch (NativeLibraryException e) {
                r = e;
            }
            results.put(library, r);
        }
        if (r instanceof NativeLibraryException e) {
            throw new NativeLibraryException(e.getMessage(), e);
        }
        return (Loaded) r;
    }

    /** Empty if {@code library} loads, else the one-line reason. */
    public Optional<String> problem(Library library) {
        try {
            load(library);
            return Optional.empty();
        } catch (NativeLibraryException e) {
            return Optional.of(e.getMessage());
        }
    }

    /** The directories scanned, in order (existing or not). */
    public List<Path> searchDirs() {
        return searchDirs;
    }

    private Loaded find(Library library) {
        if (!isLinux()) {
            throw new NativeLibraryException(library.sonames().getFirst() + " not available: MoDE-J loads native "
                    + "libraries on Linux only (os.name=" + System.getProperty("os.name") + "); "
                    + (library == Library.MKL ? "use -Dmode.cpu.gemm=vector" : "use --backend cpu"));
        }
        List<String> failures = new ArrayList<>();
        for (String soname : library.sonames()) {
            for (Path dir : searchDirs) {
                Path file = dir.resolve(soname);
                if (Files.isRegularFile(file)) {
                    Optional<Loaded> l = loadFromDirectory(library, dir, soname, file.toString(), failures);
                    if (l.isPresent()) return l.get();
                }
            }
            if (useSystemLoader) {
                try {
                    SymbolLookup lookup = SymbolLookup.libraryLookup(soname, Arena.global());
                    LOG.log(System.Logger.Level.DEBUG, "loaded {0} through the system loader", soname);
                    return new Loaded(library, soname, "system loader", lookup);
                } catch (IllegalArgumentException e) {
                    // not known to the dynamic loader either; try the next candidate
                }
            }
        }
        if (library.carried() && carrierLoader != null) {
            for (String soname : library.sonames()) {
                Optional<Loaded> l = fromCarrierJars(library, soname, failures);
                if (l.isPresent()) return l.get();
            }
        }
        String names = String.join(" / ", library.sonames());
        String detail = failures.isEmpty() ? "" : " (" + String.join("; ", failures) + ")";
        throw new NativeLibraryException(names + " not found: " + library.fix() + detail);
    }

    private Optional<Loaded> loadFromDirectory(
            Library library, Path dir, String soname, String origin, List<String> failures) {
        String companion = library.companionPrefix(soname);
        try {
            if (companion != null) {
                Optional<Path> c = newestWithPrefix(dir, companion);
                if (c.isPresent()) {
                    SymbolLookup.libraryLookup(c.get(), Arena.global());
                } else {
                    LOG.log(System.Logger.Level.DEBUG, "no {0}* beside {1}", companion, dir.resolve(soname));
                }
            }
            SymbolLookup lookup = SymbolLookup.libraryLookup(dir.resolve(soname), Arena.global());
            LOG.log(System.Logger.Level.DEBUG, "loaded {0} from {1}", soname, origin);
            return Optional.of(new Loaded(library, soname, origin, lookup));
        } catch (IllegalArgumentException e) {
            failures.add(dir.resolve(soname) + " failed to load");
            return Optional.empty();
        }
    }

    private static Optional<Path> newestWithPrefix(Path dir, String prefix) {
        List<Path> found = new ArrayList<>();
        try (DirectoryStream<Path> ds = Files.newDirectoryStream(dir, prefix + "*")) {
            ds.forEach(found::add);
        } catch (IOException e) {
            return Optional.empty();
        }
        return found.stream()
                .filter(Files::isRegularFile)
                .max(Comparator.comparing(p -> p.getFileName().toString(), NativeLibraries::compareVersions));
    }

    // ---------------------------------------------------------------- carrier jars

    /** Resource folder of bytedeco's CUDA carrier jars for this platform, e.g. {@code org/bytedeco/cuda/linux-x86_64/}. */
    public static String carrierFolder() {
        return carrierFolder(Library.CUDA_DRIVER);
    }

    /** Resource folder of the carrier jars of {@code library}, e.g. {@code org/bytedeco/mkl/linux-x86_64/}. */
    public static String carrierFolder(Library library) {
        return "org/bytedeco/" + library.carrierProject() + "/" + bytedecoPlatform() + "/";
    }

    private Optional<Loaded> fromCarrierJars(Library library, String soname, List<String> failures) {
        Enumeration<URL> urls;
        try {
            urls = carrierLoader.getResources(carrierFolder(library) + soname);
        } catch (IOException e) {
            failures.add("classpath scan failed: " + e.getMessage());
            return Optional.empty();
        }
        while (urls.hasMoreElements()) {
            URL url = urls.nextElement();
            try {
                Path dir = materialize(url, library, soname);
                Optional<Loaded> l =
                        loadFromDirectory(library, dir, soname, url + " -> " + dir.resolve(soname), failures);
                if (l.isPresent()) return l;
            } catch (IOException | UncheckedIOException e) {
                failures.add("extracting " + soname + " from " + url + " failed: " + e.getMessage());
            }
        }
        return Optional.empty();
    }

    /** A directory holding {@code soname} (and its companion) from the resource at {@code url}. */
    private Path materialize(URL url, Library library, String soname) throws IOException {
        if ("file".equals(url.getProtocol())) {
            try {
                return Path.of(url.toURI()).getParent();
            } catch (URISyntaxException e) {
                throw new IOException("bad resource URL " + url, e);
            }
        }
        URLConnection conn = url.openConnection();
        if (!(conn instanceof JarURLConnection jarConn)) {
            throw new IOException("unsupported resource URL " + url);
        }
        jarConn.setUseCaches(false);
        try (JarFile jar = jarConn.getJarFile()) {
            String jarName = Path.of(jar.getName()).getFileName().toString().replaceFirst("\\.jar$", "");
            Path target = cacheDir.resolve(jarName);
            Files.createDirectories(target);
            String folder = carrierFolder(library);
            extract(jar, folder + soname, target.resolve(soname));
            List<String> prefixes = new ArrayList<>(library.siblingPrefixes());
            String companion = library.companionPrefix(soname);
            if (companion != null) prefixes.add(companion);
            Enumeration<JarEntry> entries = jar.entries();
            while (entries.hasMoreElements()) {
                JarEntry e = entries.nextElement();
                String name = e.getName();
                if (e.isDirectory() || !name.startsWith(folder) || name.indexOf('/', folder.length()) >= 0) continue;
                String file = name.substring(folder.length());
                if (prefixes.stream().anyMatch(file::startsWith)) extract(jar, name, target.resolve(file));
            }
            return target;
        }
    }

    /** Copies one jar entry to {@code file} unless a file of the same size is already there (atomic rename). */
    private static void extract(JarFile jar, String entryName, Path file) throws IOException {
        JarEntry entry = jar.getJarEntry(entryName);
        if (entry == null) throw new IOException(entryName + " not in " + jar.getName());
        if (Files.isRegularFile(file) && entry.getSize() >= 0 && Files.size(file) == entry.getSize()) return;
        long start = System.nanoTime();
        Path tmp = Files.createTempFile(file.getParent(), file.getFileName().toString(), ".part");
        try {
            try (InputStream in = jar.getInputStream(entry)) {
                Files.copy(in, tmp, StandardCopyOption.REPLACE_EXISTING);
            }
            try {
                Files.move(tmp, file, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            } catch (AtomicMoveNotSupportedException e) {
                Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING);
            }
        } finally {
            Files.deleteIfExists(tmp);
        }
        LOG.log(
                System.Logger.Level.INFO,
                "extracted {0} ({1} MB) to {2} in {3} ms",
                entryName,
                entry.getSize() >> 20,
                file,
                (System.nanoTime() - start) / 1_000_000);
    }

    // ---------------------------------------------------------------- defaults

    /** Where carrier jars are extracted: {@code -Dmode.native.cache}, {@code MODE_NATIVE_CACHE}, else {@code ~/.cache/mode-j/native}. */
    public static Path defaultCacheDir() {
        String p = System.getProperty("mode.native.cache", System.getenv("MODE_NATIVE_CACHE"));
        if (p != null && !p.isBlank()) return Path.of(p);
        String xdg = System.getenv("XDG_CACHE_HOME");
        Path base = xdg != null && !xdg.isBlank() ? Path.of(xdg) : Path.of(System.getProperty("user.home"), ".cache");
        return base.resolve("mode-j").resolve("native");
    }

    /** The system directories scanned, in order (see the class comment). */
    public static List<Path> defaultSearchDirs() {
        LinkedHashSet<Path> dirs = new LinkedHashSet<>();
        addPathList(dirs, System.getProperty("mode.native.path"));
        addPathList(dirs, System.getenv("MODE_NATIVE_PATH"));
        addPathList(dirs, System.getenv("LD_LIBRARY_PATH"));
        for (String env : List.of("CUDA_HOME", "CUDA_PATH")) {
            String home = System.getenv(env);
            if (home != null && !home.isBlank()) addCudaInstall(dirs, Path.of(home));
        }
        addCudaInstall(dirs, Path.of("/usr/local/cuda"));
        for (Path p : versionedSiblings(Path.of("/usr/local"), "cuda-")) addCudaInstall(dirs, p);
        String ncclHome = System.getenv("NCCL_HOME");
        if (ncclHome != null && !ncclHome.isBlank()) dirs.add(Path.of(ncclHome, "lib"));
        for (Path p : versionedSiblings(Path.of("/usr/local"), "nccl")) dirs.add(p.resolve("lib"));
        for (Path p : versionedSiblings(Path.of("/opt"), "nccl")) dirs.add(p.resolve("lib"));
        String mklRoot = System.getenv("MKLROOT");
        if (mklRoot != null && !mklRoot.isBlank()) {
            dirs.add(Path.of(mklRoot, "lib"));
            dirs.add(Path.of(mklRoot, "lib", "intel64"));
        }
        dirs.add(Path.of("/usr/lib", gnuTriplet()));
        dirs.add(Path.of("/usr/lib64"));
        dirs.add(Path.of("/usr/lib"));
        dirs.add(Path.of("/usr/local/nvidia/lib64"));
        dirs.add(Path.of("/usr/lib/wsl/lib"));
        Map<String, String> env = new HashMap<>(System.getenv());
        String site = System.getProperty("mode.python.site");
        if (site != null && !site.isBlank()) env.merge("MODE_PYTHON_SITE", site, (a, b) -> b + ":" + a);
        dirs.addAll(pythonWheelLibraryDirs(env, Path.of(System.getProperty("user.home"))));
        dirs.removeIf(d -> d.getFileName() != null && d.getFileName().toString().equals("stubs"));
        return List.copyOf(dirs);
    }

    /**
     * The library folders of NVIDIA's Python wheels ({@code nvidia-cublas}, {@code nvidia-nccl-cu13},
     * {@code nvidia-cuda-nvrtc}, ...), which install their {@code .so} files as {@code
     * site-packages/nvidia/<package>/lib} (CUDA 12 wheels) or {@code site-packages/nvidia/cu13/lib} (CUDA 13): every
     * existing {@code nvidia/*}{@code /lib} below the site-packages folders found from {@code env}, in this order:
     * {@code MODE_PYTHON_SITE} (colon-separated site-packages folders), {@code PYTHONPATH}, the active virtual
     * environment ({@code VIRTUAL_ENV}), the environment of each {@code python3} or {@code python} on {@code PATH}
     * ({@code <bin>/../lib/python3.*}{@code /site-packages}, the link itself not followed, so a virtual
     * environment's own packages are found), the user's ({@code home/.local/lib/python3.*}), and the system's
     * ({@code /usr/local/lib/python3.*}, {@code /usr/lib/python3.*}, {@code /usr/lib/python3/dist-packages}); under
     * each {@code lib/python3.*} both {@code site-packages} and {@code dist-packages} are looked at. Folders of one
     * site-packages are in name order; {@code stubs} folders are never included.
     */
    public static List<Path> pythonWheelLibraryDirs(Map<String, String> env, Path home) {
        LinkedHashSet<Path> sites = new LinkedHashSet<>();
        addPathList(sites, env.get("MODE_PYTHON_SITE"));
        addPathList(sites, env.get("PYTHONPATH"));
        String venv = env.get("VIRTUAL_ENV");
        if (venv != null && !venv.isBlank()) addPythonPrefix(sites, Path.of(venv));
        String path = env.get("PATH");
        if (path != null) {
            for (String dir : path.split(":")) {
                if (dir.isBlank()) continue;
                for (String exe : List.of("python3", "python")) {
                    Path p = Path.of(dir, exe);
                    if (Files.isExecutable(p))
                        addPythonPrefix(sites, Path.of(dir).toAbsolutePath().getParent());
                }
            }
        }
        if (home != null) addPythonPrefix(sites, home.resolve(".local"));
        addPythonPrefix(sites, Path.of("/usr/local"));
        addPythonPrefix(sites, Path.of("/usr"));
        sites.add(Path.of("/usr/lib/python3/dist-packages"));
        List<Path> out = new ArrayList<>();
        for (Path site : sites) {
            List<Path> packages = new ArrayList<>();
            try (DirectoryStream<Path> ds = Files.newDirectoryStream(site.resolve("nvidia"))) {
                for (Path p : ds) {
                    if (Files.isDirectory(p.resolve("lib"))) packages.add(p.resolve("lib"));
                }
            } catch (IOException e) {
                continue;
            }
            packages.sort(Comparator.comparing(p -> p.getParent().getFileName().toString()));
            out.addAll(packages);
        }
        return out;
    }

    /** {@code prefix/lib[64]/python3.*}{@code /site-packages} and {@code dist-packages}, highest version first. */
    private static void addPythonPrefix(LinkedHashSet<Path> sites, Path prefix) {
        if (prefix == null) return;
        for (String lib : List.of("lib", "lib64")) {
            for (Path p : versionedSiblings(prefix.resolve(lib), "python3")) {
                sites.add(p.resolve("site-packages"));
                sites.add(p.resolve("dist-packages"));
            }
        }
    }

    private static void addPathList(LinkedHashSet<Path> dirs, String list) {
        if (list == null) return;
        for (String s : list.split(":")) {
            if (!s.isBlank()) dirs.add(Path.of(s));
        }
    }

    private static void addCudaInstall(LinkedHashSet<Path> dirs, Path home) {
        dirs.add(home.resolve("lib64"));
        dirs.add(home.resolve("targets").resolve(cudaTarget()).resolve("lib"));
        dirs.add(home.resolve("lib"));
    }

    /** Entries of {@code parent} named {@code prefix*}, highest version first. */
    static List<Path> versionedSiblings(Path parent, String prefix) {
        List<Path> out = new ArrayList<>();
        try (DirectoryStream<Path> ds = Files.newDirectoryStream(parent, prefix + "*")) {
            for (Path p : ds) {
                if (Files.isDirectory(p)) out.add(p);
            }
        } catch (IOException e) {
            return out;
        }
        out.sort(Comparator.comparing((Path p) -> p.getFileName().toString(), NativeLibraries::compareVersions)
                .reversed());
        return out;
    }

    /** Compares names by their dot/dash-separated numeric parts (so {@code 12.10 > 12.9}). */
    static int compareVersions(String a, String b) {
        String[] pa = a.split("[.\\-_]");
        String[] pb = b.split("[.\\-_]");
        for (int i = 0; i < Math.min(pa.length, pb.length); i++) {
            int c;
            if (pa[i].matches("\\d{1,9}") && pb[i].matches("\\d{1,9}")) {
                c = Integer.compare(Integer.parseInt(pa[i]), Integer.parseInt(pb[i]));
            } else {
                c = pa[i].compareTo(pb[i]);
            }
            if (c != 0) return c;
        }
        return Integer.compare(pa.length, pb.length);
    }

    static boolean isLinux() {
        return System.getProperty("os.name", "").toLowerCase(Locale.ROOT).startsWith("linux");
    }

    private static boolean isArm() {
        String arch = System.getProperty("os.arch", "");
        return arch.equals("aarch64") || arch.equals("arm64");
    }

    private static String gnuTriplet() {
        return isArm() ? "aarch64-linux-gnu" : "x86_64-linux-gnu";
    }

    private static String cudaTarget() {
        return isArm() ? "sbsa-linux" : "x86_64-linux";
    }

    private static String bytedecoPlatform() {
        return isArm() ? "linux-arm64" : "linux-x86_64";
    }
}
