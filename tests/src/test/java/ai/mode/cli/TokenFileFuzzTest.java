package ai.mode.cli;

import ai.mode.tests.fuzz.ParserFuzzTest;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;

/**
 * Fuzzing of the token files of `mode grads --tokens` (issue 14), in the package of {@link GradsCommand}: the
 * plain form (integers per line) and the JSON form (an array of arrays), from random bytes and random edits of valid
 * files. Every input is read or refused with a one-line IllegalArgumentException, the CLI's user error. Seed and
 * tries as in {@link ParserFuzzTest}.
 */
class TokenFileFuzzTest {
    @Provide
    Arbitrary<byte[]> tokenFiles() {
        return Arbitraries.oneOf(
                ParserFuzzTest.mutationsOf("5 9 14 3\n1 2 3 4\n".getBytes(StandardCharsets.UTF_8)),
                ParserFuzzTest.mutationsOf("[[5, 9, 14, 3], [1, 2, 3, 4]]".getBytes(StandardCharsets.UTF_8)));
    }

    @Property(seed = "20261207")
    void tokenFilesAreReadOrRefusedInOneLine(@ForAll("tokenFiles") byte[] bytes) throws IOException {
        Path f = Files.createTempFile("mode-fuzz", ".tokens");
        try {
            Files.write(f, bytes);
            ParserFuzzTest.parsesOrFails(() -> GradsCommand.readTokens(f), IllegalArgumentException.class);
        } finally {
            Files.delete(f);
        }
    }
}
