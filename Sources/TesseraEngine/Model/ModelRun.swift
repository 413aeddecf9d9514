import Foundation
import TesseraCore

/// One forward pass (and, for training, one backward pass) of a model over a token batch.
/// Holds every buffer it needs, sized for the batch; reuse it for batches of one shape.
public final class ModelRun: @unchecked Sendable {
    public let model: MoEModel
    public let batch: Int
    public let seq: Int
    public let training: Bool
    /// Training that keeps one layer's activations instead of every layer's: the forward
    /// pass keeps each layer's input, and the backward pass runs each layer's forward
    /// pass again just before its backward. A forward pass more per step; the same bits.
    public let recomputesActivations: Bool
    let config: ModelConfig
    /// Rows of this pass: batch · seq, or the rows of a decoding step (see `Decoder`).
    var T: Int
    let ids: IndexBuffer
    let acts: [LayerActivations]
    /// With `recomputesActivations`: each layer's input residual [T, H].
    let layerInputs: [FloatBuffer]
    /// Each sparse layer's router probabilities summed over tokens [layers][experts], for
    /// the load-balancing loss (kept apart from the activations, which may be recomputed).
    var routerProbSums: [[Double]]
    let x: FloatBuffer          // residual stream [T, H]
    let xFinalIn: FloatBuffer   // residual entering the final norm
    let xFinal: FloatBuffer     // normed [T, H]
    let rinvF: FloatBuffer
    public let logits: FloatBuffer
    let rowLoss: FloatBuffer
    let attnScratch: FloatBuffer
    let mlpScratchA: FloatBuffer
    let mlpScratchB: FloatBuffer
    var rotary: RotaryTable
    /// Each row's position when decoding (nil: row t is at t mod seq).
    var rowPositions: UnsafePointer<Int32>?
    /// The key/value caches a decoding step attends over (nil: ordinary causal attention).
    var decoding: DecodeStep?
    public internal(set) var routerStats: RouterStats
    /// Weight of the load-balancing auxiliary loss (transformers' `router_aux_loss_coef`)
    /// in the gradients `lossAndGradients` computes; 0 leaves it out. The loss returned is
    /// always the cross-entropy alone.
    public var routerAuxLossCoefficient: Float = 0
    /// Where the weight gradients of some trained experts go instead of the gradient
    /// buffer (nil: all go to the buffer).
    public var expertGradients: ExpertGradientSink?
    /// How this run's matrix products are computed (see `MatmulPrecision`).
    public var matmul: MatmulPrecision = .machineDefault

    public convenience init(model: MoEModel, batch: Int, seq: Int, training: Bool, recomputeActivations: Bool = false) {
        self.init(model: model, batch: batch, seq: seq, training: training, logitRows: batch * seq, recomputeActivations: recomputeActivations)
    }

    /// `logitRows` below batch · seq is for decoding, whose head runs on a few rows.
    init(model: MoEModel, batch: Int, seq: Int, training: Bool, logitRows: Int, recomputeActivations: Bool = false) {
        self.model = model
        self.batch = batch
        self.seq = seq
        self.training = training
        recomputesActivations = training && recomputeActivations
        let c = model.config
        config = c
        T = batch * seq
        ids = IndexBuffer(count: T)
        acts = training && !recomputeActivations
            ? (0..<c.layers).map { LayerActivations(config: c, layer: $0, tokens: batch * seq, batch: batch, seq: seq, training: true) }
            : [LayerActivations(config: c, layer: nil, tokens: batch * seq, batch: batch, seq: seq, training: training)]
        layerInputs = training && recomputeActivations ? (0..<c.layers).map { _ in FloatBuffer(count: batch * seq * c.hiddenSize) } : []
        routerProbSums = [[Double]](repeating: [], count: c.layers)
        x = FloatBuffer(count: T * c.hiddenSize)
        xFinalIn = FloatBuffer(count: training ? T * c.hiddenSize : 0)
        xFinal = FloatBuffer(count: T * c.hiddenSize)
        rinvF = FloatBuffer(count: T)
        logits = FloatBuffer(count: logitRows * c.vocabSize)
        rowLoss = FloatBuffer(count: logitRows)
        attnScratch = FloatBuffer(count: logitRows < T ? 0 : Parallel.workers * seq * seq)
        let widest = max(T * c.topK * c.expertWidth, T * max(c.sharedExpertWidth, c.denseWidth))
        mlpScratchA = FloatBuffer(count: widest)
        mlpScratchB = FloatBuffer(count: training ? 2 * widest : 0)
        rotary = RotaryTable(headDim: c.rotaryDim, theta: c.ropeTheta, length: seq, yarn: c.yarn)
        routerStats = RouterStats(config: c)
    }

