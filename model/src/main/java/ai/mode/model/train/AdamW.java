package ai.mode.model.train;

import ai.mode.model.nn.Parameter;
import ai.mode.runtime.AdamWStep;
import ai.mode.runtime.Backend;
import ai.mode.runtime.Tensor;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * AdamW over the trainable parameters with global-norm gradient clipping; the moment buffers are part of the checkpoint
 * so a resumed run continues bit for bit.
 *
 * <p>Decoupled-weight-decay Adam. Per step: global gradient norm over all trainable parameters
 * ({@link Backend#sumSquares}, float64), clip factor {@code min(1, maxNorm/norm)} passed to
 * {@link Backend#adamW} as the gradient scale; weight decay only where {@link Parameter#decay()}.
 * Moments are created lazily per parameter name (zero), so parameters added later start fresh. A parameter that
 * trains only some rows ({@link Parameter#trainOnlyRows}) has its norm and update taken over those rows alone.
 */
public final class AdamW implements AutoCloseable {
    /** Hyper-parameters. {@code maxGradNorm <= 0} disables clipping. */
    public record Config(double beta1, double beta2, double eps, double weightDecay, double maxGradNorm) {
        public Config {
            if (!(beta1 >= 0 && beta1 < 1) || !(beta2 >= 0 && beta2 < 1))
                throw new IllegalArgumentException("AdamW betas must be in [0, 1) (got " + beta1 + ", " + beta2 + ")");
            if (!(eps > 0)) throw new IllegalArgumentException("AdamW eps must be > 0 (got " + eps + ")");
            if (!(weightDecay >= 0))
                throw new IllegalArgumentException("weight decay must be >= 0 (got " + weightDecay + ")");
        }

        public static Config defaults() {
            return new Config(0.9, 0.95, 1e-8, 0.1, 1.0);
        }
    }

    /** What one step did. {@code gradNorm} is before clipping; {@code clip} the factor applied (1 = none). */
    public record StepInfo(double gradNorm, double clip) {}

    private final Backend backend;
    private final Config config;
    private final Map<String, Tensor[]> moments = new LinkedHashMap<>();
    private int step;

    public AdamW(Backend backend, Config config) {
        this.backend = backend;
        this.config = config;
    }

    public Config config() {
        return config;
    }

    /** Optimizer steps taken so far. */
    public int step() {
        return step;
    }

    /** The global L2 norm of the gradients of {@code params} (trainable ones). */
    public double gradNorm(List<Parameter> params) {
        double ss = 0;
        for (Parameter p : params) if (p.trainable()) ss += backend.sumSquares(p.trained(p.grad()));
        return Math.sqrt(ss);
    }

    /**
     * One update of every trainable parameter in {@code params} at learning rate {@code lr}. Returns the
     * gradient norm; when it is not finite nothing is updated and the step count does not advance.
     */
    public StepInfo update(List<Parameter> params, double lr) {
        double norm = gradNorm(params);
        if (!Double.isFinite(norm)) return new StepInfo(norm, 0);
        double clip = config.maxGradNorm() > 0 && norm > config.maxGradNorm() ? config.maxGradNorm() / norm : 1.0;
        step++;
        for (Parameter p : params) {
            if (!p.trainable()) continue;
            Tensor[] mv = moments(p);
            AdamWStep s = new AdamWStep(
                    (float) lr,
                    (float) config.beta1(),
                    (float) config.beta2(),
                    (float) config.eps(),
                    p.decay() ? (float) config.weightDecay() : 0f,
                    step,
                    (float) clip);
            backend.adamW(p.trained(p.value()), p.trained(p.grad()), p.trained(mv[0]), p.trained(mv[1]), s);
        }
        return new StepInfo(norm, clip);
    }

    private Tensor[] moments(Parameter p) {
        Tensor[] mv = moments.get(p.name());
        if (mv == null) {
            mv = new Tensor[] {backend.zeros(p.shape()), backend.zeros(p.shape())};
            moments.put(p.name(), mv);
        }
        return mv;
    }

    /** First moments by parameter name (device tensors, for checkpoints). */
    public Map<String, Tensor> firstMoments() {
        return momentMap(0);
    }

    /** Second moments by parameter name. */
    public Map<String, Tensor> secondMoments() {
        return momentMap(1);
    }

    private Map<String, Tensor> momentMap(int which) {
        Map<String, Tensor> out = new LinkedHashMap<>();
        moments.forEach((name, mv) -> out.put(name, mv[which]));
        return out;
    }

    /**
     * Restores the step count and the moments of the trainable parameters among {@code params} from host
     * arrays by parameter name; every trainable parameter must have both moments of its size.
     */
    public void restore(int step, List<Parameter> params, Map<String, float[]> first, Map<String, float[]> second) {
        if (step < 0) throw new IllegalArgumentException("optimizer step must be >= 0 (got " + step + ")");
        this.step = step;
        for (Parameter p : params) {
            if (!p.trainable()) continue;
            float[] m = first.get(p.name()), v = second.get(p.name());
            if (m == null || v == null || m.length != p.numel() || v.length != p.numel()) {
                throw new IllegalArgumentException(
                        "optimizer state for " + p.name() + " is missing or has the wrong size");
            }
            Tensor[] mv = moments(p);
            backend.copyFromHost(m, mv[0]);
            backend.copyFromHost(v, mv[1]);
        }
    }

    @Override
    public void close() {
        for (Tensor[] mv : moments.values()) {
            mv[0].close();
            mv[1].close();
        }
        moments.clear();
    }
}
