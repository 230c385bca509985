package ai.mode.tests.mode;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.mode.model.mode.ExpertFile;
import ai.mode.tests.parallel.TrainCliTest;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code mode eval-mode} with domain opt-out, end to end on a tiny backbone and a two-expert model trained by
 * {@code mode train}: {@code --keep} with every expert prints exactly what the plain command prints (the full model's
 * path), {@code --without} routes nothing to the removed expert (its gate weight is 0 in every block) and router
 * statistics are printed per domain and block; bad expert sets are one-line errors naming the fix.
 */
class EvalModeOptOutCliTest {
    @TempDir
    static Path dir;

    static Path alpha, beta, backbone, experts;
    static List<String> domains;

    @BeforeAll
    static void trainTinyModel() throws Exception {
        TrainCliTest.TrainedMode m = TrainCliTest.trainTinyMode(dir);
        alpha = m.alpha();
        beta = m.beta();
        backbone = m.backbone();
        experts = m.experts();
        domains = ExpertFile.read(experts).config().domains();
        assertEquals(2, domains.size());
    }

    private static String[] evalMode(String... extra) {
        List<String> a = new ArrayList<>(List.of(
                "eval-mode",
                "--checkpoint",
                backbone.toString(),
                "--experts",
                experts.toString(),
                "--eval",
                alpha + "," + beta,
                "--seq",
                "12",
                "--batch",
                "4",
                "--eval-windows",
                "4",
                "--threads",
                "1"));
        a.addAll(List.of(extra));
        return run(a.toArray(String[]::new));
    }

    @Test
    void keepingEveryExpertPrintsTheFullModelAndWithoutDropsTheExpert() {
        String[] full = evalMode();
        assertEquals("0", full[0], full[2]);
        assertTrue(full[1].contains("router on " + alpha), full[1]);
        assertTrue(full[1].contains("block 1 weights [") && full[1].contains("entropy"), full[1]);

        String[] all = evalMode("--keep", domains.get(1) + "," + domains.get(0));
        assertEquals("0", all[0], all[2]);
        assertEquals(full[1], all[1], "keeping every expert is the full model");

        String[] without = evalMode("--without", domains.get(1));
        assertEquals("0", without[0], without[2]);
        assertTrue(without[1].contains("experts used: [" + domains.get(0) + "]"), without[1]);
        assertNotEquals(full[1], without[1]);
        int blocks = 0;
        for (String line : without[1].split("\n")) {
            if (!line.strip().startsWith("block ")) continue;
            blocks++;
            assertTrue(line.contains(" 0.000] entropy"), "the removed (last) expert has weight 0: " + line);
        }
        assertEquals(4, blocks, "2 blocks on each of 2 domains");
        String[] keep = evalMode("--keep", domains.get(0));
        assertEquals(without[1], keep[1], "--keep A and --without B are the same model");
    }

    @Test
    void badExpertSetsAreOneLineErrors() {
        String[] empty = evalMode("--without", domains.get(0) + "," + domains.get(1));
        assertEquals("1", empty[0]);
        assertTrue(empty[2].contains("expert set is empty; keep at least one of"), empty[2]);
        String[] unknown = evalMode("--keep", "poetry");
        assertEquals("1", unknown[0]);
        assertTrue(unknown[2].contains("expert 'poetry' is not in this model; use names from its experts"), unknown[2]);
        String[] both = evalMode("--keep", domains.get(0), "--without", domains.get(1));
        assertEquals("1", both[0]);
        assertTrue(both[2].contains("--keep and --without both given; use one of them"), both[2]);
        for (String[] r : List.of(empty, unknown, both)) {
            assertEquals(1, r[2].strip().lines().count(), r[2]);
            assertFalse(r[1].contains("router on"), "nothing evaluated");
        }
    }

    private static String[] run(String... args) {
        return TrainCliTest.run(args);
    }
}