    /// Layer l's attention: gpt-oss alternates sliding-window and full layers.
    func attentionShape(_ l: Int) -> AttentionShape {
        let windowed = config.slidingLayers.map { l < $0.count && $0[l] } ?? true
        return AttentionShape(batch: batch, seq: seq, heads: config.heads, kvHeads: config.kvHeads, headDim: config.headDim,
                              valueDim: config.valueHeadDim, window: windowed ? config.slidingWindow : nil, scale: config.attentionScale)
    }

    /// Runs the forward pass and returns the mean next-token loss.
    @discardableResult
    public func forward(_ tokens: TokenBatch) throws -> Double {
        try forward(tokens, capture: nil)
    }

    /// Runs the forward pass; with `capture`, also keeps what a later candidate that
    /// changes only routed experts needs to skip the layers below its lowest change.
    @discardableResult
    public func forward(_ tokens: TokenBatch, capture: ForwardCache?) throws -> Double {
        try loadIDs(tokens)
        let H = config.hiddenSize
        let P = model.parameters.pointer
        let w = model.layout
        let xp = x.pointer
        PhaseTimer.shared.measure("fwd.embed") {
            for t in 0..<T { FrozenWeights.read(P + w.embed.offset + Int(ids.pointer[t]) * H, count: H, into: xp + t * H) }
        }
        routerStats = RouterStats(config: config)
        if let capture { try capture.check(batch: batch, seq: seq, config: config) }
        for l in 0..<config.layers {
            if recomputesActivations { layerInputs[l].pointer.update(from: xp, count: T * H) }
            layerForward(l, activations(l), capture: capture)
        }
        return headAndLoss()
    }

    /// The buffers layer l's forward pass writes.
    func activations(_ l: Int) -> LayerActivations { acts.count == 1 ? acts[0] : acts[l] }

    func loadIDs(_ tokens: TokenBatch) throws {
        guard tokens.batch == batch, tokens.seq == seq else {
            throw EngineError.invalidInput("token batch [\(tokens.batch), \(tokens.seq)] does not match this run's [\(batch), \(seq)]")
        }
        guard seq >= 2 else {
            throw EngineError.invalidInput("sequence length \(seq) leaves no next-token labels; need at least 2")
        }
        let V = config.vocabSize
        for (i, id) in tokens.ids.enumerated() {
            guard id >= 0, Int(id) < V else {
                throw EngineError.invalidInput("token id \(id) at position \(i) is outside the vocabulary 0..<\(V)")
            }
            ids.pointer[i] = id
        }
    }

    func headAndLoss() -> Double {
        let V = config.vocabSize, H = config.hiddenSize
        let P = model.parameters.pointer
        let w = model.layout
        let xp = x.pointer
        if training { xFinalIn.pointer.update(from: xp, count: T * H) }
        return PhaseTimer.shared.measure("fwd.head_loss") {
            rmsNormForward(xp, P + w.finalNorm.offset, xFinal.pointer, rinvF.pointer, rows: T, dim: H, eps: config.rmsNormEps)
            linearForward(xFinal.pointer, P + w.lmHead.offset, logits.pointer, rows: T, inDim: H, outDim: V, precision: matmul)
            return crossEntropyLoss(logits.pointer, ids: ids.pointer, batch: batch, seq: seq, vocab: V,
                                    rowLoss: rowLoss.pointer, dlogits: nil)
        }
    }

