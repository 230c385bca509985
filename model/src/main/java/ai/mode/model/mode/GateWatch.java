package ai.mode.model.mode;

import java.util.List;
import java.util.Map;

/**
 * A MoDE model whose gates can be watched while it trains ({@link RouterMonitor}): a {@link ModeModel} on one device,
 * or the ranks of a model placed on several, where the ranks that hold a block's gate count its rows and the sums
 * are added over the ranks.
 */
public interface GateWatch {
    /** Starts router statistics ({@link GateStatistics}) with fresh sums, rows labelled by these domain names. */
    void watchGates(List<String> domains);

    /**
     * The domain of every sequence of the next micro-batch (indices into the domain names; null: not known); counting
     * is on until {@link #takeGateStatistics}.
     */
    void gateRows(int[] rowDomain);

    /**
     * The statistics since the start or the last take, per domain with tokens and per block; then zeroes them and
     * stops counting until the next {@link #gateRows}. On a placed model a collective: every process calls it.
     */
    Map<String, List<RouterStatistics.Summary>> takeGateStatistics();

    /** Stops watching. */
    void unwatchGates();
}
