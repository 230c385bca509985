import java.io.IOException;
import java.util.regex.Pattern;
import java.util.zip.ZipFile;

/**
 * Prints, one per line, the given jars that carry bytedeco native libraries ({@code
 * org/bytedeco/<project>/<platform>/lib*.so*}: the CUDA, MKL, OpenBLAS and JavaCPP carriers), which
 * make-bundle.sh leaves out of the GPU bundle. Reads only each jar's central directory, so a 2 GB carrier costs
 * milliseconds. Run in source-file mode: {@code java NativeCarriers.java JAR...}.
 */
public final class NativeCarriers {
    private static final Pattern NATIVE = Pattern.compile("org/bytedeco/[^/]+/[^/]+/lib[^/]*\\.so.*");

    private NativeCarriers() {}

    public static void main(String[] args) throws IOException {
        for (String jar : args) {
            try (ZipFile zip = new ZipFile(jar)) {
                if (zip.stream().anyMatch(e -> NATIVE.matcher(e.getName()).matches())) System.out.println(jar);
            }
        }
    }
}
