package ai.mode.runtime;

/**
 * Result of a fused softmax cross-entropy pass.
 *
 * @param lossSum sum of -log p(target) over counted rows (float64 accumulation)
 * @param correct rows whose arg-max logit equals the target (next-token accuracy numerator)
 * @param count   rows counted (targets that are not {@link Backend#IGNORE_INDEX})
 */
public record LossStats(double lossSum, long correct, long count) {
    public static final LossStats ZERO = new LossStats(0, 0, 0);

    public LossStats plus(LossStats o) {
        return new LossStats(lossSum + o.lossSum, correct + o.correct, count + o.count);
    }

    public double meanLoss() {
        return count == 0 ? Double.NaN : lossSum / count;
    }

    public double accuracy() {
        return count == 0 ? Double.NaN : (double) correct / count;
    }
}
