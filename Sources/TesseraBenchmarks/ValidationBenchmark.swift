import Dispatch
import Foundation
import TesseraCore
import TesseraEngine
import TesseraLibrary
import TesseraLedger
import TesseraProof
import TesseraTestSupport

/// Incremental against full re-evaluation of the same windows for an update confined to
/// the top half of the layers: time of each (best of `repeats`, measured in one run) and
/// whether the per-window losses are identical.
public enum ValidationBenchmark {
    public struct Report: Codable, Sendable {
        public var windows: Int
        public var tokens: Int
        public var changedExperts: [String]
        public var cacheSeconds: Double
        public var fullSeconds: Double
        public var incrementalSeconds: Double
        public var speedup: Double
        public var identical: Bool
        public var cacheBytes: Int
        enum CodingKeys: String, CodingKey {
            case windows, tokens, speedup, identical
            case changedExperts = "changed_experts"
            case cacheSeconds = "cache_seconds"
            case fullSeconds = "full_seconds"
            case incrementalSeconds = "incremental_seconds"
            case cacheBytes = "cache_bytes"
        }
    }

    public static func run(library: ExpertLibrary, windows: TokenWindows, repeats: Int = 3, batch: Int = 16,
                           matmul: MatmulPrecision = .machineDefault) throws -> Report {
        let model = try library.loadModel()
        let c = model.config
        let t0 = Date()
        let set = try EvaluationSet(name: "bench", windows: windows, model: model, batch: batch, matmul: matmul)
        let cacheSeconds = Date().timeIntervalSince(t0)
        // Perturb two experts of every layer in the top half.
        var weights: [ExpertID: ExpertWeights] = [:]
        var rng = SplitMix64(seed: 1)
        for l in (c.layers / 2)..<c.layers where c.sparseLayers[l] {
            for e in 0..<min(2, c.experts) {
                let id = ExpertID(layer: l, expert: e)
                var w = try library.expertWeights(id).weights
                for t in w.tensors.indices { w.tensors[t].values = w.tensors[t].values.map { $0 * (1 + Float(0.05 * rng.normal())) } }
                weights[id] = w
            }
        }
        var full = Double.infinity, incremental = Double.infinity
        var same = true
        try withExperts(weights, in: model, library: library) {
            for _ in 0..<repeats {
                let a = Date()
                let f = try set.losses(changed: Set(weights.keys), full: true)
                full = min(full, Date().timeIntervalSince(a))
                let b = Date()
                let i = try set.losses(changed: Set(weights.keys))
                incremental = min(incremental, Date().timeIntervalSince(b))
                same = same && f == i
            }
        }
        return Report(windows: windows.count, tokens: windows.count * windows.seq, changedExperts: weights.keys.sorted().map(\.description),
                      cacheSeconds: cacheSeconds, fullSeconds: full, incrementalSeconds: incremental, speedup: full / incremental,
                      identical: same, cacheBytes: set.cacheBytes)
    }
}
