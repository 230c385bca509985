package ai.mode.cli;

import ai.mode.model.io.Checkpoint;
import ai.mode.model.io.GgufImport;
import ai.mode.model.tokenizer.HfTokenizer;
import java.io.IOException;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code mode import-gguf}: converts a Llama GGUF file (F32, F16, BF16, Q8_0 or Q4_0 tensors, dequantized) into a
 * Hugging Face Llama folder, with {@code tokenizer.json} when the file holds a SentencePiece vocabulary.
 */
@Command(
        name = "import-gguf",
        mixinStandardHelpOptions = true,
        description = "Convert a Llama GGUF file into a Hugging Face Llama folder (weights dequantized to float32).")
public final class ImportGgufCommand implements Callable<Integer> {
    @Option(names = "--gguf", required = true, description = "The .gguf file.")
    Path gguf;

    @Option(names = "--out", required = true, description = "Output folder (created; an earlier import is replaced).")
    Path out;

    @Override
    public Integer call() throws IOException {
        GgufImport.Result r = GgufImport.load(gguf);
        Checkpoint.Builder b =
                Checkpoint.builder().config(r.model().config()).model(r.model().weights());
        if (r.tokenizerJson() != null) {
            HfTokenizer.fromJson(r.tokenizerJson(), gguf.toString());
            b.tokenizer(r.tokenizerJson());
        }
        b.writeTo(out);
        System.out.printf(
                "wrote %s: %,d parameters (%s); tokenizer: %s%n",
                out,
                r.model().config().model().parameterCount(),
                r.model().config().model(),
                r.tokenizerNote());
        return 0;
    }
}