    /// The load-balancing loss of the last forward pass, as transformers'
    /// `load_balancing_loss_func` computes it over every sparse layer's router: E · Σₑ fₑ·Pₑ,
    /// fₑ the share of (token, slot) pairs routed to e and Pₑ its mean router probability.
    public var routerAuxLoss: Double {
        let E = config.experts
        let sparse = (0..<config.layers).filter { config.sparseLayers[$0] }
        guard training, !sparse.isEmpty else { return 0 }
        let n = Double(sparse.count * T)
        var total = 0.0
        for e in 0..<E {
            var f = 0.0, pe = 0.0
            for l in sparse {
                f += Double(routerStats.counts[l][e])
                pe += routerProbSums[l][e]
            }
            total += (f / n) * (pe / n)
        }
        return Double(E) * total
    }

    /// Per-position losses of the last forward pass, [batch, seq - 1].
    public var positionLosses: [Float] {
        (0..<T).filter { $0 % seq != seq - 1 }.map { rowLoss.pointer[$0] }
    }

    func layerForward(_ l: Int, _ a: LayerActivations, capture: ForwardCache? = nil) {
        let c = config, H = c.hiddenSize
        let P = model.parameters.pointer
        let lw = model.layout.layers[l]
        let xp = x.pointer
        if training { a.xIn.pointer.update(from: xp, count: T * H) }
        let timer = PhaseTimer.shared
        timer.measure("fwd.norms") {
            rmsNormForward(xp, P + lw.inputNorm.offset, a.h1.pointer, a.rinv1.pointer, rows: T, dim: H, eps: c.rmsNormEps)
        }
        if let aw = lw.attention {
            attentionBlockForward(l, aw, a)
        } else if let la = lw.latentAttention {
            latentAttentionForward(l, la, a)
        }
        if training { a.xMid.pointer.update(from: xp, count: T * H) }
        capture?.layers[l].storeMid(xp, count: T * H)
        timer.measure("fwd.norms") {
            rmsNormForward(xp, P + lw.postNorm.offset, a.h2.pointer, a.rinv2.pointer, rows: T, dim: H, eps: c.rmsNormEps)
        }
        if let router = lw.router {
            moeForward(l, lw, router: router, a)
            capture?.layers[l].storeRouting(a, tokens: T, topK: c.topK, hidden: H)
        } else if let dense = lw.dense {
            mlpForward(a.h2.pointer, MLPPointers(dense, base: P), rows: T, hidden: H,
                       gu: a.mlpGU!.pointer, a: mlpScratchA.pointer, y: a.mlpY!.pointer, precision: matmul)
            axpy(1, a.mlpY!.pointer, xp, T * H)
        }
    }

