package ai.mode.runtime.cpu;

/**
 * cos/sin of the rotary angles for positions {@code [0, positions)} and pairs {@code [0, hd/2)}:
 * angle = pos * theta^(-2i/hd), computed in float64 and rounded once to float32.
 * Layout {@code cos[pos * half + i]}. Immutable; {@link CpuBackend} caches the last one per (theta, hd).
 */
record RopeTable(float theta, int hd, int positions, float[] cos, float[] sin) {

    static RopeTable build(float theta, int hd, int positions) {
        int half = hd / 2;
        float[] cos = new float[positions * half];
        float[] sin = new float[positions * half];
        double[] invFreq = new double[half];
        for (int i = 0; i < half; i++) invFreq[i] = StrictMath.pow(theta, -2.0 * i / hd);
        for (int pos = 0; pos < positions; pos++) {
            for (int i = 0; i < half; i++) {
                double angle = pos * invFreq[i];
                cos[pos * half + i] = (float) StrictMath.cos(angle);
                sin[pos * half + i] = (float) StrictMath.sin(angle);
            }
        }
        return new RopeTable(theta, hd, positions, cos, sin);
    }

    boolean covers(float theta, int hd, int positionsNeeded) {
        return Float.compare(this.theta, theta) == 0 && this.hd == hd && positions >= positionsNeeded;
    }
}
