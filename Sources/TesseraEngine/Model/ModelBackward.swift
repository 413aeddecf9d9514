import Foundation
import TesseraCore

/// Buffers that only the backward pass needs; one set serves every layer.
final class BackwardBuffers: @unchecked Sendable {
    let dRes: FloatBuffer, dh: FloatBuffer, dlogits: FloatBuffer
    let dq: FloatBuffer, dk: FloatBuffer, dv: FloatBuffer, dqPre: FloatBuffer, dkPre: FloatBuffer
    let dAttn: FloatBuffer, dY: FloatBuffer, dXDisp: FloatBuffer, dRouter: FloatBuffer, dMLP: FloatBuffer, dRow: FloatBuffer
    /// Latent attention: gradients of kv_b's output, kv_a's output, and the two latents.
    let dKvB: FloatBuffer, dKvA: FloatBuffer, dLatent: FloatBuffer, dQA: FloatBuffer

    init(config c: ModelConfig, tokens T: Int) {
        let H = c.hiddenSize, TK = T * c.topK
        dRes = FloatBuffer(count: T * H)
        dh = FloatBuffer(count: T * H)
        dlogits = FloatBuffer(count: T * c.vocabSize)
        dq = FloatBuffer(count: T * c.qDim)
        dk = FloatBuffer(count: T * c.kvDim)
        dv = FloatBuffer(count: T * c.vDim)
        dqPre = FloatBuffer(count: c.qkNorm == .none ? 0 : T * c.qDim)
        dkPre = FloatBuffer(count: c.qkNorm == .none ? 0 : T * c.kvDim)
        dAttn = FloatBuffer(count: T * c.attnDim)
        let m = c.latentAttention
        dKvB = FloatBuffer(count: m.map { T * c.heads * ($0.nopeDim + $0.valueDim) } ?? 0)
        dKvA = FloatBuffer(count: m.map { T * ($0.kvRank + $0.ropeDim) } ?? 0)
        dLatent = FloatBuffer(count: m.map { T * max($0.kvRank, $0.queryRank ?? 0) } ?? 0)
        dQA = FloatBuffer(count: m.map { T * ($0.queryRank ?? 0) } ?? 0)
        let sparse = c.sparseLayers.contains(true)
        dY = FloatBuffer(count: sparse ? TK * H : 0)
        dXDisp = FloatBuffer(count: sparse ? TK * H : 0)
        dRouter = FloatBuffer(count: sparse ? T * c.experts : 0)
        dMLP = FloatBuffer(count: T * H)
        dRow = FloatBuffer(count: max(TK, T))
    }
}

extension ModelRun {
    /// Runs forward and backward, adding ∂(mean loss)/∂θ into `grads` (laid out like the
    /// parameters) for the trainable tensors only. Returns the loss.
    @discardableResult
    public func lossAndGradients(_ tokens: TokenBatch, trainable: TrainableSet, grads: FloatBuffer,
                                 buffers: BackwardWorkspace? = nil) throws -> Double {
        guard training else { throw EngineError.invalidInput("this run was made for evaluation; create it with training: true") }
        precondition(grads.count == model.parameters.count, "gradient buffer must match the parameter buffer")
        let loss = try forward(tokens)
        let work = buffers ?? BackwardWorkspace(run: self)
        PhaseTimer.shared.measure("bwd.total") { backward(trainable: trainable, grads: grads, b: work.buffers) }
        return loss
    }