    func attentionBlockForward(_ l: Int, _ aw: AttentionWeights, _ a: LayerActivations) {
        let c = config, H = c.hiddenSize
        let P = model.parameters.pointer
        let h1 = a.h1.pointer
        let timer = PhaseTimer.shared
        timer.measure("fwd.qkv") {
            if decoding != nil {
                let products: [(w: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>, outDim: Int)] = [
                    (UnsafePointer(P + aw.q.offset), a.qProj.pointer, c.qDim), (UnsafePointer(P + aw.k.offset), a.kProj.pointer, c.kvDim),
                    (UnsafePointer(P + aw.v.offset), a.vProj.pointer, c.kvDim)]
                linearForwardShared(h1, products, rows: T, inDim: H, precision: matmul)
                return
            }
            linearForward(h1, P + aw.q.offset, a.qProj.pointer, rows: T, inDim: H, outDim: c.qDim, precision: matmul)
            linearForward(h1, P + aw.k.offset, a.kProj.pointer, rows: T, inDim: H, outDim: c.kvDim, precision: matmul)
            linearForward(h1, P + aw.v.offset, a.vProj.pointer, rows: T, inDim: H, outDim: c.kvDim, precision: matmul)
        }
        if let b = aw.qBias { addRowBias(a.qProj.pointer, P + b.offset, rows: T, dim: c.qDim) }
        if let b = aw.kBias { addRowBias(a.kProj.pointer, P + b.offset, rows: T, dim: c.kvDim) }
        if let b = aw.vBias { addRowBias(a.vProj.pointer, P + b.offset, rows: T, dim: c.kvDim) }
        var qSrc = a.qProj.pointer, kSrc = a.kProj.pointer
        if let qn = aw.qNorm, let kn = aw.kNorm {
            let perHead = c.qkNorm == .perHead
            rmsNormForward(a.qProj.pointer, P + qn.offset, a.qNormed!.pointer, a.rinvQ!.pointer,
                           rows: perHead ? T * c.heads : T, dim: perHead ? c.headDim : c.qDim, eps: c.rmsNormEps)
            rmsNormForward(a.kProj.pointer, P + kn.offset, a.kNormed!.pointer, a.rinvK!.pointer,
                           rows: perHead ? T * c.kvHeads : T, dim: perHead ? c.headDim : c.kvDim, eps: c.rmsNormEps)
            qSrc = a.qNormed!.pointer
            kSrc = a.kNormed!.pointer
        }
        a.q.pointer.update(from: qSrc, count: T * c.qDim)
        a.k.pointer.update(from: kSrc, count: T * c.kvDim)
        a.v.pointer.update(from: a.vProj.pointer, count: T * c.kvDim)
        if let clip = c.clipQKV {
            clamp(a.q.pointer, T * c.qDim, clip)
            clamp(a.k.pointer, T * c.kvDim, clip)
            clamp(a.v.pointer, T * c.kvDim, clip)
        }
        timer.measure("fwd.rope") {
            applyRotary(a.q.pointer, table: rotary, rows: T, seq: seq, rowStride: c.qDim, heads: c.heads, headStride: c.headDim,
                        offset: 0, interleaved: false, inverse: false, positions: rowPositions)
            applyRotary(a.k.pointer, table: rotary, rows: T, seq: seq, rowStride: c.kvDim, heads: c.kvHeads, headStride: c.headDim,
                        offset: 0, interleaved: false, inverse: false, positions: rowPositions)
        }
        timer.measure("fwd.attention") {
            if let decoding {
                decoding.attend(layer: l, q: a.q.pointer, k: a.k.pointer, v: a.v.pointer, out: a.attn.pointer, shape: attentionShape(l),
                                sinks: aw.sinks.map { UnsafePointer(P + $0.offset) }, precision: matmul)
                return
            }
            attentionForward(a.q.pointer, a.k.pointer, a.v.pointer, a.attn.pointer, probs: a.probs?.pointer,
                             scratch: attnScratch.pointer, shape: attentionShape(l), precision: matmul,
                             sinks: aw.sinks.map { UnsafePointer(P + $0.offset) })
        }
        timer.measure("fwd.o_proj") {
            linearForward(a.attn.pointer, P + aw.o.offset, x.pointer, rows: T, inDim: c.attnDim, outDim: H, accumulate: true, precision: matmul)
        }
        if let b = aw.oBias { addRowBias(x.pointer, P + b.offset, rows: T, dim: H) }
    }

