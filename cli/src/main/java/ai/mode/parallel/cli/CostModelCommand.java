// `mode costmodel`: the step-latency model on the paper's 8-device layouts (one mesh, 3 groups, 5 groups),
// calibrated on the one-mesh time, with every assumption printed and adjustable.
package ai.mode.parallel.cli;

import ai.mode.parallel.cost.CostModel;
import ai.mode.parallel.cost.PaperComparison;
import java.util.Locale;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

@Command(
        name = "costmodel",
        mixinStandardHelpOptions = true,
        description = {
            "Predict MoDE step latency for one tensor-parallel mesh vs MPMD device groups on 8 devices (the paper's",
            "systems experiment). Layer times come from FLOPs and the hardware figures; tokens per step are calibrated so",
            "that the one-mesh prediction equals --mesh-ms (the paper's 329 ms) unless --tokens is given."
        })
public final class CostModelCommand implements Callable<Integer> {
    @Option(
            names = "--tflops",
            defaultValue = "197",
            description = "Peak bf16 TFLOP/s per device (default: ${DEFAULT-VALUE}, TPU v5e).")
    double tflops;

    @Option(
            names = "--mfu",
            defaultValue = "0.5",
            description = "Fraction of peak the layers reach (default: ${DEFAULT-VALUE}).")
    double mfu;

    @Option(
            names = "--link-gbps",
            defaultValue = "45",
            description = "GB/s of one inter-device link, one direction (default: ${DEFAULT-VALUE}).")
    double linkGBps;

    @Option(
            names = "--latency-us",
            defaultValue = "10",
            description = "Microseconds per message or collective step (default: ${DEFAULT-VALUE}).")
    double latencyUs;

    @Option(
            names = "--mesh-ms",
            defaultValue = "329",
            description = "One-mesh step time to calibrate on (default: ${DEFAULT-VALUE}, the paper's).")
    double meshMs;

    @Option(
            names = "--tokens",
            defaultValue = "0",
            description = "Tokens per step; 0 = calibrate on --mesh-ms (default: ${DEFAULT-VALUE}).")
    double tokens;

    @Option(
            names = "--expert-layers",
            defaultValue = "3",
            description =
                    "Layers per expert per block (default: ${DEFAULT-VALUE}: the paper's 6 per expert over 2 blocks).")
    int expertLayers;

    @Option(names = "--details", description = "Also print each layout's per-block, per-group breakdown.")
    boolean details;

    @Override
    public Integer call() {
        PaperComparison.Hardware hw = new PaperComparison.Hardware("custom", tflops, mfu, linkGBps, latencyUs);
        PaperComparison.Shape shape = PaperComparison.Shape.PAPER.withLayersPerExpert(expertLayers);
        PaperComparison.Result r =
                tokens > 0 ? PaperComparison.predict(shape, hw, tokens) : PaperComparison.calibrate(shape, hw, meshMs);
        System.out.printf(
                Locale.ROOT,
                "shape: L=%d, B=%d, N=%d experts x %d layers per block, D=%d, F=%d, T=%d (%.1fM parameters per layer)%n",
                shape.layers(),
                shape.blocks(),
                shape.experts(),
                shape.layersPerExpert(),
                shape.hidden(),
                shape.ffn(),
                shape.seqLen(),
                shape.layerParams() / 1e6);
        System.out.printf(
                Locale.ROOT,
                "hardware: %.0f TFLOP/s x %.2f MFU, %.0f GB/s links, %.0f us per step; frozen backbone, trainable experts%n",
                tflops,
                mfu,
                linkGBps,
                latencyUs);
        System.out.printf(
                Locale.ROOT,
                "tokens per step: %.0f%s%n%n",
                r.tokens(),
                tokens > 0 ? "" : " (calibrated: one mesh = " + meshMs + " ms)");
        System.out.print(r.table());
        if (details) {
            for (PaperComparison.Row row : r.rows()) {
                CostModel.Prediction p = row.prediction();
                System.out.println();
                System.out.println(row.name());
                System.out.print(p.describe());
            }
        }
        return 0;
    }
}