    func backward(trainable tr: TrainableSet, grads: FloatBuffer, b: BackwardBuffers) {
        let c = config, H = c.hiddenSize, V = c.vocabSize
        let P = model.parameters.pointer, G = grads.pointer
        let w = model.layout
        // needBelow[l]: some trainable tensor lives under layer l (lower layers or embedding),
        // so the gradient must flow out of layer l's input.
        var needBelow = [Bool](repeating: false, count: c.layers + 1)
        var below = tr.contains(w.embed)
        for l in 0..<c.layers {
            needBelow[l] = below
            below = below || layerHasTrainable(l, tr)
        }
        let needAny = below || tr.contains(w.finalNorm)
        _ = crossEntropyLoss(logits.pointer, ids: ids.pointer, batch: batch, seq: seq, vocab: V,
                             rowLoss: rowLoss.pointer, dlogits: b.dlogits.pointer)
        if tr.contains(w.lmHead) {
            linearBackwardWeight(b.dlogits.pointer, xFinal.pointer, G + w.lmHead.offset, rows: T, inDim: H, outDim: V, precision: matmul)
        }
        guard needAny else { return }
        let dRes = b.dRes.pointer
        linearBackwardInput(b.dlogits.pointer, P + w.lmHead.offset, b.dh.pointer, rows: T, inDim: H, outDim: V, accumulate: false, precision: matmul)
        dRes.update(repeating: 0, count: T * H)
        rmsNormBackward(xFinalIn.pointer, P + w.finalNorm.offset, rinvF.pointer, b.dh.pointer, dx: dRes,
                        dw: tr.contains(w.finalNorm) ? G + w.finalNorm.offset : nil, rows: T, dim: H)
        // A recomputed layer counts its routing again; the pass's statistics are the forward's.
        let forwardStats = routerStats
        for l in stride(from: c.layers - 1, through: 0, by: -1) {
            if !layerHasTrainable(l, tr) && !needBelow[l] { break }
            if recomputesActivations {
                PhaseTimer.shared.measure("bwd.recompute") {
                    x.pointer.update(from: layerInputs[l].pointer, count: T * H)
                    layerForward(l, acts[0])
                }
                routerStats = forwardStats
            }
            layerBackward(l, tr, needInputGrad: needBelow[l], grads: G, b: b)
        }
        if tr.contains(w.embed) {
            let dE = G + w.embed.offset
            for t in 0..<T where Int(ids.pointer[t]) != c.paddingIndex { axpy(1, dRes + t * H, dE + Int(ids.pointer[t]) * H, H) }
        }
    }

    func layerHasTrainable(_ l: Int, _ tr: TrainableSet) -> Bool {
        let lw = model.layout.layers[l]
        if attentionHasTrainable(lw, tr) || tr.contains(lw.postNorm) || tr.contains(lw.router) || tr.contains(lw.routerLogitBias)
            || tr.contains(lw.sharedExpertGate) {
            return true
        }
        for m in [lw.sharedExpert, lw.dense].compactMap({ $0 }) where tr.contains(m.gate) || tr.contains(m.up) || tr.contains(m.down) {
            return true
        }
        return lw.experts.indices.contains { tr.containsExpert(layer: l, expert: $0, lw.experts[$0]) }
    }

    func attentionHasTrainable(_ lw: LayerWeights, _ tr: TrainableSet) -> Bool {
        if tr.contains(lw.inputNorm) { return true }
        if let la = lw.latentAttention, la.all.contains(where: { tr.contains($0) }) { return true }
        guard let a = lw.attention else { return false }
        return [a.q, a.k, a.v, a.o, a.qBias, a.kBias, a.vBias, a.oBias, a.qNorm, a.kNorm, a.sinks].contains { tr.contains($0) }
    }

