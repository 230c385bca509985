// The sweep grid: expansion into points (options multiply only the methods they change, values written one way,
// the command's own values dropped, duplicates run once) and one-line errors for bad grid files.
package ai.mode.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.mode.model.mode.Composer;
import ai.mode.model.mode.LoraModel;
import ai.mode.model.mode.ModeConfig;
import ai.mode.model.mode.ModeExperiment.Method;
import ai.mode.model.mode.ModeTraining;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ExperimentSweepTest {
    private static final ExperimentSweep.Base BASE = new ExperimentSweep.Base(
            Path.of("out"),
            80,
            80,
            new ModeTraining.Hyper(8, 128, 1e-3, 0.05, 16, 4, 1234),
            ModeConfig.residualRandom(2, 1, List.of("code", "math")),
            Composer.GateConstruction.FRESH,
            LoraModel.Config.defaults(),
            64,
            0);

    private static List<ExperimentSweep.Point> parse(Path dir, String json) throws Exception {
        Path f = dir.resolve("grid.json");
        Files.writeString(f, json);
        return ExperimentSweep.parse(f, BASE);
    }

    @Test
    void optionsMultiplyOnlyTheMethodsTheyChange(@TempDir Path dir) throws Exception {
        List<ExperimentSweep.Point> p = parse(
                dir,
                "{\"method\": [\"lora\", \"mode\"], \"lr\": [3e-4, 0.001], \"lora_alpha\": [16, 64.0],"
                        + " \"merge\": [\"Mixture\", \"residual\"], \"scale\": [1, 4]}");
        // lora: 2 lr x 2 alpha x 2 scale; mode: 2 lr x 2 merge x 2 scale
        assertEquals(16, p.size());
        for (ExperimentSweep.Point x : p) {
            if (x.methods().equals(Set.of(Method.LORA))) assertTrue(!x.options().containsKey("merge"), x.label());
            else assertTrue(!x.options().containsKey("lora_alpha"), x.label());
        }
        // alpha 16 and merge residual are the command's own values: no option, one point
        ExperimentSweep.Point lora = p.get(0);
        assertEquals(Map.of(), lora.options());
        assertEquals(0.0003, lora.lr());
        assertEquals("lora_lr0.0003_x1", lora.label());
        assertEquals(
                Map.of("lora_alpha", "64"),
                p.stream()
                        .filter(x -> x.label().startsWith("lora_lr0.0003_x1_"))
                        .findFirst()
                        .orElseThrow()
                        .options());
    }

    @Test
    void identicalPointsFromTwoGridsRunOnce(@TempDir Path dir) throws Exception {
        List<ExperimentSweep.Point> p = parse(
                dir,
                "{\"grids\": [{\"method\": \"mode\", \"lr\": 0.001},"
                        + " {\"method\": \"mode\", \"lr\": 1e-3, \"merge\": \"residual\", \"gate_input\": \"RMSNorm\"},"
                        + " {\"method\": \"mode,mode-frozen\", \"lr\": 0.001}]}");
        assertEquals(2, p.size());
        assertEquals(Set.of(Method.MODE, Method.MODE_FROZEN), p.get(1).methods());
    }

    @Test
    void aPointBecomesTheExperimentSettingsItNames(@TempDir Path dir) throws Exception {
        ExperimentSweep.Point p = parse(
                        dir,
                        "{\"method\": \"mode\", \"lr\": 0.003, \"scale\": 4, \"merge\": \"mixture\","
                                + " \"gate_input\": \"raw\", \"expert_layers\": 2}")
                .get(0);
        var s = ExperimentSweep.settings(BASE, p, dir);
        assertEquals(320, s.stage1Steps());
        assertEquals(320, s.stage2Steps());
        assertEquals(0.003, s.hyper().lr());
        assertEquals(ModeConfig.Merge.MIXTURE, s.merge());
        assertEquals(ModeConfig.GateInput.RAW, s.gateInput());
        assertEquals(2, s.expertLayers());
        assertEquals(BASE.hyper().batch(), s.hyper().batch());
        // a top-k routing point takes the mixture merge, which is the only one with a top-k form
        p = parse(dir, "{\"method\": \"mode\", \"routing\": \"top1\"}").get(0);
        assertEquals(
                ModeConfig.Merge.MIXTURE, ExperimentSweep.settings(BASE, p, dir).merge());
    }

    @Test
    void withTheDefaultExpertLayersEachPointTakesItsOwnSliceDepth(@TempDir Path dir) throws Exception {
        // the command's defaults over a 4-layer backbone: copied experts, k = L/B = 2
        ExperimentSweep.Base slice = new ExperimentSweep.Base(
                Path.of("out"),
                80,
                80,
                BASE.hyper(),
                ModeConfig.of(2, 2, List.of("code", "math")),
                Composer.GateConstruction.FRESH,
                LoraModel.Config.defaults(),
                64,
                4);
        Path f = dir.resolve("grid.json");
        Files.writeString(
                f,
                "{\"grids\": [{\"method\": \"mode\"}, {\"method\": \"mode\", \"expert_init\": \"random\"},"
                        + " {\"method\": \"mode\", \"blocks\": [1, 4]}, {\"method\": \"mode\", \"expert_layers\": 2}]}");
        Map<String, Integer> k = new java.util.TreeMap<>();
        for (ExperimentSweep.Point p : ExperimentSweep.parse(f, slice))
            k.put(p.label(), ExperimentSweep.settings(slice, p, dir).expertLayers());
        assertEquals(
                Map.of(
                        "mode_lr0.001_x1", 2,
                        "mode_lr0.001_x1_expert_init-random", 1,
                        "mode_lr0.001_x1_blocks-1", 4,
                        "mode_lr0.001_x1_blocks-4", 1,
                        "mode_lr0.001_x1_expert_layers-2", 2),
                k);
    }

    @Test
    void badGridFilesGiveOneLineErrors(@TempDir Path dir) {
        IllegalArgumentException e =
                assertThrows(IllegalArgumentException.class, () -> parse(dir, "{\"method\": \"mode\", \"rate\": 1}"));
        assertTrue(
                e.getMessage().contains("unknown key 'rate'") && e.getMessage().contains("lora_alpha"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> parse(dir, "{\"lr\": 0.001}"));
        assertTrue(e.getMessage().contains("needs \"method\""), e.getMessage());
        e = assertThrows(
                IllegalArgumentException.class, () -> parse(dir, "{\"method\": \"mode\", \"merge\": \"sum\"}"));
        assertTrue(
                e.getMessage().contains("merge 'sum'") && e.getMessage().contains("'residual' or 'mixture'"),
                e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> parse(dir, "{\"method\": \"mode\", \"scale\": 0}"));
        assertTrue(e.getMessage().contains("scale '0' must be a whole number >= 1"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> parse(dir, "[1, 2"));
        assertTrue(e.getMessage().contains("is not valid JSON"), e.getMessage());
        for (IllegalArgumentException x : List.of(e))
            assertEquals(1, x.getMessage().lines().count());
    }
}
