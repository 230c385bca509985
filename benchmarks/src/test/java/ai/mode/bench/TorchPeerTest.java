package ai.mode.bench;

import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The PyTorch peers' plumbing, without PyTorch: scripts are found, and a missing Python is one clear line. */
class TorchPeerTest {

    @Test
    void everyPeerScriptIsFound() throws Exception {
        for (String name : List.of(TorchPeer.TRAIN_SCRIPT, TorchPeer.GEMM_SCRIPT, TorchPeer.GENERATE_SCRIPT)) {
            Path p = TorchPeer.scriptPath(name);
            assertTrue(Files.isRegularFile(p), p.toString());
            assertTrue(Files.readString(p).contains("def main"), name);
        }
    }

    @Test
    void aMissingPythonIsAOneLineReasonNamingTheFix() {
        TorchPeer.Outcome o = TorchPeer.gemm(
                "/nonexistent/python3", List.of(GemmCase.parse("64x32x16:NT")), 1, Measure.Budget.quick(), 30);
        assertTrue(o.result().isEmpty());
        assertTrue(o.reason().contains("--python") && !o.reason().contains("\n"), o.reason());
    }
}
