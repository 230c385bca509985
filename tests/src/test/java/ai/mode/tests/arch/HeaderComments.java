package ai.mode.tests.arch;

import java.util.List;
import java.util.Optional;
import java.util.regex.Pattern;

/**
 * The project's header-comment rule for one Java source file: exactly one header comment, which is the top-level
 * type's Javadoc (what the type is and why it exists), or for a file without one, a single comment above
 * {@code package}; a {@code package-info.java} carries the package Javadoc above {@code package}.
 *
 * <p>Works on the text alone, line by line, so it needs no parser: comments above {@code package} start at column 0
 * with {@code //} or {@code /*}; the type Javadoc is the column-0 {@code /**} comment between the last
 * {@code package}/{@code import} line and the first top-level type declaration.
 */
final class HeaderComments {
    private HeaderComments() {}

    private static final Pattern TYPE_DECLARATION = Pattern.compile(
            "^(@\\S+\\s+)*((public|protected|private|abstract|final|sealed|non-sealed|strictfp|static)\\s+)*"
                    + "(class|interface|enum|record|@interface)\\s.*");

    /** Returns why the file breaks the rule, or empty when it keeps it. {@code name} is the file name. */
    static Optional<String> problem(String name, String source) {
        List<String> lines = source.lines().toList();
        int pkg = indexOf(lines, 0, lines.size(), l -> l.startsWith("package "));
        int firstCode = pkg >= 0 ? pkg : indexOf(lines, 0, lines.size(), l -> l.startsWith("import "));
        int type =
                indexOf(lines, 0, lines.size(), l -> TYPE_DECLARATION.matcher(l).matches());
        if (firstCode < 0) firstCode = type >= 0 ? type : lines.size();
        boolean commentAbove = indexOf(lines, 0, firstCode, l -> l.startsWith("//") || l.startsWith("/*")) >= 0;
        if (name.equals("package-info.java")) {
            boolean javadoc = indexOf(lines, 0, firstCode, l -> l.startsWith("/**")) >= 0;
            return javadoc ? Optional.empty() : Optional.of("package-info.java has no package Javadoc above 'package'");
        }
        boolean typeJavadoc = false;
        if (type >= 0) {
            int lastImport = -1;
            for (int i = 0; i < type; i++) {
                String l = lines.get(i);
                if (l.startsWith("import ") || l.startsWith("package ")) lastImport = i;
            }
            typeJavadoc = indexOf(lines, lastImport + 1, type, l -> l.startsWith("/**")) >= 0;
        }
        if (typeJavadoc && commentAbove) {
            return Optional.of("two header comments: a comment above 'package' and the type's Javadoc;"
                    + " merge the first into the Javadoc");
        }
        if (!typeJavadoc && !commentAbove) {
            return Optional.of("no header comment; add a Javadoc to the top-level type saying what it is and why");
        }
        return Optional.empty();
    }

    private static int indexOf(List<String> lines, int from, int to, java.util.function.Predicate<String> p) {
        for (int i = from; i < to; i++) {
            if (p.test(lines.get(i))) return i;
        }
        return -1;
    }
}
