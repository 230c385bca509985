package ai.mode.runtime.cpu;

import ai.mode.runtime.RopeFrequencies;

/**
 * cos/sin of the rotary angles for positions {@code [0, positions)} and the pairs of a frequency table:
 * angle = pos * inverse(i), computed in float64 and rounded once to float32.
 * Layout {@code cos[pos * half + i]}. Immutable; {@link CpuBackend} caches the last one per frequency table.
 */
record RopeTable(RopeFrequencies frequencies, int positions, float[] cos, float[] sin) {

    static RopeTable build(RopeFrequencies frequencies, int positions) {
        int half = frequencies.pairs();
        float[] cos = new float[positions * half];
        float[] sin = new float[positions * half];
        double[] invFreq = frequencies.toArray();
        for (int pos = 0; pos < positions; pos++) {
            for (int i = 0; i < half; i++) {
                double angle = pos * invFreq[i];
                cos[pos * half + i] = (float) StrictMath.cos(angle);
                sin[pos * half + i] = (float) StrictMath.sin(angle);
            }
        }
        return new RopeTable(frequencies, positions, cos, sin);
    }

    boolean covers(RopeFrequencies frequencies, int positionsNeeded) {
        return this.frequencies.equals(frequencies) && positions >= positionsNeeded;
    }
}
