package ai.mode.cli;

import ai.mode.model.io.Checkpoint;
import ai.mode.model.io.HfImport;
import ai.mode.model.io.Llama2cImport;
import ai.mode.model.tokenizer.HfTokenizer;
import ai.mode.model.tokenizer.SentencePieceBpe;
import java.io.IOException;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code mode import-llama2c}: converts a llama2.c checkpoint (and its tokenizer.bin) into a Hugging Face Llama folder
 * ({@code config.json}, {@code model.safetensors}, {@code tokenizer.json}) that every other command, and transformers,
 * reads.
 */
@Command(
        name = "import-llama2c",
        mixinStandardHelpOptions = true,
        description =
                "Convert a llama2.c checkpoint (legacy .bin) and its tokenizer.bin into a Hugging Face Llama folder.")
public final class ImportLlama2cCommand implements Callable<Integer> {
    @Option(names = "--checkpoint", required = true, description = "The llama2.c .bin checkpoint.")
    Path checkpoint;

    @Option(names = "--tokenizer", description = "Its llama2.c tokenizer.bin (optional).")
    Path tokenizer;

    @Option(names = "--out", required = true, description = "Output folder (created; an earlier import is replaced).")
    Path out;

    @Override
    public Integer call() throws IOException {
        HfImport.Model m = Llama2cImport.load(checkpoint);
        Checkpoint.Builder b = Checkpoint.builder().config(m.config()).model(m.weights());
        if (tokenizer != null) {
            byte[] json =
                    SentencePieceBpe.fromLlama2c(tokenizer, m.config().model().vocabSize());
            HfTokenizer.fromJson(json, tokenizer.toString());
            b.tokenizer(json);
        }
        b.writeTo(out);
        System.out.printf(
                "wrote %s: %,d parameters (%s)%s%n",
                out,
                m.config().model().parameterCount(),
                m.config().model(),
                tokenizer == null ? "" : " and tokenizer.json");
        return 0;
    }
}
