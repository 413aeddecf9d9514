import Foundation
import Testing
@testable import TesseraEngine
@testable import TesseraLibrary
@testable import TesseraProof
import TesseraCore
import TesseraTestSupport

/// Proof-of-Loss on a tiny model: real improvements are accepted; an unchanged model,
/// noise, an oversized delta, a copy and an update trained on the background only are
/// each rejected with the reason; verdicts are signed and reproduce bit for bit.
@Suite struct ValidatorTests {
    static let policy = ProofPolicy(confidence: 0.95, minGainMicronats: 500, backgroundToleranceMicronats: 300_000,
                                    deltaNormBound: 1.0, copyThreshold: 0.95, resamples: 500)

    struct Setup {
        let f: ProofFixture
        let held: TokenWindows
        let background: TokenWindows
        let selection: ExpertSelection
        let validatorKey = ParticipantKey.generate()
    }

    static func setup(dtype: DType = .f32) throws -> Setup {
        let f = try ProofFixture(dtype: dtype)
        let held = ProofFixture.windows(ProofFixture.domain, count: 24, seed: 99)
        let bg = ProofFixture.windows(ProofFixture.background, count: 24, seed: 98)
        let sel = try ExpertSelection.compute(model: try f.library.loadModel(), data: ProofFixture.windows(ProofFixture.domain, count: 16, seed: 5),
                                              score: .token, topP: 0.5)
        return Setup(f: f, held: held, background: bg, selection: sel)
    }

    static func contribute(_ s: Setup, name: String, data: TokenWindows, steps: Int = 30, seed: UInt64 = 1,
                           encoding: DeltaHeader.Encoding = .lossless) throws -> String {
        let out = s.f.dir + "/bundles/" + name
        let req = Contribution.Request(experts: s.selection.experts, data: data, heldOut: nil, options: ProofFixture.options(steps: steps, seed: seed),
                                       partialResidency: false, delta: DeltaOptions(encoding: encoding), market: "m", domain: "es", round: "r1")
        _ = try Contribution.run(req, library: s.f.library, key: ParticipantKey.generate(), out: out, progress: false)
        return out
    }

    /// A bundle whose deltas set the experts to `transform(base)`.
    static func crafted(_ s: Setup, name: String, _ transform: ([Float]) -> [Float]) throws -> String {
        let out = s.f.dir + "/bundles/" + name
        try FileManager.default.createDirectory(atPath: out + "/tmp", withIntermediateDirectories: true)
        var paths: [String] = []
        for id in s.selection.experts {
            let (_, base) = try s.f.library.expertWeights(id)
            var t = base.tensors
            for i in t.indices { t[i].values = transform(t[i].values) }
            let path = out + "/tmp/\(id.layer)-\(id.expert).safetensors"
            _ = try s.f.library.encodeDelta(id, new: ExpertWeights(tensors: t), options: DeltaOptions(encoding: .lossless), to: path)
            paths.append(path)
        }
        _ = try SubmissionBundle.create(key: ParticipantKey.generate(), market: "m", domain: "es", round: "r1", deltas: paths,
                                        training: .object([]), library: s.f.library, into: out)
        return out
    }

    @Test func statisticsAreDeterministicAndCalibrated() {
        #expect(abs(PairedBounds.studentTQuantile(0.95, degrees: 10) - 1.8125) < 1e-3)
        #expect(abs(PairedBounds.studentTQuantile(0.975, degrees: 30) - 2.0423) < 1e-3)
        var rng = SplitMix64(seed: 4)
        let d = (0..<200).map { _ in 0.01 + 0.05 * rng.normal() }
        let a = PairedBounds.compute(d, confidence: 0.95, seed: 7), b = PairedBounds.compute(d, confidence: 0.95, seed: 7)
        #expect(a == b)
        #expect(a.lower < a.mean && a.mean < a.upper)
        // Bootstrap and t bounds agree closely on near-normal data.
        #expect(abs(a.lower - a.tLower) < 0.002)
        let constant = PairedBounds.compute([0.5, 0.5, 0.5], confidence: 0.9, seed: 1)
        #expect(constant.lower == 0.5 && constant.upper == 0.5)
    }

