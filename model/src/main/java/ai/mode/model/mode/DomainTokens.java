package ai.mode.model.mode;

import ai.mode.model.data.Corpus;
import ai.mode.model.data.Split;
import ai.mode.model.data.TokenCache;
import ai.mode.model.tokenizer.BpeTokenizer;

/**
 * A domain's tokenized splits (train / validation / test), loaded once per experiment from the data package's corpora
 * and token cache; the retention corpus has no train split.
 *
 * @param name       corpus name (built-in such as {@code code}, or a user corpus path)
 * @param train      training tokens (empty when the corpus has no train split)
 * @param validation validation tokens (may be empty)
 * @param test       held-out test tokens
 */
public record DomainTokens(String name, int[] train, int[] validation, int[] test) {

    /** Tokenizes (or reads from the token cache) every non-empty split of a corpus. */
    public static DomainTokens load(String corpus, BpeTokenizer tokenizer) {
        Corpus c = Corpus.load(corpus);
        return new DomainTokens(
                corpus,
                split(c, Split.TRAIN, tokenizer),
                split(c, Split.VALIDATION, tokenizer),
                split(c, Split.TEST, tokenizer));
    }

    private static int[] split(Corpus c, Split s, BpeTokenizer tok) {
        return c.documents(s).isEmpty() ? new int[0] : TokenCache.tokens(c, s, tok);
    }

    /** The training tokens, or a clear error when the corpus has none. */
    public int[] requireTrain() {
        if (train.length == 0)
            throw new IllegalArgumentException("corpus '" + name + "' has no train split; it can only be evaluated on");
        return train;
    }
}
