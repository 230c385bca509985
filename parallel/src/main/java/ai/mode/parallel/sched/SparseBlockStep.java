package ai.mode.parallel.sched;

import ai.mode.model.LlamaConfig;
import ai.mode.model.mode.Routing;
import ai.mode.model.mode.TopKPlan;
import ai.mode.model.mode.TopKPlan.Branch;
import ai.mode.model.mode.TopKPlan.Packed;
import ai.mode.model.nn.BufferPool;
import ai.mode.model.nn.Parameter;
import ai.mode.runtime.Backend;
import ai.mode.runtime.Tensor;
import java.util.List;
import java.util.Map;

/**
 * One rank's side of a MoDE block under top-k routing: the {@link ai.mode.model.mode.ModeBlock} sparse path with
 * the experts' tokens dispatched by all-to-all. The merge ranks route with a {@link TopKPlan}; each routed token is
 * sent to the replica of its expert's group that owns its sequence (a {@link SparseDispatch}), the experts run on
 * per-sequence packed batches exactly as on one device, their outputs come back the same way, and the merge ranks
 * add every branch's weighted outputs in branch order. Backward sends the output gradients the same way and
 * returns input gradients by a third all-to-all.
 */
final class SparseBlockStep {
    private final RowExchange ex;
    private final Backend be;
    private final LlamaConfig cfg;
    private final Routing routing;
    private final BufferPool own;
    private final BufferPool scratch;
    private final GradientReduction grads;
    private final int d;

    SparseBlockStep(
            RowExchange ex,
            LlamaConfig cfg,
            Routing routing,
            BufferPool own,
            BufferPool scratch,
            GradientReduction grads) {
        this.ex = ex;
        this.be = ex.be;
        this.cfg = cfg;
        this.routing = routing;
        this.own = own;
        this.scratch = scratch;
        this.grads = grads;
        this.d = cfg.hiddenSize();
    }

    /** Forward of block p on this rank, whose input p.x is in place on merge ranks; returns y there, else null. */
    Tensor forward(BlockPart p) {
        p.closeSparse();
        int i = p.index, seq = ex.seq(), m = ex.myRows() * seq;
        TopKPlan plan = null;
        if (p.merge) {
            p.probs = p.router.forward(p.x); // [m, N+1]
            plan = new TopKPlan(be, p.router.routingRows(p.probs), routing, ex.myRows(), seq, own, "topk." + i);
        }
        SparseDispatch s = p.sparse = new SparseDispatch(p, ex, plan);
        // all-to-all 2: the routed rows to the experts' ranks
        Tensor sendBuf = own.get("sparse.send." + i, Math.max(1, s.sent), d);
        if (s.sendIndex != null) be.gatherRows(be.view(p.x, m, d), s.sendIndex, be.slice(sendBuf, 0, s.sent));
        Tensor recvBuf = own.get("sparse.recv." + i, Math.max(1, s.received), d);
        ex.allToAllRows(sendBuf, s.sendCounts, recvBuf, s.recvCounts, d);
        // expert ranks: run each hosted expert on its packed batch, return its outputs in the received order
        Tensor outBuf = own.get("sparse.out." + i, Math.max(1, s.received), d);
        if (!s.hosted.isEmpty()) {
            be.fill(outBuf, 0f);
            for (Map.Entry<Integer, SparseDispatch.Hosted> en : s.hosted.entrySet()) {
                Packed k = en.getValue().packed();
                Tensor xe = k.gatherInput(
                        be,
                        be.slice(recvBuf, 0, s.received),
                        own.get("sparse.hx." + i + "." + en.getKey(), k.rows(), k.len(), d));
                Tensor ye = p.single(be, cfg, scratch, en.getKey()).forward(xe); // [1, rows·len, D]
                Tensor sel = scratch.get("sparse.sel", k.selected(), d);
                k.selectOutputs(be, ye, sel);
                be.scatterAddRows(sel, en.getValue().position(), be.slice(outBuf, 0, s.received));
            }
        }
        // all-to-all 3: outputs back to the merge ranks
        Tensor returned = own.get("sparse.ret." + i, Math.max(1, s.sent), d);
        ex.allToAllRows(outBuf, s.recvCounts, returned, s.sendCounts, d);
        if (!p.merge) return null;
        // merge: weighted outputs scatter-added in branch order
        Tensor y = own.get("y." + i, ex.myRows(), seq, d);
        Tensor y2 = be.view(y, m, d);
        be.fill(y2, 0f);
        for (int br = 0; br < branches(p); br++) {
            SparseDispatch.Local lp = s.local.get(br);
            SparseDispatch.Remote rp = s.remote.get(br);
            if (lp != null) {
                Packed k = lp.packed();
                Branch b = lp.branch();
                Tensor xe = k.gatherInput(
                        be, be.view(p.x, m, d), own.get("sparse.lx." + i + "." + br, k.rows(), k.len(), d));
                Tensor ye = br == 0
                        ? p.runBackbone(xe)
                        : p.single(be, cfg, scratch, p.localPosition(br - 1)).forward(xe);
                k.selectOutputs(be, ye, be.view(b.outputs(own, d), b.selected(), d));
                b.mergeForward(be, own, scratch, s.plan.weights(), y2);
            } else if (rp != null) {
                Branch b = rp.branch();
                be.gatherRows(
                        be.slice(returned, 0, s.sent), rp.position(), be.view(b.outputs(own, d), b.selected(), d));
                b.mergeForward(be, own, scratch, s.plan.weights(), y2);
            }
        }
        return y;
    }