    @Test func selectionIsNormalisedPerLayerAndMinimal() throws {
        let s = try Self.setup()
        for row in s.selection.affinity where !row.isEmpty {
            #expect(abs(row.reduce(0, +) - 1) < 1e-9)
        }
        for l in 0..<s.f.config.layers {
            let row = s.selection.affinity[l]
            let chosen = s.selection.experts.filter { $0.layer == l }.map { row[$0.expert] }
            #expect(chosen.reduce(0, +) >= 0.5 - 1e-9)
            #expect(chosen.reduce(0, +) - chosen.min()! < 0.5)
        }
        let gate = try ExpertSelection.compute(model: try s.f.library.loadModel(), data: ProofFixture.windows(ProofFixture.domain, count: 16, seed: 5),
                                               score: .gate, topP: 1)
        #expect(gate.experts.count == 12)
        #expect(throws: EngineError.self) { try ExpertSelection.compute(model: try s.f.library.loadModel(), data: s.held, score: .gate, topP: 0) }
    }

    @Test func verdictsOnHonestAndDishonestUpdates() throws {
        let s = try Self.setup()
        let honest = try Self.contribute(s, name: "honest", data: ProofFixture.windows(ProofFixture.domain, count: 64, seed: 11))
        let copy = s.f.dir + "/bundles/copy"
        let honestBundle = try SubmissionBundle.verify(honest, library: s.f.library)
        _ = try SubmissionBundle.create(key: ParticipantKey.generate(), market: "m", domain: "es", round: "r1",
                                        deltas: honestBundle.items.map { honest + "/" + $0.file }, training: .object([]), library: s.f.library, into: copy)
        let unchanged = try Self.crafted(s, name: "unchanged") { $0 }
        var rng = SplitMix64(seed: 17)
        let noise = try Self.crafted(s, name: "noise") { $0.map { $0 + Float(0.01 * rng.normal()) } }
        let huge = try Self.crafted(s, name: "huge") { $0.map { $0 * 3 } }
        let backgroundOnly = try Self.contribute(s, name: "bg", data: ProofFixture.windows(ProofFixture.background, count: 64, seed: 12), seed: 2)

        let v = try Validator(library: s.f.library, key: s.validatorKey, policy: Self.policy, heldOut: s.held, background: s.background, batch: 8)
        let good = try v.judge(bundle: honest)
        #expect(good.accept, "\(good.reason)")
        #expect(good.gainLCBMicronats > 500 && good.gain!.mean > 0)
        let c = try v.judge(bundle: copy)
        #expect(!c.accept && c.reason.hasPrefix("copy") && c.copyOf == good.submission)
        #expect(try v.judge(bundle: unchanged).reason.hasPrefix("unchanged"))
        let n = try v.judge(bundle: noise)
        #expect(!n.accept && n.reason.hasPrefix("no proven gain"), "\(n.reason)")
        #expect(try v.judge(bundle: huge).reason.hasPrefix("oversized"))
        let b = try v.judge(bundle: backgroundOnly)
        #expect(!b.accept, "\(b.reason)")

        // Signed, saved, reloaded; a tampered figure breaks the signature.
        let path = s.f.dir + "/verdict.json"
        try good.save(signedBy: s.validatorKey, to: path)
        #expect(try Verdict.load(path) == good)
        let text = try String(contentsOfFile: path, encoding: .utf8)
        try text.replacingOccurrences(of: "\"gain_lcb_micronats\":\(good.gainLCBMicronats)", with: "\"gain_lcb_micronats\":\(good.gainLCBMicronats + 1)")
            .write(toFile: path, atomically: true, encoding: .utf8)
        #expect(throws: LibraryError.self) { try Verdict.load(path) }

        // An independent re-check without caches reproduces every figure exactly.
        let recheck = try VerdictCheck.run(good, bundle: honest) { key, versions in
            try Validator(library: s.f.library, key: key, policy: Self.policy, heldOut: s.held, background: s.background, versions: versions, batch: 8)
        }
        #expect(recheck.outcome == .identical, "\(recheck.differences)")
        // And a re-check on other windows says so.
        let wrong = try VerdictCheck.run(good, bundle: honest) { key, versions in
            try Validator(library: s.f.library, key: key, policy: Self.policy, heldOut: s.background, background: s.background, versions: versions)
        }
        #expect(wrong.outcome == .differs && !wrong.differences.isEmpty)
        // Figures one unit in the last place apart: float rounding, the same decision.
        var nudged = good
        nudged.heldOutLosses!.base[3] = nudged.heldOutLosses!.base[3].nextUp
        let rounding = VerdictCheck.compare(good, nudged)
        #expect(rounding.outcome == .roundingOnly && rounding.sameDecision, "\(rounding.differences)")
        #expect(rounding.differences.count == 1 && rounding.differences[0].contains("window 3"), "\(rounding.differences)")
        // A real change of a loss, or another decision, is a difference.
        var moved = good
        moved.heldOutLosses!.candidate[0] *= 1.001
        #expect(VerdictCheck.compare(good, moved).outcome == .differs)
        var flipped = nudged
        flipped.accept.toggle()
        #expect(VerdictCheck.compare(good, flipped).outcome == .differs)
        // The verdict records its matrix-product precision; a re-check in another one
        // names the mismatch instead of reporting bare loss differences.
        #expect(good.matmul == Self.policy.matmul.rawValue && good.matmul == "fp32-fixed")
        // A verdict made in another precision than the re-check's (whatever this CPU has).
        var other = good
        other.matmul = "fp32"
        let mismatch = try VerdictCheck.run(other, bundle: honest) { key, versions in
            try Validator(library: s.f.library, key: key, policy: Self.policy, heldOut: s.held, background: s.background,
                          versions: versions, batch: 8)
        }
        #expect(mismatch.outcome == .differs && mismatch.differences.contains { $0.contains("matrix products") && $0.contains(other.matmul!) },
                "\(mismatch.differences)")
    }

    /// On a bf16 library (the validator's model keeps its experts bf16 and swaps candidates
    /// in by address, copy detection reads earlier deltas back from its store), an honest
    /// update is accepted, its copy caught, a remembered submission not judged twice over,
    /// and the model is the base again after each verdict.
    @Test func aBF16LibraryIsJudgedAsAFloatOne() throws {
        let s = try Self.setup(dtype: .bf16)
        let honest = try Self.contribute(s, name: "honest", data: ProofFixture.windows(ProofFixture.domain, count: 64, seed: 11))
        let copy = s.f.dir + "/bundles/copy"
        let items = try SubmissionBundle.verify(honest, library: s.f.library).items
        _ = try SubmissionBundle.create(key: ParticipantKey.generate(), market: "m", domain: "es", round: "r1",
                                        deltas: items.map { honest + "/" + $0.file }, training: .object([]), library: s.f.library, into: copy)
        let v = try Validator(library: s.f.library, key: s.validatorKey, policy: Self.policy, heldOut: s.held, background: s.background, batch: 8)
        #expect(v.model.bf16Bytes > 0)
        let base = v.model.parameterValues
        let good = try v.judge(bundle: honest)
        #expect(good.accept, "\(good.reason)")
        #expect(v.model.parameterValues == base)
        let c = try v.judge(bundle: copy)
        #expect(!c.accept && c.copyOf == good.submission && abs((c.maxCosine ?? 0) - 1) < 1e-9, "\(c.reason)")
        #expect(v.model.parameterValues == base)
        // Another validator that remembered the honest bundle first catches the copy the same way.
        let w = try Validator(library: s.f.library, key: s.validatorKey, policy: Self.policy, heldOut: s.held, background: s.background, batch: 8)
        try w.remember(bundle: honest)
        #expect(w.hasSeen(good.submission))
        let c2 = try w.judge(bundle: copy)
        #expect(c2.copyOf == good.submission && c2.maxCosine == c.maxCosine)
        // The full evaluation (no forward caches) agrees bit for bit.
        w.fullEvaluation = true
        #expect(try w.judge(bundle: honest) == good)
    }

    /// A bundle built on a version that has since been replaced is rejected as stale.
    @Test func staleBaseIsRejected() throws {
        let s = try Self.setup()
        let bundle = try Self.contribute(s, name: "early", data: ProofFixture.windows(ProofFixture.domain, count: 32, seed: 8), steps: 3)
        let id = s.selection.experts[0]
        let (parent, w) = try s.f.library.expertWeights(id)
        var t = w.tensors
        t[0].values[0] += 0.5
        try s.f.library.storeVersion(id, weights: ExpertWeights(tensors: t), parent: parent, producedBy: ["someone"], origin: "test")
        let v = try Validator(library: s.f.library, key: s.validatorKey, policy: Self.policy, heldOut: s.held, background: s.background, batch: 8)
        let verdict = try v.judge(bundle: bundle)
        #expect(!verdict.accept && verdict.reason.hasPrefix("stale base"), "\(verdict.reason)")
    }

    @Test func incrementalAndFullEvaluationAgreeExactly() throws {
        let s = try Self.setup()
        let honest = try Self.contribute(s, name: "honest", data: ProofFixture.windows(ProofFixture.domain, count: 64, seed: 11), steps: 10)
        let v = try Validator(library: s.f.library, key: s.validatorKey, policy: Self.policy, heldOut: s.held, background: s.background, batch: 8)
        let a = try v.judge(bundle: honest)
        let w = try Validator(library: s.f.library, key: s.validatorKey, policy: Self.policy, heldOut: s.held, background: s.background, batch: 8)
        w.fullEvaluation = true
        let b = try w.judge(bundle: honest)
        #expect(a == b)
        // The figures compared are the candidate's own, not the base's: the update moved them.
        let candidate = try #require(a.heldOutLosses)
        #expect(candidate.candidate != candidate.base)
        // And the two paths were really taken: the same candidate's losses, computed from
        // the forward caches and from scratch, agree bit for bit.
        let (_, weights) = try SubmissionBundle.verifyDecoding(honest, library: s.f.library)
        let incremental = try v.candidateLosses(weights, full: false)
        let full = try v.candidateLosses(weights, full: true)
        #expect(incremental.heldOut == full.heldOut && incremental.background == full.background)
        #expect(incremental.heldOut == candidate.candidate)
    }

    /// Forward caches are kept only within the budget; windows past it are evaluated in
    /// full, and the verdict is the same whatever the budget.
    @Test func cacheBudgetBoundsTheCachesAndNotTheFigures() throws {
        let s = try Self.setup()
        let honest = try Self.contribute(s, name: "honest", data: ProofFixture.windows(ProofFixture.domain, count: 64, seed: 11), steps: 10)
        let perBatch = ForwardCache.estimatedBytes(batch: 8, seq: s.held.seq, config: try s.f.library.config())
        var verdicts: [Verdict] = []
        for (budget, heldCached) in [(nil, s.held.count), (0, 0), (perBatch, 8), (2 * perBatch + perBatch / 2, 16)] as [(Int?, Int)] {
            let v = try Validator(library: s.f.library, key: s.validatorKey, policy: Self.policy, heldOut: s.held, background: s.background,
                                  batch: 8, cacheBudget: budget ?? Int.max)
            #expect(v.heldOut.cachedWindows == min(heldCached, s.held.count), "budget \(budget.map(String.init) ?? "none")")
            #expect(v.heldOut.cacheBytes + v.background.cacheBytes <= (budget ?? Int.max))
            if let b = budget, b > 0 {
                // The estimate bounds what a cache holds, and misses by little (the experts' starts).
                let estimate = heldCached / 8 * perBatch
                #expect(v.heldOut.cacheBytes <= estimate && Double(v.heldOut.cacheBytes) > 0.99 * Double(estimate))
            }
            verdicts.append(try v.judge(bundle: honest))
        }
        #expect(verdicts.allSatisfy { $0 == verdicts[0] })
    }

    @Test func mergingKeepsTheBestCandidateAndCreditsMarginalGains() throws {
        #expect(RoundMerge.ties([[1, -2, 0.1, 3], [2, 1, -0.2, 3]], density: 0.5) == [2, -2, 0, 3])
        #expect(RoundMerge.weightedMean([[2, 0], [0, 2]], weights: [3, 1]) == [1.5, 0.5])
        let s = try Self.setup()
        let a = try Self.contribute(s, name: "a", data: ProofFixture.windows(ProofFixture.domain, count: 64, seed: 21), seed: 3)
        let b = try Self.contribute(s, name: "b", data: ProofFixture.windows(ProofFixture.domain, count: 64, seed: 22), seed: 4)
        let v = try Validator(library: s.f.library, key: s.validatorKey, policy: Self.policy, heldOut: s.held, background: s.background, batch: 8)
        var accepted: [RoundMerge.Accepted] = []
        for dir in [a, b] {
            let verdict = try v.judge(bundle: dir)
            #expect(verdict.accept, "\(verdict.reason)")
            let bundle = try SubmissionBundle.verify(dir, library: s.f.library)
            var weights: [ExpertID: ExpertWeights] = [:]
            for item in bundle.items { weights[item.expert] = try s.f.library.decodeDelta(dir + "/" + item.file).weights }
            accepted.append(.init(submission: verdict.submission, contributor: bundle.contributor, gainMicronats: verdict.gainLCBMicronats, weights: weights))
        }
        let before = s.f.library.manifest.experts.map(\.versions.count).reduce(0, +)
        let outcome = try RoundMerge.run(accepted, validator: v, library: s.f.library)
        let best = outcome.candidates.filter { $0.method == .single }.map(\.gain).max()!
        #expect(outcome.chosen.gain >= best)
        #expect(outcome.versions.count == s.selection.experts.count)
        #expect(s.f.library.manifest.experts.map(\.versions.count).reduce(0, +) == before + outcome.versions.count)
        for (sub, credit) in outcome.credits {
            #expect(credit >= 0 && credit <= accepted.first { $0.submission == sub }!.gainMicronats)
        }
        // The library's new versions are what the merge evaluated.
        let merged = try s.f.library.loadModel()
        let gain = mean(zip(v.heldOut.baseLosses, try windowLosses(model: merged, windows: s.held, batch: 8)).map { $0 - $1 })
        #expect(abs(gain - outcome.chosen.gain) < 1e-6)
    }
}

