// Writes a tokenizer trained on the english corpus and every built-in document with our token ids, so that
// hf_parity.js can check Hugging Face's tokenizers library gives the same ids. A manual check, not run by the build:
//   java -cp model/target/classes:$(find ~/.m2 -name 'gson-2.13.2.jar') tools/corpora/HfParityDump.java /tmp/hf
import ai.mode.model.data.Corpus;
import ai.mode.model.data.CorpusException;
import ai.mode.model.data.CorpusRegistry;
import ai.mode.model.data.Document;
import ai.mode.model.data.Split;
import ai.mode.model.tokenizer.BpeTokenizer;
import ai.mode.model.tokenizer.BpeTrainer;
import com.google.gson.Gson;
import com.google.gson.JsonObject;

import java.io.BufferedWriter;
import java.nio.file.Files;
import java.nio.file.Path;

public class HfParityDump {
    public static void main(String[] args) throws Exception {
        Path out = Path.of(args.length > 0 ? args[0] : "/tmp/hf");
        int vocab = args.length > 1 ? Integer.parseInt(args[1]) : 4096;
        Files.createDirectories(out);
        BpeTokenizer tok = BpeTrainer.train(CorpusRegistry.load(CorpusRegistry.ENGLISH).utf8(Split.TRAIN), vocab);
        tok.save(out.resolve("tokenizer.json"));
        Gson gson = new Gson();
        int docs = 0;
        try (BufferedWriter w = Files.newBufferedWriter(out.resolve("docs.jsonl"))) {
            for (String name : CorpusRegistry.names()) {
                Corpus c;
                try {
                    c = CorpusRegistry.load(name);
                } catch (CorpusException e) {
                    System.out.println("skipping " + name + ": " + e.getMessage());
                    continue;
                }
                for (Document d : c.documents()) {
                    JsonObject o = new JsonObject();
                    o.addProperty("id", d.id());
                    o.addProperty("text", d.text());
                    o.add("ids", gson.toJsonTree(tok.encode(d.text())));
                    w.write(o.toString());
                    w.write('\n');
                    docs++;
                }
            }
        }
        System.out.println("wrote " + out.resolve("tokenizer.json") + " and " + docs + " documents");
    }
}
