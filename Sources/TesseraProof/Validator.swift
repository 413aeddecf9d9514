import Foundation
import TesseraEngine
import TesseraLibrary
import TesseraCore

/// A validator's Proof-of-Loss for one round: the base model loaded once from the
/// library, the held-out and background sets evaluated against it once (with forward
/// caches), then each submission judged in the order the ledger recorded them.
public final class Validator {
    public let library: ExpertLibrary
    public let key: ParticipantKey
    public let policy: ProofPolicy
    public let model: MoEModel
    public let heldOut: EvaluationSet
    public let background: EvaluationSet
    /// The expert versions of the base model every candidate is compared with.
    public let baseVersions: [ExpertID: String]
    /// The matrix-product precision of every evaluation; recorded in the verdicts, since
    /// a re-check reproduces the losses bit for bit only in the same precision.
    public var matmul: MatmulPrecision { heldOut.matmul }
    /// Evaluate every candidate from scratch instead of from the forward caches (same figures).
    public var fullEvaluation = false
    /// Deltas of the round's earlier submissions, for copy detection.
    let earlier: DeltaStore

    /// `versions` pins expert versions (the library's current ones otherwise).
    public init(library: ExpertLibrary, key: ParticipantKey, policy: ProofPolicy, heldOut: TokenWindows,
                background: TokenWindows, versions pinned: [ExpertID: String] = [:], batch: Int = 16,
                matmul: MatmulPrecision? = nil, cacheBudget: Int? = nil) throws {
        // The market's precision unless a re-check asks for the one a verdict recorded.
        let matmul = matmul ?? policy.matmul
        guard matmul.isUsable else {
            throw LibraryError("matrix products \(matmul.rawValue) are not available on this processor (available: \(MatmulPrecision.allCases.filter(\.isUsable).map(\.rawValue).joined(separator: ", ")))")
        }
        try heldOut.requireVocabulary(of: library)
        try background.requireVocabulary(of: library)
        earlier = try DeltaStore()
        self.library = library
        self.key = key
        self.policy = policy
        baseVersions = try library.versions(pinned)
        model = try library.loadModel(versions: baseVersions)
        // Forward caches within the budget (half the memory available after loading the
        // model unless one is given), held-out windows first; the rest are evaluated in full.
        let budget = cacheBudget ?? ProcessMemory.available.map { $0 / 2 }
        let runs = EvaluationRuns(model: model)
        let held = try EvaluationSet(name: "held-out", windows: heldOut, model: model, batch: batch, matmul: matmul, cacheBudget: budget,
                                     runs: runs)
        self.heldOut = held
        self.background = try EvaluationSet(name: "background", windows: background, model: model, batch: batch, matmul: matmul,
                                            cacheBudget: budget.map { max(0, $0 - held.cacheBytes) }, runs: runs)
    }

    /// Per-window losses of the base model with `weights` swapped in.
    public func candidateLosses(_ weights: [ExpertID: ExpertWeights], full: Bool = false) throws -> (heldOut: [Double], background: [Double]) {
        try withExperts(weights, in: model, library: library) {
            let changed = Set(weights.keys)
            return (try heldOut.losses(changed: changed, full: full), try background.losses(changed: changed, full: full))
        }
    }

    /// Adds an earlier submission of the round to those later ones are compared with for
    /// copies, without judging it: a validator that restarted, or joined late, still sees
    /// everything the round received.
    public func remember(bundle dir: String) throws {
        let submission = try SubmissionBundle.submissionRecord(dir).hash
        guard !earlier.contains(submission) else { return }
        var record = earlier.begin(submission)
        _ = try SubmissionBundle.verify(dir, library: library) { item, base, new in
            let d = zip(new.flattened, base.flattened).map { $0 - $1 }
            try earlier.append(d, squares: sumOfSquares(d), for: item.expert, to: &record)
        }
        earlier.commit(record)
    }

    /// Whether this validator has judged or remembered a submission.
    public func hasSeen(_ submission: String) -> Bool { earlier.contains(submission) }

