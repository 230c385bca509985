package ai.mode.parallel.sched;

import ai.mode.model.nn.Parameter;
import ai.mode.parallel.comm.CommHandle;
import ai.mode.parallel.comm.Communicator;
import ai.mode.parallel.comm.ReduceOp;
import java.util.ArrayList;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Set;

/**
 * Data parallelism within a device group: the trainable gradients of a part are all-reduced (summed) over the
 * group's replicas as soon as the part's backward is done, overlapping the rest of the backward pass; each
 * parameter once per pass, in the order the parts finish, which is the same on every replica.
 */
final class GradientReduction {
    private final Communicator group;
    private final List<CommHandle> pending = new ArrayList<>();
    private final Set<Parameter> reduced = Collections.newSetFromMap(new IdentityHashMap<>());

    /** @param group the rank's group communicator; null when the group has one device (nothing to reduce) */
    GradientReduction(Communicator group) {
        this.group = group;
    }

    /** Starts a backward pass: every parameter may be reduced once again. */
    void beginPass() {
        reduced.clear();
    }

    /** Starts the all-reduce of the trainable gradients among {@code ps} not yet reduced in this pass. */
    void reduce(List<Parameter> ps) {
        if (group == null) return;
        for (Parameter p : ps) {
            if (p.trainable() && reduced.add(p)) pending.add(group.allReduce(p.grad(), ReduceOp.SUM));
        }
    }

    /** Completes the all-reduces started so far. */
    void await() {
        for (CommHandle h : pending) h.await();
        pending.clear();
    }
}