@Suite struct ContributionTests {
    /// With partial residency only the selected experts (and enough others to route top-k)
    /// are loaded; the bundle still updates exactly the selected experts.
    @Test func partialResidencyTrainsTheSelectedExperts() throws {
        let s = try ValidatorTests.setup()
        let resident = Contribution.residentSet(s.selection.experts, config: s.f.config)
        for l in 0..<s.f.config.layers { #expect(resident.filter { $0.layer == l }.count >= s.f.config.topK) }
        #expect(Set(s.selection.experts).isSubset(of: resident))
        let req = Contribution.Request(experts: s.selection.experts, data: ProofFixture.windows(ProofFixture.domain, count: 32, seed: 3), heldOut: nil,
                                       options: ProofFixture.options(steps: 5), partialResidency: true, delta: DeltaOptions(encoding: .lossless),
                                       market: "m", domain: "es", round: "r1")
        let r = try Contribution.run(req, library: s.f.library, key: ParticipantKey.generate(), out: s.f.dir + "/partial", progress: false)
        let bundle = try SubmissionBundle.verify(r.bundle, library: s.f.library, requireCurrent: true)
        #expect(bundle.items.map(\.expert) == s.selection.experts.sorted())
    }

    @Test func tokenWindowsSplitByKeyedHash() throws {
        let scratch = TemporaryDirectory("tokens")
        let dir = scratch.path
        var rng = SplitMix64(seed: 2)
        let ids = (0..<(400 * 16)).map { _ in Int64(rng.next() % 50_000) }
        try SafetensorsWriter.write([TensorRecord(name: "input_ids", shape: [400, 16], int64s: ids)], to: dir + "/tok.safetensors")
        let key = Array(repeating: UInt8(5), count: 16)
        let r = try Corpus.splitTokenWindows(dir + "/tok.safetensors", heldOutBps: 2500, key: key, out: dir + "/out")
        #expect(r.trainWindows + r.heldOutWindows == 400)
        #expect(abs(Double(r.heldOutWindows) / 400 - 0.25) < 0.07)
        let train = try TokenWindows.load(path: dir + "/out/train.safetensors"), held = try TokenWindows.load(path: dir + "/out/heldout.safetensors")
        let heldSet = Set((0..<held.count).map { Array(held.ids[($0 * 16)..<(($0 + 1) * 16)]) })
        #expect((0..<train.count).allSatisfy { !heldSet.contains(Array(train.ids[($0 * 16)..<(($0 + 1) * 16)])) })
        let again = try Corpus.splitTokenWindows(dir + "/tok.safetensors", heldOutBps: 2500, key: key, out: dir + "/again")
        #expect(again.heldOutSHA256 == r.heldOutSHA256)
    }
}
