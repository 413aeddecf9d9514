import Foundation
import TesseraCore

/// Incremental decoding: runs new tokens of several sequences through the model in one
/// step, each attending over its own key/value cache. Every per-row computation (norms,
/// projections, routing, experts, head) is the forward pass's own code on the step's rows;
/// only attention reads the caches. Not safe for concurrent steps: one decoder per thread.
/// The model's weights must not change while a decoder exists: in fp32-fixed its weights
/// are packed for few-row products on first use (`PackedWeights`).
public final class Decoder: @unchecked Sendable {
    public let model: MoEModel
    /// Rows one step computes at most; longer prompts are fed in chunks.
    public let maxRows: Int
    /// Positions a cache may hold at most (the rotary table's length).
    public let maxContext: Int
    let run: ModelRun
    private let positions: IndexBuffer
    private let headInput: FloatBuffer

    public var matmul: MatmulPrecision {
        get { run.matmul }
        set { run.matmul = newValue }
    }

    public init(model: MoEModel, maxRows: Int = 128, maxContext: Int = 4096) {
        self.model = model
        self.maxRows = max(1, maxRows)
        self.maxContext = max(1, maxContext)
        let c = model.config
        run = ModelRun(model: model, batch: 1, seq: self.maxRows, training: false, logitRows: self.maxRows)
        run.rotary = RotaryTable(headDim: c.rotaryDim, theta: c.ropeTheta, length: self.maxContext, yarn: c.yarn)
        positions = IndexBuffer(count: self.maxRows)
        headInput = FloatBuffer(count: self.maxRows * c.hiddenSize)
        PackedWeights.register(model.parameters)
    }

    deinit { PackedWeights.unregister(model.parameters) }

    /// A cache for one sequence of at most `capacity` positions (prompt and new tokens).
    public func makeCache(capacity: Int) throws -> KVCache {
        guard capacity >= 1, capacity <= maxContext else {
            throw EngineError.invalidInput("a sequence of \(capacity) positions does not fit this decoder's context of \(maxContext)")
        }
        return KVCache(config: model.config, capacity: capacity)
    }

    /// New tokens for one sequence's cache.
    public struct Feed: Sendable {
        public var cache: KVCache
        public var tokens: [Int32]
        public init(cache: KVCache, tokens: [Int32]) { self.cache = cache; self.tokens = tokens }
    }

    /// Runs every feed's tokens and returns, per feed, the logits after its last token
    /// (with `allRows`, after each of its tokens, concatenated [count, vocab]). Inputs are
    /// checked before any cache is written.
    public func step(_ feeds: [Feed], allRows: Bool = false) throws -> [[Float]] {
        let V = model.config.vocabSize
        var seen = Set<ObjectIdentifier>()
        for (i, feed) in feeds.enumerated() {
            guard seen.insert(ObjectIdentifier(feed.cache)).inserted else {
                throw EngineError.invalidInput("feed \(i) uses a cache already fed in this step")
            }
            guard !feed.tokens.isEmpty else { throw EngineError.invalidInput("feed \(i) has no tokens") }
            guard feed.cache.length + feed.tokens.count <= feed.cache.capacity else {
                throw EngineError.invalidInput("feed \(i): \(feed.cache.length) cached + \(feed.tokens.count) new positions exceed its cache of \(feed.cache.capacity)")
            }
            for (j, id) in feed.tokens.enumerated() where id < 0 || Int(id) >= V {
                throw EngineError.invalidInput("feed \(i): token id \(id) at position \(j) is outside the vocabulary 0..<\(V)")
            }
        }
        var out = [[Float]](repeating: [], count: feeds.count)
        var done = [Int](repeating: 0, count: feeds.count)
        // Chunks of at most maxRows rows, every feed taking what is left of the budget.
        while let first = done.indices.first(where: { done[$0] < feeds[$0].tokens.count }) {
            var spans: [DecodeStep.Span] = [], owners: [Int] = [], rows = 0
            for i in first..<feeds.count where rows < maxRows && done[i] < feeds[i].tokens.count {
                let n = min(feeds[i].tokens.count - done[i], maxRows - rows)
                spans.append(DecodeStep.Span(cache: feeds[i].cache, row: rows, count: n, start: feeds[i].cache.length))
                owners.append(i)
                rows += n
            }
            let headRows: [Int] = allRows ? Array(0..<rows) : zip(spans, owners).compactMap { span, i in
                done[i] + span.count == feeds[i].tokens.count ? span.row + span.count - 1 : nil
            }
            let logits = forward(spans: spans, tokens: zip(spans, owners).flatMap { span, i in feeds[i].tokens[done[i]..<(done[i] + span.count)] },
                                 headRows: headRows)
            var next = 0
            for (span, i) in zip(spans, owners) {
                let finished = done[i] + span.count == feeds[i].tokens.count
                let mine = allRows ? span.count : (finished ? 1 : 0)
                out[i] += logits[(next * V)..<((next + mine) * V)]
                next += mine
                done[i] += span.count
            }
        }
        return out
    }

    /// One chunk: embeds, runs every layer over the caches, and returns the logits of
    /// `headRows` [headRows.count · vocab].
    private func forward(spans: [DecodeStep.Span], tokens: [Int32], headRows: [Int]) -> [Float] {
        let c = model.config, H = c.hiddenSize, V = c.vocabSize, K = c.topK
        let rows = tokens.count
        let P = model.parameters.pointer, w = model.layout
        run.T = rows
        for span in spans { for i in 0..<span.count { positions.pointer[span.row + i] = Int32(span.start + i) } }
        run.rowPositions = UnsafePointer(positions.pointer)
        run.decoding = DecodeStep(spans: spans, config: c)
        defer { run.decoding = nil; run.rowPositions = nil; run.T = maxRows }
        let xp = run.x.pointer
        for (t, id) in tokens.enumerated() { FrozenWeights.read(P + w.embed.offset + Int(id) * H, count: H, into: xp + t * H) }
        run.routerStats = RouterStats(config: c)
        let sparse = (0..<c.layers).filter { c.sparseLayers[$0] }
        var chosen = [Int32](repeating: 0, count: rows * sparse.count * K)
        let a = run.acts[0]
        for l in 0..<c.layers {
            run.layerForward(l, a)
            guard let slot = sparse.firstIndex(of: l) else { continue }
            let topIdx = a.topIdx!.pointer, topW = a.topW!.pointer
            for span in spans {
                for t in span.row..<(span.row + span.count) {
                    for k in 0..<K {
                        let e = Int(topIdx[t * K + k])
                        span.cache.gateMass[l][e] += Double(topW[t * K + k])
                        chosen[(t * sparse.count + slot) * K + k] = Int32(e)
                    }
                }
            }
        }
        for span in spans {
            span.cache.choices += chosen[(span.row * sparse.count * K)..<((span.row + span.count) * sparse.count * K)]
            span.cache.length = span.end
        }
        let n = headRows.count
        let xf = run.xFinal.pointer, gathered = headInput.pointer
        for (j, t) in headRows.enumerated() { (gathered + j * H).update(from: xp + t * H, count: H) }
        rmsNormForward(gathered, P + w.finalNorm.offset, xf, run.rinvF.pointer, rows: n, dim: H, eps: c.rmsNormEps)
        linearForward(xf, P + w.lmHead.offset, run.logits.pointer, rows: n, inDim: H, outDim: V, precision: run.matmul)
        return Array(UnsafeBufferPointer(start: run.logits.pointer, count: n * V))
    }
}