    func moeForward(_ l: Int, _ lw: LayerWeights, router: ParamView, _ a: LayerActivations) {
        let c = config, H = c.hiddenSize, E = c.experts, K = c.topK, I = c.expertWidth
        let P = model.parameters.pointer
        let h2 = a.h2.pointer
        let probs = a.routerProbs!.pointer, topIdx = a.topIdx!.pointer, topW = a.topW!.pointer
        let slotPos = a.slotPos!.pointer, dispTok = a.dispTok!.pointer
        let timer = PhaseTimer.shared
        timer.measure("fwd.router") {
            // Routing is a discontinuous choice: its logits are always full float.
            linearForward(h2, P + router.offset, probs, rows: T, inDim: H, outDim: E, precision: matmul.routerPrecision)
            if let b = lw.routerLogitBias { addRowBias(probs, P + b.offset, rows: T, dim: E) }
            routeTokens(probs: probs, tokens: T, experts: E, topK: K, normalize: c.normTopKProb, rule: c.router,
                        bias: lw.routerBias.map { UnsafePointer(P + $0.offset) }, resident: model.residentExperts?[l],
                        topIdx: topIdx, topW: topW)
        }
        // Group (token, slot) pairs by expert, tokens ascending within each group.
        var start = [Int](repeating: 0, count: E + 1)
        for i in 0..<(T * K) { start[Int(topIdx[i]) + 1] += 1 }
        for e in 0..<E { start[e + 1] += start[e] }
        var fill = start
        for t in 0..<T {
            for k in 0..<K {
                let e = Int(topIdx[t * K + k])
                let pos = fill[e]
                fill[e] += 1
                dispTok[pos] = Int32(t)
                slotPos[t * K + k] = Int32(pos)
                routerStats.gateMass[l][e] += Double(topW[t * K + k])
            }
        }
        for e in 0..<E { routerStats.counts[l][e] += start[e + 1] - start[e] }
        if training {
            var sums = [Double](repeating: 0, count: E)
            for t in 0..<T { for e in 0..<E { sums[e] += Double(probs[t * E + e]) } }
            routerProbSums[l] = sums
        }
        a.expertStart = start
        let order = expertsBySize(start)
        let xd = a.xDisp!.pointer, gu = a.gu!.pointer, y = a.y!.pointer
        // Experts run side by side, one per worker, largest first; each owns its dispatch
        // rows (and the matching rows of the scratch), so nothing is shared.
        let scratch = mlpScratchA.pointer
        timer.measure("fwd.gather") {
            Parallel.ranges(T * K, work: T * K * H) { range in
                for pos in range { (xd + pos * H).update(from: h2 + Int(dispTok[pos]) * H, count: H) }
            }
        }
        timer.measure("fwd.experts") { Parallel.forEach(E) { i in
            let e = order[i]
            let n = start[e + 1] - start[e]
            if n == 0 { return }
            let r = start[e]
            mlpForward(xd + r * H, MLPPointers(lw.experts[e], base: P), rows: n, hidden: H,
                       gu: gu + r * 2 * I, a: scratch + r * I, y: y + r * H, parallel: false, precision: matmul)
        } }
        combineExperts(a)
        sharedExpertForward(lw, a)
    }

    /// Adds each token's routed experts' outputs, weighted, to the residual stream.
    func combineExperts(_ a: LayerActivations) {
        let H = config.hiddenSize, K = config.topK
        let xp = x.pointer, topW = a.topW!.pointer, slotPos = a.slotPos!.pointer, y = a.y!.pointer
        PhaseTimer.shared.measure("fwd.combine") {
            Parallel.ranges(T, work: T * K * H) { range in
                for t in range {
                    for k in 0..<K {
                        axpy(topW[t * K + k], y + Int(slotPos[t * K + k]) * H, xp + t * H, H)
                    }
                }
            }
        }
    }

    func sharedExpertForward(_ lw: LayerWeights, _ a: LayerActivations) {
        let H = config.hiddenSize
        let P = model.parameters.pointer
        let h2 = a.h2.pointer, xp = x.pointer
        if let shared = lw.sharedExpert {
            let sg = a.sharedGate!.pointer, sy = a.mlpY!.pointer
            mlpForward(h2, MLPPointers(shared, base: P), rows: T, hidden: H,
                       gu: a.mlpGU!.pointer, a: mlpScratchA.pointer, y: sy, precision: matmul)
            guard let gate = lw.sharedExpertGate else {
                axpy(1, sy, xp, T * H)
                return
            }
            let gw = P + gate.offset
            for t in 0..<T {
                let z = dot(h2 + t * H, gw, H)
                sg[t] = 1 / (1 + Foundation.exp(-z))
                axpy(sg[t], sy + t * H, xp + t * H, H)
            }
        }
    }
}



@inlinable func clamp(_ p: UnsafeMutablePointer<Float>, _ n: Int, _ limit: Float) {
    for i in 0..<n { p[i] = min(max(p[i], -limit), limit) }
}