    /// Judges the bundle in `dir`. A bundle whose signature or files do not check out is
    /// an error (it cannot be attributed); every other problem is a signed rejection.
    ///
    /// The bundle is read one expert at a time: each is compared with its base and with
    /// the earlier submissions' deltas, and put into the model in place of its base, so
    /// that at billions of parameters nothing of the size of the whole bundle is held in
    /// memory as floats (see `ExpertSwap`, `DeltaStore`).
    public func judge(bundle dir: String, policy override: ProofPolicy? = nil) throws -> Verdict {
        let policy = override ?? self.policy
        let submission = try SubmissionBundle.submissionRecord(dir).hash
        let seedHash = ContentHash.sha256(Array("\(submission)|\(heldOut.windowsSHA256)".utf8))
        let seed = UInt64(seedHash.prefix(13), radix: 16)! & ((1 << 52) - 1)
        // Only the submissions recorded before this one count (a remembered later one does not).
        let priors = Array(earlier.records.prefix { $0.submission != submission })
        let seen = priors.count < earlier.records.count
        var dots = [Double](repeating: 0, count: priors.count)
        var normSquared = 0.0
        var record = earlier.begin(submission)
        let swap = ExpertSwap(model: model, library: library)
        defer { swap.restore() }
        var items: [Verdict.Item] = []
        var stale: [ExpertID] = []
        let bundle = try SubmissionBundle.verify(dir, library: library) { item, baseWeights, new in
            let base = baseWeights.flattened
            let d = zip(new.flattened, base).map { $0 - $1 }
            let squares = sumOfSquares(d)
            normSquared += squares
            let norm = sqrt(squares) / max(sqrt(sumOfSquares(base)), 1e-30)
            items.append(.init(layer: item.expert.layer, expert: item.expert.expert, base: item.base, relativeNorm: norm))
            for (k, prior) in priors.enumerated() { dots[k] += try earlier.dot(prior, item.expert, d) }
            if !seen { try earlier.append(d, squares: squares, for: item.expert, to: &record) }
            if baseVersions[item.expert] != item.base { stale.append(item.expert) } else if stale.isEmpty { try swap.put(item.expert, new) }
        }
        var verdict = Verdict(format: Verdict.formatName, submission: submission, contributor: bundle.contributor, validator: key.publicHex,
                              market: bundle.market, domain: bundle.domain, round: bundle.round, experts: items, policy: policy,
                              baseVersions: Dictionary(uniqueKeysWithValues: baseVersions.map { ($0.key.description, $0.value) }),
                              heldOutSHA256: heldOut.windowsSHA256, backgroundSHA256: background.windowsSHA256,
                              method: "paired-bootstrap-percentile", seed: seed, gain: nil, regression: nil,
                              gainLCBMicronats: 0, regressionUCBMicronats: 0, copyOf: nil, maxCosine: nil, accept: false, reason: "",
                              matmul: matmul.rawValue)
        func reject(_ reason: String) -> Verdict { verdict.reason = reason; return verdict }
        if !stale.isEmpty {
            return reject("stale base: expert\(stale.count > 1 ? "s" : "") \(stale.map(\.description).joined(separator: ", ")) moved on since the bundle's base version")
        }
        if !seen { earlier.commit(record) }
        for (k, prior) in priors.enumerated() {
            let c = normSquared > 0 && prior.normSquared > 0 ? dots[k] / (normSquared.squareRoot() * prior.normSquared.squareRoot()) : 0
            verdict.maxCosine = max(verdict.maxCosine ?? c, c)
            if c > policy.copyThreshold {
                verdict.copyOf = prior.submission
                return reject("copy: cosine " + String(format: "%.4f", c) + " with earlier submission \(prior.submission.prefix(12)) exceeds \(policy.copyThreshold); the earlier one keeps the credit")
            }
        }
        if let big = items.first(where: { $0.relativeNorm > policy.deltaNormBound }) {
            return reject("oversized delta: ‖Δ‖/‖W‖ = " + String(format: "%.3f", big.relativeNorm) + " for expert \(big.layer):\(big.expert) exceeds the bound \(policy.deltaNormBound)")
        }
        if items.allSatisfy({ $0.relativeNorm == 0 }) { return reject("unchanged: every delta is zero") }
        let changed = Set(items.map { ExpertID(layer: $0.layer, expert: $0.expert) })
        let losses = (heldOut: try heldOut.losses(changed: changed, full: fullEvaluation),
                      background: try background.losses(changed: changed, full: fullEvaluation))
        let gain = PairedBounds.compute(zip(heldOut.baseLosses, losses.heldOut).map { $0 - $1 }, confidence: policy.confidence,
                                        seed: seed, resamples: policy.resamples)
        let regression = PairedBounds.compute(zip(losses.background, background.baseLosses).map { $0 - $1 }, confidence: policy.confidence,
                                              seed: seed ^ 0x5EED, resamples: policy.resamples)
        verdict.gain = gain
        verdict.regression = regression
        verdict.gainLCBMicronats = gain.lowerMicronats
        verdict.regressionUCBMicronats = regression.upperMicronats
        verdict.heldOutLosses = .init(base: heldOut.baseLosses, candidate: losses.heldOut)
        verdict.backgroundLosses = .init(base: background.baseLosses, candidate: losses.background)
        let level = Int((policy.confidence * 100).rounded())
        if verdict.regressionUCBMicronats > policy.backgroundToleranceMicronats {
            return reject("forgetting: background regression upper bound \(verdict.regressionUCBMicronats) µnats/token (\(level)%) exceeds the tolerance \(policy.backgroundToleranceMicronats)")
        }
        if verdict.gainLCBMicronats < policy.minGainMicronats {
            return reject("no proven gain: held-out gain lower bound \(verdict.gainLCBMicronats) µnats/token (\(level)%) is below the minimum \(policy.minGainMicronats)")
        }
        verdict.accept = true
        verdict.reason = "accepted: held-out gain " + String(format: "%.4f", gain.mean) + " nats/token, \(level)% lower bound \(verdict.gainLCBMicronats) µnats ≥ \(policy.minGainMicronats); background regression bound \(verdict.regressionUCBMicronats) ≤ \(policy.backgroundToleranceMicronats)"
        return verdict
    }
}

/// Σ x², in double precision (norms and cosines of deltas).
func sumOfSquares(_ x: [Float]) -> Double { x.reduce(0.0) { $0 + Double($1) * Double($1) } }
