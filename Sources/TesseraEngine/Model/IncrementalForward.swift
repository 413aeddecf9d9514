import Foundation
import TesseraCore

/// What a model's forward pass over one batch leaves behind so that a candidate which
/// changes only routed experts can be evaluated from its lowest changed layer up: per
/// sparse layer, the residual stream after attention, the routing, and every routed
/// expert's output rows. The router and trunk are unchanged by such a candidate, so the
/// routing is the same and only the changed experts' rows need recomputing.
public final class ForwardCache: @unchecked Sendable {
    public final class Layer: @unchecked Sendable {
        var xMid: [Float] = []
        var y: [Float] = []
        var topIdx: [Int32] = []
        var topW: [Float] = []
        var slotPos: [Int32] = []
        var dispTok: [Int32] = []
        var start: [Int] = []

        func storeMid(_ x: UnsafePointer<Float>, count: Int) {
            xMid = Array(UnsafeBufferPointer(start: x, count: count))
        }

        func storeRouting(_ a: LayerActivations, tokens T: Int, topK K: Int, hidden H: Int) {
            y = Array(UnsafeBufferPointer(start: a.y!.pointer, count: T * K * H))
            topIdx = a.topIdx!.array.prefix(T * K).map { $0 }
            topW = Array(UnsafeBufferPointer(start: a.topW!.pointer, count: T * K))
            slotPos = a.slotPos!.array.prefix(T * K).map { $0 }
            dispTok = a.dispTok!.array.prefix(T * K).map { $0 }
            start = a.expertStart
        }

        var bytes: Int { (xMid.count + y.count + topW.count) * 4 + (topIdx.count + slotPos.count + dispTok.count) * 4 }
    }

    public let batch: Int
    public let seq: Int
    public let layers: [Layer]
    let config: ModelConfig

    public init(batch: Int, seq: Int, config: ModelConfig) {
        self.batch = batch
        self.seq = seq
        self.config = config
        layers = (0..<config.layers).map { _ in Layer() }
    }

    public var bytes: Int { layers.reduce(0) { $0 + $1.bytes } }

    /// What a cache of a batch [batch, seq] holds, before it is filled: per sparse layer the
    /// residual after attention (T·H floats), the routed rows (T·K·H), the weights and three
    /// index arrays (4·T·K) and the experts' starts.
    public static func estimatedBytes(batch: Int, seq: Int, config c: ModelConfig) -> Int {
        let t = batch * seq
        let perLayer = (t * c.hiddenSize + t * c.topK * c.hiddenSize + 4 * t * c.topK) * 4 + (c.experts + 1) * 8
        return perLayer * c.sparseLayers.filter { $0 }.count
    }

    func check(batch b: Int, seq s: Int, config: ModelConfig) throws {
        guard b == batch, s == seq, config == self.config else {
            throw EngineError.invalidInput("forward cache was made for batch [\(batch), \(seq)] of another model shape; this run is [\(b), \(s)]")
        }
    }
}

extension ModelRun {
    /// The mean loss of this run's model on `tokens`, given a cache filled by a forward
    /// pass of a model that differs from this one only in the routed experts `changed`.
    /// Layers below the lowest changed expert are skipped; in that layer only the changed
    /// experts' rows are recomputed. The figures are bit-identical to `forward(tokens)`:
    /// every kept number was computed by the same code on the same inputs, and the
    /// recomputed rows and everything above go through the same kernels in the same order.
    public func forwardIncremental(_ tokens: TokenBatch, cache: ForwardCache, changed: Set<ExpertID>) throws -> Double {
        try cache.check(batch: batch, seq: seq, config: config)
        guard !training else { throw EngineError.invalidInput("incremental evaluation is for evaluation runs") }
        guard let low = changed.map(\.layer).min() else { return try forward(tokens) }
        guard changed.allSatisfy({ $0.layer < config.layers && config.sparseLayers[$0.layer] && $0.expert < config.experts }) else {
            throw EngineError.invalidInput("changed experts must be routed experts of sparse layers")
        }
        let stored = cache.layers[low]
        guard stored.xMid.count == T * config.hiddenSize, !stored.y.isEmpty else {
            throw EngineError.invalidInput("forward cache holds nothing for layer \(low); fill it with forward(_:capture:) first")
        }
        try loadIDs(tokens)
        routerStats = RouterStats(config: config)
        let c = config, H = c.hiddenSize, K = c.topK, I = c.expertWidth, TK = T * K
        let a = acts[0]
        let lw = model.layout.layers[low]
        let P = model.parameters.pointer
        let xp = x.pointer
        stored.xMid.withUnsafeBufferPointer { xp.update(from: $0.baseAddress!, count: T * H) }
        rmsNormForward(xp, P + lw.postNorm.offset, a.h2.pointer, a.rinv2.pointer, rows: T, dim: H, eps: c.rmsNormEps)
        stored.y.withUnsafeBufferPointer { a.y!.pointer.update(from: $0.baseAddress!, count: TK * H) }
        stored.topW.withUnsafeBufferPointer { a.topW!.pointer.update(from: $0.baseAddress!, count: TK) }
        for i in 0..<TK {
            a.topIdx!.pointer[i] = stored.topIdx[i]
            a.slotPos!.pointer[i] = stored.slotPos[i]
            a.dispTok!.pointer[i] = stored.dispTok[i]
        }
        a.expertStart = stored.start
        let start = stored.start
        let h2 = a.h2.pointer, xd = a.xDisp!.pointer, gu = a.gu!.pointer, y = a.y!.pointer
        let dispTok = a.dispTok!.pointer, scratch = mlpScratchA.pointer
        let mine = changed.filter { $0.layer == low }.map(\.expert).sorted()
        Parallel.forEach(mine.count) { i in
            let e = mine[i]
            let n = start[e + 1] - start[e]
            if n == 0 { return }
            let r = start[e]
            for pos in r..<(r + n) { (xd + pos * H).update(from: h2 + Int(dispTok[pos]) * H, count: H) }
            mlpForward(xd + r * H, MLPPointers(lw.experts[e], base: P), rows: n, hidden: H,
                       gu: gu + r * 2 * I, a: scratch + r * I, y: y + r * H, parallel: false, precision: matmul)
        }
        combineExperts(a)
        sharedExpertForward(lw, a)
        for l in (low + 1)..<c.layers {
            layerForward(l, a)
        }
        return headAndLoss()
    }
}
