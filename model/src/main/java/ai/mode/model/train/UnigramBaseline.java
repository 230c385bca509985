package ai.mode.model.train;

import ai.mode.runtime.LossStats;

/**
 * The unigram baseline a language model must beat: token frequencies of the training set (add-one smoothed), scored on
 * the same target tokens as the model. Cross-entropy and accuracy of predicting every token from training-set unigram
 * frequencies alone.
 */
public final class UnigramBaseline {
    private final double[] logProb;
    private final int argmax;

    /** Fits add-one-smoothed frequencies over a vocabulary of {@code vocabSize}. */
    public UnigramBaseline(int[] trainTokens, int vocabSize) {
        long[] counts = new long[vocabSize];
        for (int t : trainTokens) {
            if (t < 0 || t >= vocabSize)
                throw new IllegalArgumentException("token id " + t + " outside the vocabulary of " + vocabSize);
            counts[t]++;
        }
        double total = trainTokens.length + (double) vocabSize;
        logProb = new double[vocabSize];
        int best = 0;
        for (int i = 0; i < vocabSize; i++) {
            logProb[i] = Math.log((counts[i] + 1) / total);
            if (counts[i] > counts[best]) best = i;
        }
        argmax = best;
    }

    /** Loss and accuracy over the targets (last T tokens) of windows of T+1 tokens. */
    public LossStats evaluate(Iterable<int[]> windows) {
        double sum = 0;
        long correct = 0, count = 0;
        for (int[] w : windows) {
            for (int i = 1; i < w.length; i++) {
                sum -= logProb[w[i]];
                if (w[i] == argmax) correct++;
                count++;
            }
        }
        return new LossStats(sum, correct, count);
    }
}
