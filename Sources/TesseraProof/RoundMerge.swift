import Foundation
import TesseraEngine
import TesseraLibrary
import TesseraCore

/// Merging a round's accepted updates into new expert versions, and each contributor's
/// credit: its validated marginal gain.
public enum RoundMerge {
    public struct Accepted: Sendable {
        public var submission: String
        public var contributor: String
        /// Consensus lower-bound gain, micro-nats per token.
        public var gainMicronats: Int64
        /// The experts it updates, as decoded from its deltas.
        public var weights: [ExpertID: ExpertWeights]
        public init(submission: String, contributor: String, gainMicronats: Int64, weights: [ExpertID: ExpertWeights]) {
            self.submission = submission; self.contributor = contributor; self.gainMicronats = gainMicronats; self.weights = weights
        }
    }

    public enum Method: String, Codable, Sendable { case ties, mean, single }

    public struct Candidate: Codable, Sendable {
        public var method: Method
        public var members: [String]
        /// Mean held-out gain (nats per token) and background regression upper bound (µnats).
        public var gain: Double
        public var regressionUCBMicronats: Int64
        enum CodingKeys: String, CodingKey {
            case method, members
            case gain = "gain_nats_per_token"
            case regressionUCBMicronats = "regression_ucb_micronats"
        }
    }

    public struct Outcome: Codable, Sendable {
        public var chosen: Candidate
        public var candidates: [Candidate]
        /// Submission → credited marginal gain, µnats per token.
        public var credits: [String: Int64]
        /// Expert → (parent, new version, merged submissions).
        public var versions: [Version]
        enum CodingKeys: String, CodingKey {
            case chosen, candidates, versions
            case credits = "credits_micronats"
        }
        public struct Version: Codable, Sendable {
            public var layer: Int
            public var expert: Int
            public var parent: String
            public var version: String
            public var submissions: [String]
        }
    }

    /// TIES: keep each delta's largest `density` share of entries by magnitude, elect each
    /// coordinate's sign by the summed trimmed values, average the entries agreeing with it.
    public static func ties(_ deltas: [[Float]], density: Double = 0.5) -> [Float] {
        guard let n = deltas.first?.count else { return [] }
        let trimmed: [[Float]] = deltas.map { d in
            let keep = max(1, Int((Double(n) * density).rounded()))
            guard keep < n else { return d }
            let threshold = d.map(abs).sorted(by: >)[keep - 1]
            var kept = 0
            return d.map { v in
                if abs(v) > threshold || (abs(v) == threshold && kept < keep) { kept += 1; return v }
                return 0
            }
        }
        var out = [Float](repeating: 0, count: n)
        for i in 0..<n {
            var sum: Float = 0
            for t in trimmed { sum += t[i] }
            guard sum != 0 else { continue }
            var agree: Float = 0, count: Float = 0
            for t in trimmed where t[i] != 0 && (t[i] > 0) == (sum > 0) { agree += t[i]; count += 1 }
            out[i] = count > 0 ? agree / count : 0
        }
        return out
    }

    /// Σ wᵢ·Δᵢ / Σ wᵢ with the weights clamped at zero (equal weights if all are zero).
    public static func weightedMean(_ deltas: [[Float]], weights: [Double]) -> [Float] {
        guard let n = deltas.first?.count else { return [] }
        var w = weights.map { max($0, 0) }
        if w.reduce(0, +) == 0 { w = w.map { _ in 1 } }
        let total = w.reduce(0, +)
        var out = [Float](repeating: 0, count: n)
        for (d, wi) in zip(deltas, w) where wi > 0 {
            let f = Float(wi / total)
            for i in 0..<n { out[i] += f * d[i] }
        }
        return out
    }

