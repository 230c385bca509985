package ai.mode.model.mode;

import ai.mode.runtime.LossStats;
import java.util.List;
import java.util.Map;

/**
 * One row of the experiment's table: what a method trained on, its parameter counts, its per-domain test scores and
 * (for MoDE) per-domain gate weights, plus the runs it consisted of.
 *
 * @param id        short id ({@code base}, {@code full-ft}, {@code lora}, {@code expansion}, {@code mode-1x},
 *                  {@code expert-code}, {@code mode-2x-frozen}, {@code mode-2x}, ...)
 * @param label     the table's method column
 * @param trainedOn what the method trained on and for how many steps, in words
 * @param steps     optimizer steps in all (0 for the base model)
 * @param params    total / trainable / added parameter counts
 * @param eval      test scores per domain and gate weights
 * @param validation scores per domain on the validation split (what a sweep chooses settings by; never the test split)
 * @param runs      the training runs (one, or several for two-stage MoDE)
 * @param seconds   wall time of the method's training and evaluation
 */
public record MethodResult(
        String id,
        String label,
        String trainedOn,
        int steps,
        ModeTraining.ParamCounts params,
        ModeTraining.Evaluation eval,
        Map<String, LossStats> validation,
        List<ModeTraining.Run> runs,
        double seconds) {

    /** Test accuracy on a domain (NaN when not evaluated). */
    public double accuracy(String domain) {
        LossStats s = eval.scores().get(domain);
        return s == null ? Double.NaN : s.accuracy();
    }

    /** Test loss on a domain (NaN when not evaluated). */
    public double loss(String domain) {
        LossStats s = eval.scores().get(domain);
        return s == null ? Double.NaN : s.meanLoss();
    }

    /** Unweighted mean accuracy over {@code domains}. */
    public double meanAccuracy(List<String> domains) {
        double s = 0;
        for (String d : domains) s += accuracy(d);
        return s / domains.size();
    }

    /** Unweighted mean loss over {@code domains}. */
    public double meanLoss(List<String> domains) {
        double s = 0;
        for (String d : domains) s += loss(d);
        return s / domains.size();
    }

    /** Validation accuracy on a domain (NaN when not evaluated). */
    public double validationAccuracy(String domain) {
        LossStats s = validation.get(domain);
        return s == null ? Double.NaN : s.accuracy();
    }

    /** Unweighted mean validation accuracy over {@code domains} (NaN when one of them has no validation score). */
    public double meanValidationAccuracy(List<String> domains) {
        double s = 0;
        for (String d : domains) s += validationAccuracy(d);
        return s / domains.size();
    }

    /** Gate weights per domain ([block][branch]); empty for non-MoDE methods. */
    public Map<String, double[][]> gateWeights() {
        return eval.gateWeights();
    }
}
