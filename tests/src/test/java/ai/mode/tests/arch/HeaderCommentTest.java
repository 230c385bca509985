package ai.mode.tests.arch;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/**
 * One header comment per Java source file (docs/contributing.md): every {@code .java} file in the repository,
 * main and test sources of every module and the tools, is checked by {@link HeaderComments}; the checker itself is
 * first shown to flag the two faults it exists for.
 */
class HeaderCommentTest {
    private static final Set<String> SKIPPED_DIRS = Set.of(".git", ".build", "runs", "node_modules");

    @Test
    void checkerFlagsTwoHeadersAndNone() {
        String two = "// what it is\npackage a;\n\nimport b.C;\n\n/** What it is. */\npublic final class X {}\n";
        assertEquals(
                Optional.of("two header comments: a comment above 'package' and the type's Javadoc;"
                        + " merge the first into the Javadoc"),
                HeaderComments.problem("X.java", two));
        String none = "package a;\n\nimport b.C;\n\npublic final class X {}\n";
        assertTrue(HeaderComments.problem("X.java", none).orElseThrow().startsWith("no header comment"));
        String blockAbove = "/* licence */\npackage a;\n\n/** What. */\nrecord X(int a) {}\n";
        assertTrue(HeaderComments.problem("X.java", blockAbove).isPresent());
        assertTrue(HeaderComments.problem("package-info.java", "package a;\n").isPresent());
    }

    @Test
    void checkerAcceptsOneHeader() {
        String javadoc = "package a;\n\nimport b.C;\n\n/**\n * What and why.\n */\n@Deprecated\npublic class X {\n"
                + "    // a body comment\n}\n";
        assertEquals(Optional.empty(), HeaderComments.problem("X.java", javadoc));
        String annotated = "package a;\n\n/** What. */\n@Command(\n        name = \"x\")\npublic final class X {}\n";
        assertEquals(Optional.empty(), HeaderComments.problem("X.java", annotated));
        String slashOnly = "// what and why\npackage a;\n\nclass X {}\n";
        assertEquals(Optional.empty(), HeaderComments.problem("X.java", slashOnly));
        String pkgInfo = "/** The package. */\npackage a;\n";
        assertEquals(Optional.empty(), HeaderComments.problem("package-info.java", pkgInfo));
    }

    @Test
    void everySourceFileHasOneHeaderComment() throws IOException {
        Path root = repoRoot();
        List<String> problems = new ArrayList<>();
        int checked = 0;
        for (Path file : javaFiles(root)) {
            checked++;
            HeaderComments.problem(file.getFileName().toString(), Files.readString(file))
                    .ifPresent(p -> problems.add(root.relativize(file) + ": " + p));
        }
        assertTrue(checked > 100, "only " + checked + " Java files found under " + root);
        assertTrue(
                problems.isEmpty(),
                problems.size() + " file(s) break the header rule:\n" + String.join("\n", problems));
    }

    private static List<Path> javaFiles(Path root) throws IOException {
        try (Stream<Path> walk = Files.walk(root)) {
            return walk.filter(p -> p.toString().endsWith(".java"))
                    .filter(p -> {
                        for (Path part : root.relativize(p)) {
                            String s = part.toString();
                            if (SKIPPED_DIRS.contains(s) || s.startsWith("target")) return false;
                        }
                        return true;
                    })
                    .sorted()
                    .toList();
        }
    }

    private static Path repoRoot() {
        String root = System.getProperty("mode.repo.root");
        Path p = root != null ? Path.of(root) : Path.of("").toAbsolutePath().getParent();
        assumeTrue(p != null && Files.isDirectory(p.resolve("tests/src/test/java")), "repository sources not found");
        return p;
    }
}
