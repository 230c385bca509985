package ai.mode.model.generate;

import ai.mode.model.nn.CausalLm;
import ai.mode.model.nn.KvCache;
import ai.mode.runtime.Backend;
import ai.mode.runtime.Tensor;
import java.util.Arrays;
import java.util.function.IntPredicate;

/**
 * Autoregressive generation from any {@link CausalLm} (a Llama backbone, a stage-1 expert or a composed MoDE model):
 * the prompt runs through the model in one pass (prefill), then each new token costs one position with a
 * {@link KvCache}. Models whose blocks have no cache (MoDE top-k or sequence-level routing, where a token's output
 * depends on more than the tokens before it) are run by recomputing the whole sequence for every token instead.
 *
 * <p>Stops at {@code maxTokens}, at the end of the model's context, at a token the caller's {@code endOfText} test
 * accepts (not included in the result), or when the {@link Listener} asks to. Nothing is written anywhere: the
 * model's weights are only read.
 */
public final class Generator {

    /** Receives each generated token as soon as it is chosen; returns false to stop (e.g. a stop string). */
    @FunctionalInterface
    public interface Listener {
        boolean token(int id);
    }

    /** Why generation ended. */
    public enum Stop {
        END_OF_TEXT,
        MAX_TOKENS,
        CONTEXT,
        LISTENER
    }

    /**
     * @param tokens        the generated ids (without the prompt, without an end-of-text token)
     * @param promptTokens  the prompt's length
     * @param prefillNanos  time of the prompt's pass, to its first token's logits
     * @param decodeNanos   time of the later positions (one per generated token after the first)
     * @param decodeSteps   positions run after the prefill
     * @param cached        whether the key/value cache was used
     */
    public record Result(
            int[] tokens,
            int promptTokens,
            long prefillNanos,
            long decodeNanos,
            int decodeSteps,
            boolean cached,
            Stop stop) {

        /** Prompt tokens per second of the prefill. */
        public double promptTokensPerSecond() {
            return prefillNanos == 0 ? 0 : promptTokens * 1e9 / prefillNanos;
        }

        /** Generated positions per second after the prefill. */
        public double decodeTokensPerSecond() {
            return decodeNanos == 0 ? 0 : decodeSteps * 1e9 / decodeNanos;
        }
    }

    private final CausalLm model;
    private final boolean useCache;

    /** Generation with the cache where the model supports one. */
    public Generator(CausalLm model) {
        this(model, model.supportsCache());
    }

    /**
     * @param useCache false recomputes the whole sequence for every token (the reference the cache is tested
     *                 against); true needs {@link CausalLm#supportsCache()}
     */
    public Generator(CausalLm model, boolean useCache) {
        if (useCache && !model.supportsCache())
            throw new IllegalArgumentException("this model has blocks without a key/value cache; generate without one");
        this.model = model;
        this.useCache = useCache;
    }

    public boolean cached() {
        return useCache;
    }

    /** Checks a prompt against the model's context; the message names the lengths and the fix. */
    public static void checkPrompt(int[] prompt, int context) {
        if (prompt.length == 0)
            throw new IllegalArgumentException(
                    "the prompt has no tokens (and the tokenizer adds no BOS); give some text with --prompt");
        if (prompt.length >= context)
            throw new IllegalArgumentException("the prompt has " + prompt.length + " tokens but the model's context is "
                    + context + " (max_position_embeddings), leaving no room to generate; shorten the prompt");
    }

    /**
     * Generates up to {@code maxTokens} tokens after {@code prompt}.
     *
     * @param endOfText which ids end the text (e.g. the tokenizer's EOS); may be null
     */
    public Result generate(int[] prompt, int maxTokens, Sampling sampling, IntPredicate endOfText, Listener listener) {
        int context = model.config().maxSeqLen(), v = model.config().vocabSize();
        checkPrompt(prompt, context);
        if (maxTokens < 0)
            throw new IllegalArgumentException("--max-tokens " + maxTokens + " is negative; give a count such as 200");
        for (int id : prompt)
            if (id < 0 || id >= v)
                throw new IllegalArgumentException(
                        "prompt token " + id + " is outside the model's vocabulary [0, " + v + "); use its tokenizer");
        Backend be = model.backend();
        Sampler sampler = new Sampler(sampling);
        int budget = Math.min(maxTokens, context - prompt.length);
        int[] seq = Arrays.copyOf(prompt, prompt.length + budget);
        int len = prompt.length, made = 0, steps = 0;
        long prefill = 0, decode = 0;
        Stop stop = budget < maxTokens ? Stop.CONTEXT : Stop.MAX_TOKENS;
        float[] logits = new float[v];
        try (KvCache cache = useCache ? new KvCache(be, Math.min(context, prompt.length + budget)) : null;
                Tensor out = useCache ? be.zeros(1, v) : null) {
            while (made < budget) {
                long t0 = System.nanoTime();
                if (useCache) {
                    int from = cache.length();
                    try (Tensor ids = be.fromHost(Arrays.copyOfRange(seq, from, len), 1, len - from)) {
                        model.forwardCached(ids, cache, out);
                    }
                    be.toHost(out, logits);
                } else {
                    lastLogits(seq, len, logits);
                }
                long dt = System.nanoTime() - t0;
                if (made == 0) prefill = dt;
                else {
                    decode += dt;
                    steps++;
                }
                checkFinite(logits, len);
                int next = sampler.next(logits);
                if (endOfText != null && endOfText.test(next)) {
                    stop = Stop.END_OF_TEXT;
                    break;
                }
                seq[len++] = next;
                made++;
                if (!listener.token(next)) {
                    stop = Stop.LISTENER;
                    break;
                }
            }
        }
        return new Result(
                Arrays.copyOfRange(seq, prompt.length, len), prompt.length, prefill, decode, steps, useCache, stop);
    }

    /** Logits of the last of {@code len} positions, from a forward pass over all of them. */
    private void lastLogits(int[] seq, int len, float[] logits) {
        Backend be = model.backend();
        int v = logits.length;
        try (Tensor ids = be.fromHost(Arrays.copyOf(seq, len), 1, len);
                Tensor out = be.zeros(len, v)) {
            model.logits(ids, out);
            float[] all = be.toHostFloats(out);
            System.arraycopy(all, (len - 1) * v, logits, 0, v);
        }
    }

    private static void checkFinite(float[] logits, int position) {
        for (float f : logits)
            if (!Float.isFinite(f))
                throw new IllegalStateException("the model's logits at position " + position
                        + " are not finite; the checkpoint may be damaged (check it with 'mode eval')");
    }
}