    /** Backward of block p: dy on merge ranks; returns dx there when {@code needInput}, else null. */
    Tensor backward(BlockPart p, Tensor dy, boolean needInput, boolean reduce) {
        SparseDispatch s = p.sparse;
        int i = p.index, seq = ex.seq(), rows = ex.myRows(), m = rows * seq, e = p.merge ? branches(p) : 0;
        boolean expertsBackward = needInput || p.expertsTrainable;
        Tensor dx2 = null, dw = null;
        Tensor dSend = own.get("sparse.dsend." + i, Math.max(1, s.sent), d);
        if (p.merge) {
            Tensor dy2 = be.view(dy, m, d);
            dx2 = be.view(own.get("dx." + i, rows, seq, d), m, d);
            be.fill(dx2, 0f);
            dw = own.get("sparse.dw." + i, s.plan.routingRows() * routing.topK(), 1);
            be.fill(dw, 0f);
            be.fill(dSend, 0f);
            // output gradients of every branch; remote experts' go into the dispatch buffer
            for (int br = 0; br < e; br++) {
                SparseDispatch.Local lp = s.local.get(br);
                SparseDispatch.Remote rp = s.remote.get(br);
                Branch b = lp != null ? lp.branch() : rp != null ? rp.branch() : null;
                if (b == null) continue;
                Tensor dysel = b.mergeBackward(be, own, scratch, dy2, dw);
                if (rp != null)
                    be.scatterAddRows(be.view(dysel, b.selected(), d), rp.position(), be.slice(dSend, 0, s.sent));
            }
        }
        // output gradients to the expert ranks, which run backward and return input gradients
        Tensor dRecv = own.get("sparse.drecv." + i, Math.max(1, s.received), d);
        Tensor dxBack = own.get("sparse.dxback." + i, Math.max(1, s.received), d);
        if (expertsBackward) {
            ex.allToAllRows(dSend, s.sendCounts, dRecv, s.recvCounts, d);
            if (!s.hosted.isEmpty()) {
                be.fill(dxBack, 0f);
                for (Map.Entry<Integer, SparseDispatch.Hosted> en : s.hosted.entrySet()) {
                    Packed k = en.getValue().packed();
                    Tensor position = en.getValue().position();
                    Tensor sel = scratch.get("sparse.dsel", k.selected(), d);
                    be.gatherRows(be.slice(dRecv, 0, s.received), position, sel);
                    Tensor dye3 = k.scatterGradient(be, sel, scratch.get("sparse.dye", k.rows() * k.len(), d));
                    Tensor dxe = p.single(be, cfg, scratch, en.getKey())
                            .backward(be.view(dye3, 1, k.rows() * k.len(), d), true);
                    if (needInput) {
                        k.selectOutputs(be, dxe, sel);
                        be.scatterAddRows(sel, position, be.slice(dxBack, 0, s.received));
                    }
                }
            }
            if (reduce && !p.merge) grads.reduce(p.expertParameters()); // every replica, routed tokens or not
        }
        Tensor dReturned = own.get("sparse.dret." + i, Math.max(1, s.sent), d);
        if (expertsBackward && needInput) ex.allToAllRows(dxBack, s.recvCounts, dReturned, s.sendCounts, d);
        if (!p.merge) return null;
        // input gradients in branch order: local branches run here, remote ones came back
        for (int br = 0; br < e; br++) {
            SparseDispatch.Local lp = s.local.get(br);
            SparseDispatch.Remote rp = s.remote.get(br);
            if (lp != null) {
                if (!needInput && !(br == 0 ? p.backboneTrainable : p.expertsTrainable)) continue;
                Branch b = lp.branch();
                Packed k = lp.packed();
                Tensor dye3 = k.scatterGradient(
                        be,
                        be.view(b.outputGradient(own, d), b.selected(), d),
                        scratch.get("sparse.dye", k.rows() * k.len(), d));
                Tensor dxe = br == 0
                        ? p.backboneBackward(dye3)
                        : p.single(be, cfg, scratch, p.localPosition(br - 1))
                                .backward(be.view(dye3, 1, k.rows() * k.len(), d), true);
                if (!needInput) continue;
                Tensor dxsel = scratch.get("sparse.dxsel", b.selected(), d);
                k.selectOutputs(be, dxe, dxsel);
                b.addInputGradient(be, dxsel, dx2);
            } else if (rp != null && needInput) {
                Tensor dxsel = scratch.get("sparse.dxsel", rp.branch().selected(), d);
                be.gatherRows(be.slice(dReturned, 0, s.sent), rp.position(), dxsel);
                rp.branch().addInputGradient(be, dxsel, dx2);
            }
        }
        if (reduce && p.backboneTrainable) grads.reduce(p.backboneParameters());
        if (reduce) grads.reduce(p.expertParameters());
        Tensor dProbs = own.get("sparse.dprobs." + i, s.plan.routingRows(), e);
        be.copyFromHost(s.plan.probabilityGradient(be.toHostFloats(dw)), dProbs);
        p.router.backwardRows(dProbs, dx2, needInput);
        if (reduce && p.gateTrainable) grads.reduce(gateParameters(p));
        return needInput ? own.get("dx." + i, rows, seq, d) : null;
    }

    private static int branches(BlockPart p) {
        return p.router.gate().branches();
    }

    private static List<Parameter> gateParameters(BlockPart p) {
        return p.router.gate().parameters();
    }
}