    /// The experts' weights a set of accepted updates merges to under `method`.
    static func merged(_ members: [Accepted], method: Method, bases: [ExpertID: ExpertWeights]) throws -> [ExpertID: ExpertWeights] {
        var out: [ExpertID: ExpertWeights] = [:]
        let ids = Set(members.flatMap { $0.weights.keys })
        for id in ids.sorted() {
            guard let base = bases[id] else { throw LibraryError("no base weights for expert \(id)") }
            let touching = members.filter { $0.weights[id] != nil }
            let baseFlat = base.flattened
            let deltas = touching.map { m in zip(m.weights[id]!.flattened, baseFlat).map { $0 - $1 } }
            let d: [Float]
            switch method {
            case .ties: d = ties(deltas)
            case .mean: d = weightedMean(deltas, weights: touching.map { Double($0.gainMicronats) })
            case .single: d = deltas[0]
            }
            var offset = 0
            var tensors = base.tensors
            for t in tensors.indices {
                for j in tensors[t].values.indices { tensors[t].values[j] += d[offset + j] }
                offset += tensors[t].values.count
            }
            out[id] = ExpertWeights(tensors: tensors)
        }
        return out
    }

    /// Validates merged candidates (TIES and gain-weighted mean) and every single accepted
    /// update with `validator`; the merge is kept only if it beats the best single update.
    /// Credits are leave-one-out marginal gains over the kept set when it has at most four
    /// members, else each member's consensus gain. Writes the new versions to `library`.
    public static func run(_ accepted: [Accepted], validator: Validator, library: ExpertLibrary) throws -> Outcome {
        guard !accepted.isEmpty else { throw LibraryError("no accepted submissions to merge") }
        let policy = validator.policy
        // Every candidate below starts from the same current versions: read them once.
        var bases: [ExpertID: ExpertWeights] = [:]
        for id in Set(accepted.flatMap { $0.weights.keys }) { bases[id] = try library.expertWeights(id).weights }
        func evaluate(_ members: [Accepted], _ method: Method) throws -> Candidate {
            let weights = try merged(members, method: method, bases: bases)
            let losses = try validator.candidateLosses(weights)
            let gain = mean(zip(validator.heldOut.baseLosses, losses.heldOut).map { $0 - $1 })
            let regression = PairedBounds.compute(zip(losses.background, validator.background.baseLosses).map { $0 - $1 },
                                                  confidence: policy.confidence, seed: 0x5EED, resamples: policy.resamples)
            return Candidate(method: method, members: members.map(\.submission), gain: gain, regressionUCBMicronats: regression.upperMicronats)
        }
        var candidates = try accepted.map { try evaluate([$0], .single) }
        let bestSingle = candidates.filter { $0.regressionUCBMicronats <= policy.backgroundToleranceMicronats }.max { $0.gain < $1.gain }
            ?? candidates.max { $0.gain < $1.gain }!
        var chosen = bestSingle
        var method = Method.single
        if accepted.count > 1 {
            for m in [Method.ties, .mean] {
                let c = try evaluate(accepted, m)
                candidates.append(c)
                if c.gain > chosen.gain && c.regressionUCBMicronats <= policy.backgroundToleranceMicronats {
                    chosen = c
                    method = m
                }
            }
        }
        let members = accepted.filter { chosen.members.contains($0.submission) }
        var credits: [String: Int64] = [:]
        if members.count == 1 {
            credits[members[0].submission] = members[0].gainMicronats
        } else if members.count <= 4 {
            for m in members {
                let rest = members.filter { $0.submission != m.submission }
                let without = rest.count == 1 ? try evaluate(rest, .single).gain : try evaluate(rest, method).gain
                credits[m.submission] = min(m.gainMicronats, max(0, Int64(((chosen.gain - without) * 1e6).rounded(.down))))
            }
        } else {
            for m in members { credits[m.submission] = m.gainMicronats }
        }
        let weights = try merged(members, method: method, bases: bases)
        var versions: [Outcome.Version] = []
        for (id, w) in weights.sorted(by: { $0.key < $1.key }) {
            let parent = library.manifest.entry(id)!.head.hash
            let producers = members.filter { $0.weights[id] != nil }.map(\.submission)
            let hash = try library.storeVersion(id, weights: w, parent: parent, producedBy: producers, origin: "merge \(method.rawValue)")
            versions.append(.init(layer: id.layer, expert: id.expert, parent: parent, version: hash, submissions: producers))
        }
        return Outcome(chosen: chosen, candidates: candidates, credits: credits, versions: versions)
    }
}