    private func layerBackward(_ l: Int, _ tr: TrainableSet, needInputGrad: Bool, grads G: UnsafeMutablePointer<Float>, b: BackwardBuffers) {
        let c = config, H = c.hiddenSize
        let P = model.parameters.pointer
        let lw = model.layout.layers[l]
        let a = activations(l)
        let dRes = b.dRes.pointer, dh = b.dh.pointer
        let attnTrainable = attentionHasTrainable(lw, tr)
        // The MLP block's input gradient is needed when anything at or below this layer's
        // post-attention norm trains.
        let needDh2 = needInputGrad || attnTrainable || tr.contains(lw.postNorm)
        if needDh2 { dh.update(repeating: 0, count: T * H) }
        let dh2: UnsafeMutablePointer<Float>? = needDh2 ? dh : nil
        if let router = lw.router {
            PhaseTimer.shared.measure("bwd.moe") { moeBackward(l, lw, router: router, a, tr, dh2: dh2, grads: G, b: b) }
        } else if let dense = lw.dense {
            let trains = tr.contains(dense.gate) || tr.contains(dense.up) || tr.contains(dense.down)
            mlpBackward(a.h2.pointer, MLPPointers(dense, base: P), rows: T, hidden: H, gu: a.mlpGU!.pointer,
                        dy: dRes, grads: trains ? MLPPointers(dense, base: G) : nil, dx: dh2,
                        scratchA: mlpScratchA.pointer, scratchB: mlpScratchB.pointer, precision: matmul)
        }
        guard needDh2 else { return }
        rmsNormBackward(a.xMid.pointer, P + lw.postNorm.offset, a.rinv2.pointer, dh, dx: (attnTrainable || needInputGrad) ? dRes : nil,
                        dw: tr.contains(lw.postNorm) ? G + lw.postNorm.offset : nil, rows: T, dim: H)
        guard attnTrainable || needInputGrad else { return }
        PhaseTimer.shared.measure("bwd.attention_block") {
            if let aw = lw.attention {
                attentionBlockBackward(l, lw, aw, a, tr, needInputGrad: needInputGrad, grads: G, b: b)
            } else if let la = lw.latentAttention {
                latentAttentionBackward(l, lw, la, a, tr, needInputGrad: needInputGrad, grads: G, b: b)
            }
        }
    }

    private func attentionBlockBackward(_ l: Int, _ lw: LayerWeights, _ aw: AttentionWeights, _ a: LayerActivations, _ tr: TrainableSet,
                                        needInputGrad: Bool, grads G: UnsafeMutablePointer<Float>, b: BackwardBuffers) {
        let c = config, H = c.hiddenSize
        let P = model.parameters.pointer
        let dRes = b.dRes.pointer, dh = b.dh.pointer
        let dq = b.dq.pointer, dk = b.dk.pointer, dv = b.dv.pointer, dAttn = b.dAttn.pointer
        if tr.contains(aw.o) { linearBackwardWeight(dRes, a.attn.pointer, G + aw.o.offset, rows: T, inDim: c.qDim, outDim: H, precision: matmul) }
        if let ob = aw.oBias, tr.contains(ob) { columnSums(dRes, into: G + ob.offset, rows: T, dim: H) }
        linearBackwardInput(dRes, P + aw.o.offset, dAttn, rows: T, inDim: c.qDim, outDim: H, accumulate: false, precision: matmul)
        dq.update(repeating: 0, count: T * c.qDim)
        dk.update(repeating: 0, count: T * c.kvDim)
        dv.update(repeating: 0, count: T * c.kvDim)
        attentionBackward(a.q.pointer, a.k.pointer, a.v.pointer, probs: a.probs!.pointer, dAttn, dq, dk, dv,
                          scratch: attnScratch.pointer, shape: attentionShape(l), precision: matmul,
                          dSinks: aw.sinks.flatMap { tr.contains($0) ? G + $0.offset : nil })
        applyRotary(dq, table: rotary, batch: batch, seq: seq, heads: c.heads, headDim: c.headDim, inverse: true)
        applyRotary(dk, table: rotary, batch: batch, seq: seq, heads: c.kvHeads, headDim: c.headDim, inverse: true)
        if let clip = c.clipQKV {
            clampBackward(a.qNormed?.pointer ?? a.qProj.pointer, dq, T * c.qDim, clip)
            clampBackward(a.kNormed?.pointer ?? a.kProj.pointer, dk, T * c.kvDim, clip)
            clampBackward(a.vProj.pointer, dv, T * c.kvDim, clip)
        }
        var dqProj = dq, dkProj = dk
        if let qn = aw.qNorm, let kn = aw.kNorm {
            let perHead = c.qkNorm == .perHead
            dqProj = b.dqPre.pointer
            dkProj = b.dkPre.pointer
            dqProj.update(repeating: 0, count: T * c.qDim)
            dkProj.update(repeating: 0, count: T * c.kvDim)
            rmsNormBackward(a.qProj.pointer, P + qn.offset, a.rinvQ!.pointer, dq, dx: dqProj, dw: tr.contains(qn) ? G + qn.offset : nil,
                            rows: perHead ? T * c.heads : T, dim: perHead ? c.headDim : c.qDim)
            rmsNormBackward(a.kProj.pointer, P + kn.offset, a.rinvK!.pointer, dk, dx: dkProj, dw: tr.contains(kn) ? G + kn.offset : nil,
                            rows: perHead ? T * c.kvHeads : T, dim: perHead ? c.headDim : c.kvDim)
        }
        let h1 = a.h1.pointer
        for (d, view, bias, outDim) in [(dqProj, aw.q, aw.qBias, c.qDim), (dkProj, aw.k, aw.kBias, c.kvDim), (UnsafeMutablePointer(dv), aw.v, aw.vBias, c.kvDim)] {
            if tr.contains(view) { linearBackwardWeight(d, h1, G + view.offset, rows: T, inDim: H, outDim: outDim, precision: matmul) }
            if let bias, tr.contains(bias) { columnSums(d, into: G + bias.offset, rows: T, dim: outDim) }
        }
        guard needInputGrad || tr.contains(lw.inputNorm) else { return }
        linearBackwardInput(dqProj, P + aw.q.offset, dh, rows: T, inDim: H, outDim: c.qDim, accumulate: false, precision: matmul)
        linearBackwardInput(dkProj, P + aw.k.offset, dh, rows: T, inDim: H, outDim: c.kvDim, precision: matmul)
        linearBackwardInput(dv, P + aw.v.offset, dh, rows: T, inDim: H, outDim: c.kvDim, precision: matmul)
        rmsNormBackward(a.xIn.pointer, P + lw.inputNorm.offset, a.rinv1.pointer, dh, dx: needInputGrad ? dRes : nil,
                        dw: tr.contains(lw.inputNorm) ? G + lw.inputNorm.offset : nil, rows: T, dim: H)
    }

