package ai.mode.model.generate;

/**
 * How the next token is chosen from the logits: greedy (temperature 0), or drawn from {@code softmax(logits / T)}
 * restricted to the {@code topK} most probable tokens and then to the smallest most-probable set whose probability
 * reaches {@code topP} (nucleus sampling), with a seeded random stream.
 *
 * @param temperature 0 for greedy decoding (the arg-max, ties to the lower id), else a finite T > 0
 * @param topK        0 keeps every token, k > 0 the k most probable
 * @param topP        in (0, 1]; 1 keeps every token
 * @param seed        the random stream's seed: the same seed gives the same tokens on the same backend
 */
public record Sampling(double temperature, int topK, double topP, long seed) {

    /** Greedy decoding. */
    public static final Sampling GREEDY = new Sampling(0, 0, 1, 0);

    public Sampling {
        if (!Double.isFinite(temperature) || temperature < 0)
            throw new IllegalArgumentException("--temperature " + temperature
                    + " is not a finite number >= 0; use 0 for greedy decoding or a value such as 0.8");
        if (topK < 0)
            throw new IllegalArgumentException(
                    "--top-k " + topK + " is negative; use 0 to keep every token or a count such as 40");
        if (!(topP > 0 && topP <= 1))
            throw new IllegalArgumentException(
                    "--top-p " + topP + " is outside (0, 1]; use 1 to keep every token or a value such as 0.9");
    }

    public boolean greedy() {
        return temperature == 0;
    }

    @Override
    public String toString() {
        return greedy()
                ? "greedy"
                : "temperature " + temperature + (topK > 0 ? ", top-k " + topK : "")
                        + (topP < 1 ? ", top-p " + topP : "") + ", seed " + seed;
    }
}
