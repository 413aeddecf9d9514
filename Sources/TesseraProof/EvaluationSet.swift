import Foundation
import TesseraEngine
import TesseraLibrary
import TesseraCore

/// A fixed set of windows evaluated against one base model: the base model's per-window
/// losses, and per batch the forward cache that lets a candidate changing only routed
/// experts be evaluated from its lowest changed layer up. Valid for those windows and the
/// model's versions at construction (the owning `Validator` pins the versions).
public final class EvaluationSet: @unchecked Sendable {
    public let name: String
    public let windows: TokenWindows
    public let windowsSHA256: String
    public let batch: Int
    public let baseLosses: [Double]
    /// The matrix-product precision of every pass over these windows.
    public let matmul: MatmulPrecision
    /// Batches share one run per batch size (a run's buffers are overwritten by each pass);
    /// a batch past the cache budget has no cache and is evaluated in full.
    let batches: [(range: Range<Int>, tokens: TokenBatch, run: ModelRun, cache: ForwardCache?)]
    /// Windows whose batches have a forward cache (the rest are evaluated in full).
    public let cachedWindows: Int

    /// Runs the base model (as `model` holds it now) over the windows and keeps the caches,
    /// as many as `cacheBudget` bytes hold (all when nil): at a real model's size a cache is
    /// hundreds of MB per window (OLMoE-1B-7B: about 1.2 MB per token), and a validator
    /// that keeps them all runs out of memory instead of evaluating in full.
    public init(name: String, windows: TokenWindows, model: MoEModel, batch: Int = 16,
                matmul: MatmulPrecision = .machineDefault, cacheBudget: Int? = nil, runs shared: EvaluationRuns? = nil) throws {
        guard windows.count > 0 else { throw EngineError.invalidInput("\(windows.origin): no windows to evaluate") }
        self.name = name
        self.matmul = matmul
        self.windows = windows
        self.windowsSHA256 = windows.contentHash
        self.batch = batch
        var list: [(Range<Int>, TokenBatch, ModelRun, ForwardCache?)] = []
        let runs = shared ?? EvaluationRuns(model: model)
        var losses: [Double] = []
        var start = 0, used = 0, cached = 0
        while start < windows.count {
            let n = min(batch, windows.count - start)
            let tokens = try windows.batch(Array(start..<(start + n)))
            let run = runs.run(batch: n, seq: windows.seq)
            run.matmul = matmul
            let estimate = ForwardCache.estimatedBytes(batch: n, seq: windows.seq, config: model.config)
            var cache: ForwardCache?
            if cacheBudget.map({ used + estimate <= $0 }) ?? true {
                let c = ForwardCache(batch: n, seq: windows.seq, config: model.config)
                try run.forward(tokens, capture: c)
                used += c.bytes
                cached += n
                cache = c
            } else {
                try run.forward(tokens)
            }
            losses += Self.rowMeans(run, rows: n, seq: windows.seq)
            list.append((start..<(start + n), tokens, run, cache))
            start += n
        }
        batches = list
        baseLosses = losses
        cachedWindows = cached
    }

    public var cacheBytes: Int { batches.reduce(0) { $0 + ($1.cache?.bytes ?? 0) } }

    /// Per-window losses of the model as it is now, which must differ from the base only
    /// in the routed experts `changed`. Incremental unless `full` is set; both give the
    /// same figures, bit for bit.
    public func losses(changed: Set<ExpertID>, full: Bool = false) throws -> [Double] {
        var out: [Double] = []
        out.reserveCapacity(windows.count)
        for b in batches {
            if let cache = b.cache, !full, !changed.isEmpty {
                _ = try b.run.forwardIncremental(b.tokens, cache: cache, changed: changed)
            } else {
                try b.run.forward(b.tokens)
            }
            out += Self.rowMeans(b.run, rows: b.range.count, seq: windows.seq)
        }
        return out
    }

    static func rowMeans(_ run: ModelRun, rows: Int, seq: Int) -> [Double] {
        let losses = run.positionLosses
        let per = seq - 1
        return (0..<rows).map { r in
            var s = 0.0
            for j in 0..<per { s += Double(losses[r * per + j]) }
            return s / Double(per)
        }
    }
}

/// Runs for evaluation sets over one model, one per batch shape. A run's buffers are
/// overwritten by each pass, so sets evaluated one after the other (a validator's held-out
/// and background windows) can share them: at OLMoE-1B-7B's size a run of 4 windows of 512
/// tokens holds 412 MB of logits alone.
public final class EvaluationRuns: @unchecked Sendable {
    let model: MoEModel
    private var runs: [[Int]: ModelRun] = [:]

    public init(model: MoEModel) { self.model = model }

    func run(batch: Int, seq: Int) -> ModelRun {
        if let run = runs[[batch, seq]] { return run }
        let run = ModelRun(model: model, batch: batch, seq: seq, training: false)
        runs[[batch, seq]] = run
        return run
    }
}