    private func moeBackward(_ l: Int, _ lw: LayerWeights, router: ParamView, _ a: LayerActivations, _ tr: TrainableSet,
                             dh2: UnsafeMutablePointer<Float>?, grads G: UnsafeMutablePointer<Float>, b: BackwardBuffers) {
        let c = config, H = c.hiddenSize, E = c.experts, K = c.topK, I = c.expertWidth
        let P = model.parameters.pointer
        let dOut = b.dRes.pointer
        let topIdx = a.topIdx!.pointer, topW = a.topW!.pointer, slotPos = a.slotPos!.pointer
        let y = a.y!.pointer, dY = b.dY.pointer, dw = b.dRow.pointer
        let start = a.expertStart
        let expertTrains = (0..<E).map { tr.containsExpert(layer: l, expert: $0, lw.experts[$0]) }
        let routerNeeded = dh2 != nil || tr.contains(router) || tr.contains(lw.routerLogitBias)
        // dY for each (token, slot) = weight · dOut; dw = ⟨dOut, Y⟩ feeds the router.
        Parallel.ranges(T, work: T * K * H) { range in
            for t in range {
                for k in 0..<K {
                    let i = t * K + k
                    let pos = Int(slotPos[i])
                    let e = Int(topIdx[i])
                    if routerNeeded { dw[i] = dot(dOut + t * H, y + pos * H, H) }
                    if dh2 != nil || expertTrains[e] {
                        let dst = dY + pos * H, src = dOut + t * H, wt = topW[i]
                        for j in 0..<H { dst[j] = wt * src[j] }
                    }
                }
            }
        }
        let dXd = b.dXDisp.pointer
        let order = expertsBySize(start)
        let sA = mlpScratchA.pointer, sB = mlpScratchB.pointer
        let xd = a.xDisp!.pointer, gu = a.gu!.pointer
        let sink = expertGradients
        Parallel.forEach(E) { i in
            let e = order[i]
            let n = start[e + 1] - start[e]
            if n == 0 || (dh2 == nil && !expertTrains[e]) { return }
            let r = start[e]
            if dh2 != nil { (dXd + r * H).update(repeating: 0, count: n * H) }
            let w = lw.experts[e]
            // A sink's expert: its weight gradient goes to a scratch the sink then consumes.
            let lent = expertTrains[e] && sink?.takes(layer: l, expert: e) == true
                ? FloatBuffer(count: w.gate.count + w.up.count + w.down.count) : nil
            let lentDown = lent.map { $0.pointer + w.gate.count + w.up.count }
            var grads = expertTrains[e] ? MLPPointers(w, base: G) : nil
            if let lent, let lentDown {
                grads?.gateUp = lent.pointer
                grads?.down = lentDown
                grads?.gateUpBias = nil
                grads?.downBias = nil
            }
            mlpBackward(xd + r * H, MLPPointers(w, base: P), rows: n, hidden: H,
                        gu: gu + r * 2 * I, dy: dY + r * H, grads: grads,
                        dx: dh2 != nil ? dXd + r * H : nil,
                        scratchA: sA + r * I, scratchB: sB + r * 2 * I, parallel: false, precision: matmul)
            if let lent, let lentDown, let sink {
                sink.consume(ExpertGradient(layer: l, expert: e, weights: w, gateUp: lent.pointer, down: lentDown))
            }
        }
        if let dh2 {
            Parallel.ranges(T, work: T * K * H) { range in
                for t in range {
                    for k in 0..<K { axpy(1, dXd + Int(slotPos[t * K + k]) * H, dh2 + t * H, H) }
                }
            }
        }
        if routerNeeded {
            let probs = a.routerProbs!.pointer, dLogits = b.dRouter.pointer
            // ∂(coef · aux)/∂pₑ for every token: coef · E · fₑ / (L·T); f does not depend on p.
            var auxGrad = [Float](repeating: 0, count: E)
            if routerAuxLossCoefficient > 0 {
                let sparse = (0..<c.layers).filter { c.sparseLayers[$0] }
                let n = Double(sparse.count * T)
                for e in 0..<E {
                    let f = Double(sparse.reduce(0) { $0 + routerStats.counts[$1][e] }) / n
                    auxGrad[e] = Float(Double(routerAuxLossCoefficient) * Double(E) * f / n)
                }
            }
            let scale = c.router.scale
            for t in 0..<T {
                let p = probs + t * E, dl = dLogits + t * E
                dl.update(repeating: 0, count: E)
                // dl holds ∂L/∂p first (p the scores), then becomes ∂L/∂logits. A weight is
                // scale · p_k, or scale · p_k / Σ p_j over the chosen when renormalised.
                if c.router.scoring == .softmaxOfTopK {
                    // Weights are the softmax of the chosen logits: the gradient reaches those only.
                    var weighted: Float = 0
                    for k in 0..<K { weighted += dw[t * K + k] * topW[t * K + k] }
                    for k in 0..<K { dl[Int(topIdx[t * K + k])] += topW[t * K + k] * (dw[t * K + k] - weighted) }
                } else if c.normTopKProb {
                    var sum: Float = 0, weighted: Float = 0
                    for k in 0..<K { sum += p[Int(topIdx[t * K + k])] }
                    for k in 0..<K { weighted += dw[t * K + k] * p[Int(topIdx[t * K + k])] / sum }
                    for k in 0..<K { dl[Int(topIdx[t * K + k])] += scale * (dw[t * K + k] - weighted) / sum }
                } else {
                    for k in 0..<K { dl[Int(topIdx[t * K + k])] += scale * dw[t * K + k] }
                }
                switch c.router.scoring {
                case .softmax:
                    if routerAuxLossCoefficient > 0 { for e in 0..<E { dl[e] += auxGrad[e] } }
                    let s = dot(p, dl, E)
                    for e in 0..<E { dl[e] = p[e] * (dl[e] - s) }
                case .sigmoid:
                    for e in 0..<E { dl[e] *= p[e] * (1 - p[e]) }
                case .softmaxOfTopK: break
                }
            }
            if let b = lw.routerLogitBias, tr.contains(b) { columnSums(dLogits, into: G + b.offset, rows: T, dim: E) }
            if tr.contains(router) { linearBackwardWeight(dLogits, a.h2.pointer, G + router.offset, rows: T, inDim: H, outDim: E, precision: matmul.routerPrecision) }
            if let dh2 { linearBackwardInput(dLogits, P + router.offset, dh2, rows: T, inDim: H, outDim: E, precision: matmul.routerPrecision) }
        }
        if let shared = lw.sharedExpert {
            let sg = a.sharedGate!.pointer, sy = a.mlpY!.pointer, h2 = a.h2.pointer
            var dS = b.dMLP.pointer
            let gate = lw.sharedExpertGate
            let gateTrains = tr.contains(gate)
            let trains = tr.contains(shared.gate) || tr.contains(shared.up) || tr.contains(shared.down)
            if gate == nil { dS = dOut }
            for t in 0..<T {
                guard let gate else { break }
                let s = sg[t]
                let dz = dot(dOut + t * H, sy + t * H, H) * s * (1 - s)
                if gateTrains { axpy(dz, h2 + t * H, G + gate.offset, H) }
                if let dh2 { axpy(dz, P + gate.offset, dh2 + t * H, H) }
                let dst = dS + t * H, src = dOut + t * H
                for j in 0..<H { dst[j] = s * src[j] }
            }
            mlpBackward(h2, MLPPointers(shared, base: P), rows: T, hidden: H, gu: a.mlpGU!.pointer, dy: dS,
                        grads: trains ? MLPPointers(shared, base: G) : nil, dx: dh2,
                        scratchA: mlpScratchA.pointer, scratchB: mlpScratchB.pointer, precision: matmul)
        }
    }
}

