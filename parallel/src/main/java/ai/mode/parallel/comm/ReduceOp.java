package ai.mode.parallel.comm;

/**
 * Reduction operators of the collectives (the subset NCCL and the hub transports both implement). How
 * {@link Communicator#allReduce} and {@link Communicator#reduceScatter} combine the ranks' values.
 */
public enum ReduceOp {
    /** Elementwise sum, accumulated in rank order. */
    SUM,
    /** Elementwise sum in rank order, divided by the number of ranks. */
    AVG,
    /** Elementwise maximum. */
    MAX
}
