package ai.mode.kernels;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.TreeMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

/**
 * The generated launch table ({@link KernelLaunch}) says what the CUDA sources say: read here independently of
 * the build script, from the sources embedded by the same build, every {@code kLaunch} constant of
 * {@code mode_launch.cuh} and every entry point's {@code __launch_bounds__} must be in the table with the same
 * value, and nothing else may be. So a constant written in a form the build does not parse, an entry point
 * without launch bounds, or a stale table fails here instead of launching the wrong geometry.
 */
class KernelLaunchTest {
    private static final Pattern ANY_LAUNCH_CONSTANT = Pattern.compile("\\bkLaunch[A-Za-z0-9]+\\s*=");
    private static final Pattern LAUNCH_CONSTANT =
            Pattern.compile("(?m)^constexpr int (kLaunch[A-Za-z0-9]+) = ([0-9]+);");
    private static final Pattern ENTRY =
            Pattern.compile("extern \"C\" __global__ void (?:__launch_bounds__\\(([^)]*)\\) )?(mode_[A-Za-z0-9_]+)\\(");

    /** What the sources say, parsed here: constants and threads.<entry>. */
    private static Map<String, Integer> fromSources() {
        Map<String, Integer> out = new LinkedHashMap<>();
        String header = KernelResources.header("mode_launch.cuh");
        Matcher c = LAUNCH_CONSTANT.matcher(header);
        int constants = 0;
        while (c.find()) {
            out.put(c.group(1), Integer.parseInt(c.group(2)));
            constants++;
        }
        Matcher any = ANY_LAUNCH_CONSTANT.matcher(header);
        int declared = 0;
        while (any.find()) declared++;
        assertEquals(
                declared,
                constants,
                "every kLaunch constant in mode_launch.cuh must be written 'constexpr int kLaunchName = <integer>;' on"
                        + " its own line, so the build copies it into the launch table");
        for (String module : KernelResources.modules()) {
            Matcher e = ENTRY.matcher(KernelResources.source(module));
            while (e.find()) {
                String bounds = e.group(1);
                assertTrue(
                        bounds != null && bounds.matches("[0-9]+(, *[0-9]+)?"),
                        e.group(2) + " in " + module + ".cu needs __launch_bounds__(<integer threads>[, <min blocks>]),"
                                + " got " + bounds);
                out.put("threads." + e.group(2), Integer.parseInt(bounds.split(",")[0]));
            }
        }
        return out;
    }

    @Test
    void tableMatchesTheSources() {
        Map<String, Integer> sources = fromSources();
        assertEquals(new TreeMap<>(sources), new TreeMap<>(KernelLaunch.all()));
        assertEquals(
                KernelResources.entryPoints().size(),
                sources.keySet().stream().filter(k -> k.startsWith("threads.")).count(),
                "one block size per entry point of entrypoints.txt");
    }

    @Test
    void familiesTheHostLaunchesExist() {
        for (String tileName : new String[] {
            "kLaunchAttentionHeadTileSmall", "kLaunchAttentionHeadTileMedium", "kLaunchAttentionHeadTileLarge"
        }) {
            int tile = KernelLaunch.constant(tileName);
            for (String pass : new String[] {"fwd", "bwddq", "bwddkv"}) {
                for (String dtype : new String[] {"f32", "bf16"}) {
                    String entry = "mode_attention" + tile + "_" + pass + "_" + dtype;
                    assertTrue(KernelResources.entryPoints().containsKey(entry), entry + " for head tile " + tile);
                }
            }
            // The tensor-core kernels (bf16 only): the host derives a block's rows as 16 per warp of its threads.
            for (String pass : new String[] {"fwd", "bwddq", "bwddkv"}) {
                String entry = "mode_attention_wmma" + tile + "_" + pass + "_bf16";
                assertTrue(KernelResources.entryPoints().containsKey(entry), entry + " for head tile " + tile);
                assertEquals(0, KernelLaunch.threads(entry) % 32, entry + " runs whole warps");
            }
        }
        int columnBlock = KernelLaunch.constant("kLaunchColumnBlockX") * KernelLaunch.constant("kLaunchColumnBlockY");
        for (String entry : new String[] {
            "mode_sumrows_fwd_f32", "mode_sumrows_fwd_bf16", "mode_rmsnorm_bwdweight_f32", "mode_rmsnorm_bwdweight_bf16"
        }) {
            assertEquals(columnBlock, KernelLaunch.threads(entry), entry + " runs one column block");
        }
        // scatterAddRows (mode_rows.cuh) is one kernel body behind all four: the host sizes its grid from one.
        int scatterBlock = KernelLaunch.threads("mode_scatter_add_fwd_f32");
        for (String entry :
                new String[] {"mode_scatter_add_fwd_bf16", "mode_embedding_bwd_f32", "mode_embedding_bwd_bf16"}) {
            assertEquals(scatterBlock, KernelLaunch.threads(entry), entry + " runs the scatter-add block");
        }
    }

    @Test
    void unknownNamesAreReportedWithTheFix() {
        IllegalArgumentException e =
                assertThrows(IllegalArgumentException.class, () -> KernelLaunch.constant("kLaunchNoSuchThing"));
        assertTrue(
                e.getMessage().contains("define it in kernels/src/main/cuda/include/mode_launch.cuh"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> KernelLaunch.threads("mode_no_such_kernel"));
        assertTrue(e.getMessage().contains("__launch_bounds__"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> KernelLaunch.constant("threads.mode_fill_fwd_f32"));
        assertFalse(KernelLaunch.all().isEmpty());
    }

    @Test
    void parserRejectsMalformedLines() {
        assertEquals(Map.of("a", 1, "threads.x", 256), KernelLaunch.parse("# comment\na = 1\n\nthreads.x=256\n"));
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> KernelLaunch.parse("a=two\n"));
        assertTrue(e.getMessage().contains("'a=two'"), e.getMessage());
        assertThrows(IllegalStateException.class, () -> KernelLaunch.parse("novalue\n"));
    }
}
