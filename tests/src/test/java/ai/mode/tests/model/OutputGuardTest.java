package ai.mode.tests.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.mode.model.io.OutputGuard;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Outputs never overwrite inputs, and overwrite other files only with --force (issue 14): an output that is an
 * input, or lies inside an input folder (also through another spelling of the path), is refused even with force;
 * an existing output file needs force; an output folder is claimed by its command (a marker), which may write
 * into it again while another command needs force; the messages are one line and name the fix.
 */
class OutputGuardTest {
    private static String refused(Runnable r) {
        String m = assertThrows(IllegalArgumentException.class, r::run).getMessage();
        assertTrue(!m.contains("\n"), m);
        return m;
    }

    @Test
    void inputsAreNeverOverwrittenEvenWithForce(@TempDir Path dir) throws Exception {
        Path ck = Files.createDirectories(dir.resolve("run/checkpoints/step-1"));
        Path model = Files.writeString(ck.resolve("model.safetensors"), "weights");
        Path tokens = Files.writeString(dir.resolve("toks.txt"), "1 2 3");
        for (boolean force : new boolean[] {false, true}) {
            String m = refused(() -> OutputGuard.file(model, "--out", force, List.of(ck, tokens)));
            assertTrue(m.contains("lies inside " + ck) && m.contains("--force does not allow this"), m);
            Path other = dir.resolve("run/../toks.txt"); // another spelling of an input
            m = refused(() -> OutputGuard.file(other, "--json", force, List.of(tokens)));
            assertTrue(m.contains("is an input of this command"), m);
            m = refused(() -> OutputGuard.folder(ck.resolve("sub"), "expert", force, List.of(ck)));
            assertTrue(m.contains("lies inside"), m);
        }
        assertEquals("weights", Files.readString(model));
    }

    @Test
    void existingFilesAndOtherCommandsFoldersNeedForce(@TempDir Path dir) throws Exception {
        Path json = Files.writeString(dir.resolve("table.json"), "{}");
        String m = refused(() -> OutputGuard.file(json, "--json", false, List.of()));
        assertTrue(m.contains("already exists") && m.contains("pass --force to replace it"), m);
        OutputGuard.file(json, "--json", true, List.of());
        OutputGuard.file(dir.resolve("new.json"), "--json", false, List.of());

        Path run = dir.resolve("run");
        OutputGuard.folder(run, "pretrain", false, List.of());
        Files.writeString(run.resolve("metrics.jsonl"), "{}\n");
        OutputGuard.folder(run, "pretrain", false, List.of()); // the same command again: a rerun or resume
        m = refused(() -> OutputGuard.folder(run, "expert", false, List.of()));
        assertTrue(
                m.contains("already holds files that `mode expert` did not write (it is the output of `mode pretrain`)")
                        && m.contains("pass --force"),
                m);
        OutputGuard.folder(run, "expert", true, List.of());
        assertEquals("expert", Files.readString(run.resolve(OutputGuard.MARKER)).strip());

        Path foreign = Files.createDirectories(dir.resolve("photos"));
        Files.writeString(foreign.resolve("cat.jpg"), "not ours");
        m = refused(() -> OutputGuard.folder(foreign, "train", false, List.of()));
        assertTrue(m.contains("did not write;"), m);
        OutputGuard.folder(dir.resolve("empty"), "train", false, List.of());
        assertTrue(Files.isDirectory(dir.resolve("empty")));
    }
}
