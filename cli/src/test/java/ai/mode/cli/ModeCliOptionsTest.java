// The MoDE architecture options as parsed from a command line: the defaults (mixture merge, copied experts as deep as
// their backbone slice), the slice rule for --expert-layers, an explicit k kept, and one-line errors.
package ai.mode.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.mode.model.LlamaConfig;
import ai.mode.model.mode.ModeConfig;
import ai.mode.model.mode.Routing;
import java.util.List;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;

class ModeCliOptionsTest {
    /** The demo's base model: 4 layers. */
    private static final LlamaConfig BACKBONE = LlamaConfig.baseDefault(4096);

    @Command(name = "arch")
    static final class Holder {
        @Mixin
        ModeCliOptions.Arch arch;
    }

    private static ModeConfig config(String... args) {
        Holder h = new Holder();
        new CommandLine(h).parseArgs(args);
        ModeConfig c = h.arch.config(List.of("code", "math"), BACKBONE);
        c.validateAgainst(BACKBONE);
        return c;
    }

    @Test
    void theDefaultsAreTheBtxStyleStart() {
        assertEquals(4, BACKBONE.numLayers());
        ModeConfig c = config();
        assertEquals(ModeConfig.Merge.MIXTURE, c.merge());
        assertEquals(ModeConfig.ExpertInit.COPY, c.expertInit());
        assertEquals(2, c.numBlocks());
        assertEquals(2, c.layersPerExpert(), "k = L/B = 4/2");
        assertEquals(ModeConfig.GateInput.RMSNORM, c.gateInput());
        assertEquals(0.5, c.gateInitBackbone());
        assertEquals(Routing.DENSE, c.routing());
        assertEquals(ModeConfig.of(BACKBONE, 2, List.of("code", "math")), c, "the CLI and library defaults agree");
        assertEquals(4, config("--blocks", "1").layersPerExpert(), "k follows the slice of each B");
        assertEquals(1, config("--blocks", "4").layersPerExpert());
    }

    @Test
    void theSliceRuleGivesRandomExpertsOneLayerAndAnExplicitKIsKept() {
        ModeConfig random = config("--expert-init", "random");
        assertEquals(ModeConfig.ExpertInit.RANDOM_ZERO_OUT, random.expertInit());
        assertEquals(1, random.layersPerExpert());
        assertEquals(ModeConfig.Merge.MIXTURE, random.merge());
        ModeConfig old = config("--merge", "residual", "--expert-init", "random");
        assertEquals(ModeConfig.residualRandom(2, 1, List.of("code", "math")), old, "the earlier default, named");
        assertEquals(1, config("--expert-layers", "1").layersPerExpert());
        assertEquals(
                3, config("--expert-init", "random", "--expert-layers", "3").layersPerExpert());
        assertEquals(2, config("--expert-layers", "SLICE").layersPerExpert());
        assertEquals(ModeConfig.Merge.MIXTURE, config("--routing", "top1").merge());
    }

    @Test
    void badExpertLayersGiveOneLineErrors() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> config("--expert-layers", "3"));
        assertTrue(
                e.getMessage().contains("--expert-init copy") && !e.getMessage().contains("\n"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> config("--expert-layers", "deep"));
        assertTrue(
                e.getMessage().contains("--expert-layers 'deep'")
                        && e.getMessage().contains("slice"),
                e.getMessage());
    }
}
