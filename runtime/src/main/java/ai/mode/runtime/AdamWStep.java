package ai.mode.runtime;

/**
 * Hyper-parameters of one AdamW update (decoupled weight decay, bias-corrected moments).
 *
 * <pre>
 * g  = grad * gradScale                       (gradScale carries global-norm clipping and accumulation averaging)
 * m  = beta1 m + (1 - beta1) g
 * v  = beta2 v + (1 - beta2) g^2
 * p -= lr * ( (m / (1 - beta1^step)) / (sqrt(v / (1 - beta2^step)) + eps) + weightDecay * p )
 * </pre>
 *
 * @param step 1-based step count used for bias correction
 */
public record AdamWStep(float lr, float beta1, float beta2, float eps, float weightDecay, int step, float gradScale) {
    public AdamWStep {
        if (step < 1) throw new IllegalArgumentException("AdamW step must be >= 1, got " + step);
        if (!(lr >= 0) || !(eps > 0) || !(beta1 >= 0 && beta1 < 1) || !(beta2 >= 0 && beta2 < 1)) {
            throw new IllegalArgumentException("invalid AdamW hyper-parameters: " + this);
        }
    }
}
