package ai.mode.parallel.sched;

import ai.mode.model.nn.BufferPool;
import ai.mode.parallel.comm.CommHandle;
import ai.mode.parallel.place.Placement;
import ai.mode.runtime.Backend;
import ai.mode.runtime.Tensor;
import java.util.ArrayList;
import java.util.List;

/**
 * One rank's side of a MoDE block under dense routing, the {@link ai.mode.model.mode.ModeBlock} computation spread
 * over the block's groups. Forward: each expert group runs its experts as one batched stack on the block input and
 * sends their outputs to the merge group, which meanwhile runs the gate and the backbone slice, then fills the
 * {@link ai.mode.model.mode.DenseMerge}'s branch stack and merges. Backward: the merge group computes the branch
 * and gate gradients and sends each expert group its experts' output gradients; that group runs backward and
 * returns its input-gradient sum; the merge group adds backbone, expert groups (in group order) and gate.
 */
final class DenseBlockStep {
    private final RowExchange ex;
    private final Placement pl;
    private final Backend be;
    private final BufferPool own;
    private final GradientReduction grads;
    private final int d;

    DenseBlockStep(RowExchange ex, BufferPool own, GradientReduction grads, int hidden) {
        this.ex = ex;
        this.pl = ex.pl;
        this.be = ex.be;
        this.own = own;
        this.grads = grads;
        this.d = hidden;
    }

    /** Expert e's slice of a stacked [E, m, D] tensor viewed as [rows, T·D]. */
    private Tensor branchRows(Tensor stacked, int e) {
        return be.view(be.slice(stacked, e, 1), ex.myRows(), ex.seq() * d);
    }

    /** Forward of block p on this rank, whose input p.x is in place; returns y [rows, T, D] on merge ranks, else null. */
    Tensor forward(BlockPart p) {
        int i = p.index, seq = ex.seq(), m = ex.myRows() * seq, merge = pl.mergeGroup(i), rowElems = seq * d;
        List<CommHandle> sends = new ArrayList<>();
        if (p.experts.length > 0) {
            p.expertOut = p.stack.forward(p.x); // [E_local, m, D]
            if (!p.merge)
                for (int e = 0; e < p.experts.length; e++)
                    sends.add(ex.reshard(branchRows(p.expertOut, e), ex.group, null, merge, rowElems));
        }
        Tensor y = null;
        if (p.merge) {
            Tensor branches = p.dense.branches(m, d); // [N+1, m, D]
            List<CommHandle> recvs = new ArrayList<>();
            for (int g : pl.expertGroups(i)) {
                if (g == merge) continue;
                for (int j : pl.expertsOn(i, g))
                    recvs.add(ex.reshard(null, g, branchRows(branches, j + 1), merge, rowElems));
            }
            p.probs = p.router.forward(p.x); // [m, N+1]
            be.copy(p.runBackbone(p.x), be.slice(branches, 0, 1));
            for (int e = 0; e < p.experts.length; e++)
                be.copy(be.slice(p.expertOut, e, 1), be.slice(branches, p.experts[e] + 1, 1));
            CommHandle.all(recvs).await();
            y = own.get("y." + i, ex.myRows(), seq, d);
            p.dense.forward(p.probs, be.view(p.x, m, d), be.view(y, m, d));
        }
        CommHandle.all(sends).await();
        return y;
    }

    /** Backward of block p: dy on merge ranks; returns dx on merge ranks when {@code needInput}, else null. */
    Tensor backward(BlockPart p, Tensor dy, boolean needInput, boolean reduce) {
        int i = p.index, seq = ex.seq(), rows = ex.myRows(), m = rows * seq;
        int merge = pl.mergeGroup(i), rowElems = seq * d;
        boolean expertsBackward = needInput || p.expertsTrainable;
        Tensor dBranches = null;
        List<CommHandle> sends = new ArrayList<>();
        if (p.merge) {
            dBranches = p.dense.backward(be.view(dy, m, d)); // [N+1, m, D]
            if (expertsBackward) {
                for (int g : pl.expertGroups(i)) {
                    if (g == merge) continue;
                    for (int j : pl.expertsOn(i, g))
                        sends.add(ex.reshard(branchRows(dBranches, j + 1), merge, null, g, rowElems));
                }
            }
        }
        Tensor dxExperts = null;
        if (p.experts.length > 0 && expertsBackward) {
            Tensor dOut = own.get("dexperts." + i, p.experts.length, m, d);
            if (p.merge) {
                for (int e = 0; e < p.experts.length; e++)
                    be.copy(be.slice(dBranches, p.experts[e] + 1, 1), be.slice(dOut, e, 1));
            } else {
                List<CommHandle> recvs = new ArrayList<>();
                for (int e = 0; e < p.experts.length; e++)
                    recvs.add(ex.reshard(null, merge, branchRows(dOut, e), ex.group, rowElems));
                CommHandle.all(recvs).await();
            }
            dxExperts = p.stack.backward(dOut, needInput); // [rows, T, D] or null
            if (reduce) grads.reduce(p.expertParameters());
            if (needInput && !p.merge) sends.add(ex.reshard(dxExperts, ex.group, null, merge, rowElems));
        }
        Tensor dx = null;
        if (p.merge) {
            Tensor dxB = null;
            if (needInput || p.backboneTrainable) {
                dxB = p.backboneBackward(be.view(be.slice(dBranches, 0, 1), rows, seq, d));
                if (reduce) grads.reduce(p.backboneParameters());
            }
            Tensor dxG = null;
            if (needInput || p.gateTrainable) {
                dxG = p.router.backward(p.dense.probabilityGradient(), needInput);
                if (reduce) grads.reduce(p.router.gate().parameters());
            }
            if (needInput) {
                dx = own.get("dx." + i, rows, seq, d);
                Tensor dx2 = be.view(dx, m, d);
                be.copy(dxB, dx);
                for (int g : pl.expertGroups(i)) {
                    if (g == merge) {
                        be.add(dx2, be.view(dxExperts, m, d), dx2);
                    } else {
                        Tensor part = own.get("dxe." + i + "." + g, rows, seq, d);
                        ex.reshard(null, g, part, merge, rowElems).await();
                        be.add(dx2, be.view(part, m, d), dx2);
                    }
                }
                be.add(dx2, dxG, dx2);
                p.dense.addInputGradient(dx2);
            }
        }
        CommHandle.all(sends).await();
        return dx;
    }
}
