package ai.mode.model.train;

/**
 * Learning-rate schedule: linear warm-up then cosine decay to a floor, a pure function of the step so a resumed run
 * follows exactly the same curve.
 *
 * <p>{@code lr(step)} for 1-based optimizer steps: {@code peak·step/warmup} during warm-up, then cosine from
 * {@code peak} down to {@code peak·minRatio} at {@code totalSteps}; constant at the floor afterwards.
 */
public record LrSchedule(double peak, int warmupSteps, int totalSteps, double minRatio) {
    public LrSchedule {
        if (!(peak >= 0) || Double.isInfinite(peak))
            throw new IllegalArgumentException("learning rate must be a non-negative number (got " + peak + ")");
        if (warmupSteps < 0) throw new IllegalArgumentException("warm-up steps must be >= 0 (got " + warmupSteps + ")");
        if (totalSteps < 1) throw new IllegalArgumentException("total steps must be >= 1 (got " + totalSteps + ")");
        if (!(minRatio >= 0 && minRatio <= 1))
            throw new IllegalArgumentException("minimum LR ratio must be in [0, 1] (got " + minRatio + ")");
    }

    /** A constant learning rate. */
    public static LrSchedule constant(double lr) {
        return new LrSchedule(lr, 0, 1, 1.0);
    }

    public double at(int step) {
        if (step < 1) throw new IllegalArgumentException("step must be >= 1 (got " + step + ")");
        if (step <= warmupSteps) return peak * step / warmupSteps;
        int decay = totalSteps - warmupSteps;
        if (decay <= 0 || step >= totalSteps) return peak * minRatio;
        double progress = (double) (step - warmupSteps) / decay;
        return peak * (minRatio + (1 - minRatio) * 0.5 * (1 + Math.cos(Math.PI * progress)));
    }
}
