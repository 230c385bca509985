package ai.mode.tests.model;

import ai.mode.model.io.SafeTensorsReader;
import ai.mode.model.train.BatchGradients;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * Checks files written by {@code mode grads} on the Hugging Face fixture (tests/src/test/resources/hf-llama-reference)
 * against transformers' float64 reference, with {@link HfReferenceTest}'s bounds (loss 1e-6 absolute, logits 5e-6 and
 * every gradient 1e-5 relative L2): {@code gpu-check.sh} runs {@code mode grads --backend cuda} (or {@code emu}
 * without a GPU) and {@code --backend cpu} and hands both files here, so each backend meets the same outside
 * reference rather than merely agreeing with the other.
 *
 * <p>Usage: {@code HfGradsCheck FIXTURE_DIR GRADS.safetensors...}. Prints one line per file and a last summary
 * line; returns the number of files outside the bounds (0: all pass).
 */
public final class HfGradsCheck {
    private HfGradsCheck() {}

    /** One file's errors against the reference. */
    record Errors(String file, double loss, double logits, double worstGrad, String worstGradName) {
        boolean passes() {
            return loss <= HfReferenceTest.LOSS_ABS
                    && logits <= HfReferenceTest.LOGITS_REL_L2
                    && worstGrad <= HfReferenceTest.GRAD_REL_L2;
        }

        String line() {
            return String.format(
                    Locale.ROOT,
                    "%s: loss error %.2e (bound %.0e), logits rel L2 %.2e (bound %.0e), worst gradient %s rel L2 %.2e"
                            + " (bound %.0e): %s",
                    file,
                    loss,
                    HfReferenceTest.LOSS_ABS,
                    logits,
                    HfReferenceTest.LOGITS_REL_L2,
                    worstGradName,
                    worstGrad,
                    HfReferenceTest.GRAD_REL_L2,
                    passes() ? "ok" : "OUT OF BOUNDS");
        }
    }

    /** The errors of one {@code mode grads} output against {@code reference.safetensors} in {@code fixture}. */
    static Errors check(Path fixture, Path grads) throws IOException {
        try (SafeTensorsReader ref = SafeTensorsReader.open(fixture.resolve("reference.safetensors"));
                SafeTensorsReader got = SafeTensorsReader.open(grads)) {
            double loss = Math.abs(got.readFloats("loss")[0] - HfReferenceTest.float64(ref, "loss")[0]);
            double logits =
                    HfReferenceTest.relativeL2(got.readFloats("logits"), HfReferenceTest.float64(ref, "logits"));
            double worst = 0;
            String worstName = "(none)";
            int count = 0;
            for (String name : ref.names()) {
                if (!name.startsWith(BatchGradients.GRAD_PREFIX)) continue;
                if (!got.contains(name)) throw new IllegalArgumentException(grads + " lacks " + name);
                double e = HfReferenceTest.relativeL2(got.readFloats(name), HfReferenceTest.float64(ref, name));
                count++;
                if (!(e <= worst)) {
                    worst = e;
                    worstName = name;
                }
            }
            if (count == 0) throw new IllegalArgumentException(fixture + ": the reference holds no gradients");
            return new Errors(grads.getFileName().toString(), loss, logits, worst, worstName);
        }
    }

    public static void main(String[] args) throws IOException {
        if (args.length < 2) {
            throw new IllegalArgumentException("usage: HfGradsCheck FIXTURE_DIR GRADS.safetensors...");
        }
        Path fixture = Path.of(args[0]);
        List<Errors> all = new ArrayList<>();
        for (int i = 1; i < args.length; i++) {
            Errors e = check(fixture, Path.of(args[i]));
            System.out.println(e.line());
            all.add(e);
        }
        long failed = all.stream().filter(e -> !e.passes()).count();
        System.out.println("grads against transformers' float64: " + (all.size() - failed) + " of " + all.size()
                + " files within HfReferenceTest's bounds");
        if (failed > 0) System.exit(1);
    }
}