/// One routed expert's weight gradient, complete for this backward pass: gate and up rows
/// (as the model lays them out, one after the other), then down.
public struct ExpertGradient {
    public let layer: Int, expert: Int
    public let weights: MLPWeights
    public let gateUp: UnsafePointer<Float>
    public let down: UnsafePointer<Float>

    /// The gradient of a view of this expert's gate, up or down matrix.
    public func pointer(_ view: ParamView) -> UnsafePointer<Float> {
        view.offset >= weights.down.offset && view.offset < weights.down.offset + weights.down.count
            ? down + (view.offset - weights.down.offset) : gateUp + (view.offset - weights.gate.offset)
    }
}

/// Takes over the weight gradients of some routed experts: the backward pass computes
/// each into a scratch and hands it over once complete (low-rank adapters project it onto
/// their factors), so no full-size gradient of those experts is ever written. `consume`
/// is called from several threads at once, for different experts.
public protocol ExpertGradientSink: AnyObject, Sendable {
    func takes(layer: Int, expert: Int) -> Bool
    func consume(_ gradient: ExpertGradient)
}

/// Backward-only buffers, kept apart from a run so several runs can share one set.
public final class BackwardWorkspace: @unchecked Sendable {
    let buffers: BackwardBuffers
    public init(run: ModelRun) { buffers = BackwardBuffers(config: run.config, tokens: run.T) }
}



/// torch's clamp passes the gradient where min ≤ x ≤ max.
@inlinable func clampBackward(_ x: UnsafePointer<Float>, _ d: UnsafeMutablePointer<Float>, _ n: Int, _ limit: Float) {
    for i in 0..<n where x[i] > limit || x[i] < -limit { d[i] = 0 }
}
