package ai.mode.model.train;

import ai.mode.model.io.NamedTensors;
import ai.mode.model.nn.LlamaModel;
import ai.mode.model.nn.Parameter;
import ai.mode.runtime.Backend;
import ai.mode.runtime.LossStats;
import ai.mode.runtime.Tensor;

/**
 * Loss, logits and every parameter gradient of one token batch: what {@code mode grads} writes for cross-framework
 * checks.
 *
 * <p>The result of {@link #compute}: the mean token loss in full precision and the tensors {@code mode grads} stores:
 * {@code loss} [1], {@code logits} [B,T,V], {@code input_ids} and {@code targets} [B,T] (as float32) and
 * {@code grad.<parameter name>} for every parameter.
 */
public record BatchGradients(double loss, NamedTensors tensors) {

    /** Prefix of the gradient tensors' names. */
    public static final String GRAD_PREFIX = "grad.";

    /**
     * Makes every parameter of {@code model} trainable, clears its gradient and runs one forward and backward pass
     * on {@code windows}: B rows of T+1 token ids, position t of a row predicting its token t+1. The loss is the
     * mean cross-entropy over all B*T positions and the gradients are those of that mean.
     */
    public static BatchGradients compute(LlamaModel model, int[] windows, int b, int t) {
        if (windows.length != b * (t + 1)) {
            throw new IllegalArgumentException(windows.length + " token ids do not form " + b + " rows of " + (t + 1));
        }
        Backend be = model.backend();
        for (Parameter p : model.parameters()) {
            p.setTrainable(true);
            p.zeroGrad();
        }
        int v = model.config().vocabSize();
        int[] in = Evaluator.inputs(windows, b, t), tg = Evaluator.targets(windows, b, t);
        NamedTensors out = new NamedTensors();
        LossStats s;
        try (Tensor ids = be.fromHost(in, b, t);
                Tensor targets = be.fromHost(tg, b, t);
                Tensor logits = be.zeros(b * t, v)) {
            s = model.forwardBackward(ids, targets, 1f / (b * t));
            model.logits(ids, logits);
            out.put("loss", new int[] {1}, new float[] {(float) s.meanLoss()});
            out.put("logits", new int[] {b, t, v}, be.toHostFloats(logits));
        }
        out.put("input_ids", new int[] {b, t}, toFloat(in));
        out.put("targets", new int[] {b, t}, toFloat(tg));
        for (Parameter p : model.parameters()) out.put(GRAD_PREFIX + p.name(), p.shape(), be.toHostFloats(p.grad()));
        return new BatchGradients(s.meanLoss(), out);
    }

    private static float[] toFloat(int[] a) {
        float[] f = new float[a.length];
        for (int i = 0; i < a.length; i++) f[i] = a[i];
        return f;
    }
}
