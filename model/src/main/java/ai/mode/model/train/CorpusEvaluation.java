package ai.mode.model.train;

import ai.mode.model.data.Corpus;
import ai.mode.model.data.EvalBatches;
import ai.mode.model.data.Split;
import ai.mode.model.data.TokenCache;
import ai.mode.model.nn.CausalLm;
import ai.mode.model.tokenizer.BpeTokenizer;
import ai.mode.runtime.LossStats;
import com.google.gson.JsonArray;
import com.google.gson.JsonObject;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Loss, perplexity and next-token accuracy of a model on corpus splits (the {@code mode eval} table and the demo's
 * evaluation). Evaluates a model on named corpora, split by split.
 */
public final class CorpusEvaluation {
    private CorpusEvaluation() {}

    /** One table row. */
    public record Row(String corpus, Split split, LossStats stats) {
        public double loss() {
            return stats.meanLoss();
        }

        public double perplexity() {
            return Math.exp(stats.meanLoss());
        }

        public double accuracy() {
            return stats.accuracy();
        }
    }

    /**
     * Evaluates every requested split of every corpus that has documents in it (empty splits, such as the
     * retention corpus' train split, are skipped), over at most {@code maxWindows} windows of {@code seqLen}
     * predictions per split (0 = all), spread evenly over the split.
     */
    public static List<Row> evaluate(
            CausalLm model,
            BpeTokenizer tokenizer,
            List<String> corpora,
            List<Split> splits,
            int seqLen,
            int batch,
            int maxWindows) {
        if (tokenizer.vocabSize() > model.config().vocabSize()) {
            throw new IllegalArgumentException("tokenizer has " + tokenizer.vocabSize() + " tokens but the model only "
                    + model.config().vocabSize() + "; use the tokenizer the model was trained with");
        }
        List<Row> rows = new ArrayList<>();
        for (String name : corpora) {
            Corpus c = Corpus.load(name);
            for (Split split : splits) {
                if (c.documents(split).isEmpty()) continue;
                int[] tokens = TokenCache.tokens(c, split, tokenizer);
                List<int[]> windows = LoaderStream.windows(new EvalBatches(tokens, batch, seqLen, maxWindows));
                rows.add(new Row(c.name(), split, Evaluator.evaluate(model, windows, batch)));
            }
        }
        return rows;
    }

    /**
     * Refuses a table with a NaN or infinite loss, naming the first such corpus and split: the model's outputs
     * overflow, so its numbers mean nothing. {@code checkpoint} names the evaluated model in the message.
     */
    public static void requireFiniteLoss(List<Row> rows, Path checkpoint) {
        for (Row r : rows) {
            if (!Double.isFinite(r.loss())) {
                throw new IllegalArgumentException("loss is " + r.loss() + " on corpus " + r.corpus() + ", split "
                        + r.split().label() + ": the weights of " + checkpoint
                        + " overflow in the forward pass; evaluate an earlier checkpoint"
                        + " of the run or retrain with a lower --lr");
            }
        }
    }

    /** The rows as a JSON array of {corpus, split, tokens, loss, perplexity, accuracy}. */
    public static JsonArray toJson(List<Row> rows) {
        JsonArray a = new JsonArray();
        for (Row r : rows) {
            JsonObject o = new JsonObject();
            o.addProperty("corpus", r.corpus());
            o.addProperty("split", r.split().label());
            o.addProperty("tokens", r.stats().count());
            o.addProperty("loss", r.loss());
            o.addProperty("perplexity", r.perplexity());
            o.addProperty("accuracy", r.accuracy());
            a.add(o);
        }
        return a;
    }
}
