package ai.mode.model.data;

/**
 * A batch of training or evaluation sequences.
 *
 * <p>{@code tokens} is row-major {@code [rows, seqLen + 1]}: row r holds {@code seqLen + 1} consecutive tokens of
 * one stream; the model reads the first {@code seqLen} ({@link #inputs()}) and predicts the last {@code seqLen}
 * ({@link #targets()}).
 *
 * @param tokens  {@code [rows, seqLen + 1]} token ids, row-major
 * @param rows    number of sequences B (an evaluation batch's last one may be smaller than asked)
 * @param seqLen  sequence length T
 * @param sources {@code [rows]} index of the source (domain) each row came from, in the loader's source order
 */
public record Batch(int[] tokens, int rows, int seqLen, int[] sources) {

    public Batch {
        if (rows < 1 || seqLen < 1 || tokens.length != rows * (seqLen + 1) || sources.length != rows) {
            throw new IllegalArgumentException("inconsistent batch: rows " + rows + ", seqLen " + seqLen + ", "
                    + tokens.length + " tokens, " + sources.length + " sources");
        }
    }

    /** {@code [rows, seqLen]} model inputs: positions 0..T-1 of each row. */
    public int[] inputs() {
        return slice(0);
    }

    /** {@code [rows, seqLen]} next-token targets: positions 1..T of each row. */
    public int[] targets() {
        return slice(1);
    }

    /** The {@code seqLen + 1} tokens of row {@code r}. */
    public int[] row(int r) {
        return java.util.Arrays.copyOfRange(tokens, r * (seqLen + 1), (r + 1) * (seqLen + 1));
    }

    private int[] slice(int shift) {
        int[] out = new int[rows * seqLen];
        for (int r = 0; r < rows; r++) System.arraycopy(tokens, r * (seqLen + 1) + shift, out, r * seqLen, seqLen);
        return out;
    }
}
