import Crypto
import Foundation
import TesseraCore
import TesseraEngine
import TesseraLedger
import TesseraLibrary
import TesseraProof

/// `tessera demo`: one round of the whole market on the bundled base model and the text of
/// one domain of the market's rules, on one machine. Every participant acts through the
/// same library, ledger and Proof-of-Loss code the separate commands use. The round is a
/// sequence of named steps (`steps`), each a method, so another driver (a demo whose
/// participants are separate processes, say) can run the same steps.
public final class Demo {
    public struct Options: Sendable {
        public var experts = "Experts"
        public var policy = "Market"
        /// The domain of the round (a file in the rules' domains/ folder).
        public var domain = "es"
        /// The domain's text, when not where its domain file says.
        public var text: String?
        /// General text the base was trained on: the background that guards against forgetting.
        public var background = "/usr/share/games/fortunes"
        public var directory: String?
        /// A PostgreSQL database (empty) for the ledger instead of the directory's SQLite file.
        public var database: String?
        public var seed: UInt64 = 1
        public var steps = 40
        public var batch = 16
        /// Contributors train low-rank adapters of this rank and submit 4-bit factors (0:
        /// every weight of their experts, submitted as sparse deltas).
        public var loraRank = TrainingDefaults.adapterRank
        /// How contributors submit: adapters' 4-bit factors, or sparse deltas of a full update.
        /// The in-process and the network demo both take it from here.
        public var contributorDelta: DeltaOptions {
            loraRank > 0 ? DeltaOptions(encoding: .lowRank, rank: loraRank, factorBits: TrainingDefaults.adapterFactorBits)
                : DeltaOptions(encoding: .sparse, density: 0.25)
        }
        /// Contributors' peak learning rate and weight decay (nil: `TrainingDefaults` for
        /// adapters or full weights).
        public var learningRate: Float?
        public var weightDecay: Float?
        public var contributorLearningRate: Float {
            learningRate ?? (loraRank > 0 ? TrainingDefaults.adapterLearningRate : TrainingDefaults.fullLearningRate)
        }
        /// With adapters and no decay given, the one that spends the default budget over
        /// the contributors' schedule.
        public var contributorWeightDecay: Float {
            if let weightDecay { return weightDecay }
            guard loraRank > 0 else { return 0 }
            return TrainingDefaults.adapterWeightDecay(for: TrainingOptions(steps: steps, batch: batch, learningRate: contributorLearningRate,
                                                                            warmupSteps: max(1, steps / 10), seed: seed))
        }
        public var topP = 0.3
        /// Share of each contributor's training windows drawn from the background text
        /// (rehearsal against forgetting, which the validators' background guard punishes).
        public var replay = 0.75
        /// Windows per contributor, per validator set, and served for metering.
        public var trainWindows = 512
        public var evalWindows = 128
        public var servedWindows = 256
        public var revenue: Int64 = 1_000_000
        public var matmul = MatmulPrecision.machineDefault
        public var progress = true
        public init() {}
    }

    public typealias Report = DemoReport

    let o: Options
    let log: (String) -> Void
    let started = Date()
    let root: String
    let directory: MarketDirectory
    let rules: MarketPolicyFolder
    let domain: DomainPolicy
    let textPath: String
    let round: String
    static let contributorNames = ["contributor-1", "contributor-2", "contributor-3"]
    static let validatorNames = ["validator-1", "validator-2"]

    var keys: [String: ParticipantKey] = [:]
    var label: [String: String] = [:]
    var clock: Int64 = 1_800_000_000
    /// The market as the participants reach it: the directory, or its server's URL in the
    /// network demo.
    var market: (any MarketConnection)!
    var library: ExpertLibrary!
    var text: DemoText!
    var commitments: [String: String] = [:]
    var salts: [String: [UInt8]] = [:]
    var submissions: [Report.Submission] = []
    var bundleDirs: [String] = []
    var validators: [String: Validator] = [:]
    var merge: RoundMerge.Outcome?
    /// The base model's per-window losses on validator-1's held-out and the background
    /// windows, when no validator ran in this process (the network demo reads them from
    /// validator-1's verdicts).
    var baseLosses: (heldOut: [Double], background: [Double])?

    /// The held-out and background windows of the round.
    struct DemoText {
        var train: TokenWindows
        var heldOut: [String: TokenWindows]
        var backgroundTrain: TokenWindows
        var background: TokenWindows
    }

    /// Checks every input before anything is written: the rules and the domain, the
    /// library, the text paths, the training settings, and that the directory holds no
    /// market yet.
    public init(_ options: Options, log: @escaping (String) -> Void) throws {
        o = options
        self.log = log
        guard o.steps > 0 else { throw CoreError("--steps \(o.steps) must be positive") }
        guard o.contributorLearningRate.isFinite, o.contributorLearningRate > 0 else { throw CoreError("--lr \(o.contributorLearningRate) must be a positive number") }
        guard o.contributorWeightDecay.isFinite, o.contributorWeightDecay >= 0 else { throw CoreError("--weight-decay \(o.contributorWeightDecay) must be ≥ 0") }
        guard (0...LowRankAdapters.maxRank).contains(o.loraRank) else { throw CoreError("--lora-rank \(o.loraRank) must be in 0...\(LowRankAdapters.maxRank)") }
        guard (0..<1).contains(o.replay) else { throw CoreError("--replay \(o.replay) must be in [0, 1)") }
        guard o.topP > 0, o.topP <= 1 else { throw CoreError("--top-p \(o.topP) must be in (0, 1]") }
        guard o.batch > 0, o.trainWindows > 0, o.evalWindows > 0, o.servedWindows > 0, o.revenue > 0 else {
            throw CoreError("batch, window counts and revenue must be positive")
        }
        rules = try MarketPolicyFolder(path: o.policy)
        try rules.proof.requireUsablePrecision(file: rules.marketFile)
        domain = try rules.domain(o.domain)
        textPath = o.text ?? domain.text
        for (what, path) in [("the \(domain.name) text (\(o.text == nil ? "domain.text of \(domain.name).toml" : "--text"))", textPath),
                             ("the background text (--background)", o.background)] where !FileManager.default.fileExists(atPath: path) {
            throw CoreError("\(path): \(what) does not exist" + (o.text == nil && path == textPath ? "; install \(domain.source) or give --text" : ""))
        }
        _ = try ExpertLibrary(directory: o.experts)
        root = o.directory ?? (NSTemporaryDirectory() as NSString).appendingPathComponent("tessera-demo-\(getpid())")
        directory = MarketDirectory(path: root)
        guard !directory.exists else { throw LibraryError("\(root) already holds a demo market; choose an empty directory") }
        round = "\(domain.name)-1"
    }

    /// The round, step by step.
    public var steps: [(name: String, run: () async throws -> Void)] {
        [("participants", createParticipants), ("market", createMarket), ("registrations", registerParticipants),
         ("text", prepareText), ("open round", openRound), ("contributions", contribute), ("verdicts", judge),
         ("close round", closeRound), ("merge", mergeAccepted), ("serving and revenue", serveAndPay)]
    }

    public static func run(_ options: Options, log: @escaping (String) -> Void) async throws -> Report {
        let demo = try Demo(options, log: log)
        for step in demo.steps { try await step.run() }
        return try await demo.report()
    }

    func path(_ p: String) -> String { (root as NSString).appendingPathComponent(p) }
    /// The actions' time: a clock of its own that ticks once per action (a reproducible
    /// history), or the real clock when a server holds actions to it (the network demo).
    func tick() -> Int64 {
        clock = realClock ? max(clock, Int64(Date().timeIntervalSince1970)) : clock + 1
        return clock
    }
    var realClock = false
    /// 2023-11-14: earlier than every action of either clock.
    static let genesisTime: Int64 = 1_700_000_000
    func record(_ action: LedgerAction, by k: ParticipantKey) async throws { _ = try await market.post(try SignedAction(action, key: k)) }

    /// A key derived from the seed and a name, so the demo is the same run after run.
    static func key(_ name: String, seed: UInt64) throws -> ParticipantKey {
        let raw = Array(SHA256.hash(data: Array("tessera-demo|\(seed)|\(name)".utf8)))
        return ParticipantKey(privateKey: try Curve25519.Signing.PrivateKey(rawRepresentation: raw))
    }

    func createParticipants() async throws {
        for sub in ["keys", "data", "bundles", "verdicts"] {
            try FileManager.default.createDirectory(atPath: path(sub), withIntermediateDirectories: true)
        }
        for n in ["operator", "publisher"] + Self.contributorNames + Self.validatorNames {
            let k = try Self.key(n, seed: o.seed)
            keys[n] = k
            label[k.publicHex] = n
            try k.save(to: path("keys/\(n).json"))
        }
    }

    func createMarket() async throws {
        log("market: creating \(root) from \(o.experts) and \(o.policy)")
        // One genesis time for both transports, before any later action of either: the
        // market's ID (the genesis hash) is signed into every bundle, and the two transports'
        // bundles are to be the same bytes.
        _ = try MarketDirectory.create(at: directory.path, policyFolder: o.policy, library: o.experts,
                                       operatorKey: keys["operator"]!, publisher: keys["publisher"]!.publicHex, at: Self.genesisTime,
                                       database: o.database)
        let local = try LocalMarket(directory: directory)
        market = local
        library = local.library
    }

    func registerParticipants() async throws {
        let op = keys["operator"]!
        for c in Self.contributorNames {
            try await record(.register(.init(at: tick(), key: keys[c]!.publicHex, roles: [.contributor], stake: 0)), by: op)
        }
        for (v, stake) in zip(Self.validatorNames, [100, 60] as [Int64]) {
            try await record(.register(.init(at: tick(), key: keys[v]!.publicHex, roles: [.validator], stake: stake)), by: op)
        }
    }

    /// The domain's text split by the validators' round secret (each validator judges on
    /// its own half of the held-out windows); the background text split by the base
    /// model's published key.
    func prepareText() async throws {
        let roundKey = Array(SHA256.hash(data: Array("tessera-demo-round-secret|\(o.seed)".utf8)))
        log("data: \(domain.language) text from \(textPath) (held out \(domain.heldOutBps) bps by the validators' secret), background from \(o.background)")
        let split = try Corpus.build(inputs: [textPath], options: .init(seq: 128, heldOutBps: Int(domain.heldOutBps), key: roundKey, separator: .fortune),
                                     out: path("data/\(domain.name)"))
        _ = try Corpus.build(inputs: [o.background], options: .init(seq: 128, heldOutBps: BaseModel.heldOutBps, key: BaseModel.heldOutKey, separator: .fortune),
                             out: path("data/background"))
        let heldAll = try TokenWindows.load(path: path("data/\(domain.name)/heldout.safetensors"))
        var heldOut: [String: TokenWindows] = [:]
        for (i, v) in Self.validatorNames.enumerated() {
            heldOut[v] = heldAll.share(i, of: 2).prefix(o.evalWindows)
            // Saved so that `tessera verdict check` can re-run any verdict from the kept directory.
            try heldOut[v]!.write(to: path("data/\(v)-heldout.safetensors"))
        }
        let background = try TokenWindows.load(path: path("data/background/heldout.safetensors")).prefix(o.evalWindows)
        try background.write(to: path("data/background.safetensors"))
        text = DemoText(train: try TokenWindows.load(path: path("data/\(domain.name)/train.safetensors")), heldOut: heldOut,
                        backgroundTrain: try TokenWindows.load(path: path("data/background/train.safetensors")), background: background)
        guard text.train.count >= 3, heldOut.values.allSatisfy({ $0.count > 0 }), background.count > 0 else {
            throw CoreError("\(textPath): too little text for a round (\(split.trainWindows) training and \(split.heldOutWindows) held-out windows of 128 bytes)")
        }
        log("data: \(split.trainWindows) training windows, \(split.heldOutWindows) held out (each validator uses \(heldOut[Self.validatorNames[0]]!.count) of its own half); \(background.count) background windows")
    }

    /// Opens the round on the domain; each validator commits to its held-out windows.
    func openRound() async throws {
        let allExperts = library.manifest.experts.map { ExpertRef(layer: $0.layer, expert: $0.expert) }
        try await record(.openRound(.init(at: tick(), round: round, domain: domain.name, experts: allExperts, closesAt: clock + 10_000)), by: keys["operator"]!)
        for v in Self.validatorNames {
            let salt = Array(SHA256.hash(data: Array("salt|\(o.seed)|\(v)".utf8)))
            salts[v] = salt
            commitments[v] = HeldOutCommitment.commitment(heldOutSHA256: text.heldOut[v]!.contentHash, salt: salt)
            try await record(.commit(.init(at: tick(), round: round, commitment: commitments[v]!)), by: keys[v]!)
        }
        log("round \(round) open on domain \(domain.name); each validator committed to its held-out windows")
    }

    /// Two honest contributors select, claim, train and submit; the third re-signs the
    /// first one's deltas as its own.
    func contribute() async throws {
        let baseModel = try library.loadModel()
        var firstDeltas: [String] = []
        var firstExperts: [ExpertID] = []
        // Every bundle is signed for this market (the hash of its genesis event).
        let marketID = try await market.summary().marketID
        for (i, c) in Self.contributorNames.enumerated() {
            let k = keys[c]!
            let dir = path("bundles/\(c)")
            var experts: [ExpertID]
            var behaviour = "honest"
            var trainLoss: Double?
            if i < 2 {
                let selection = try ExpertSelection.compute(model: baseModel, data: text.train.share(i, of: 3).prefix(128), score: .token, topP: o.topP,
                                                            matmul: o.matmul)
                try selection.save(path("data/\(c)-selection.json"))
                experts = selection.experts
                try await record(.claim(.init(at: tick(), round: round, experts: experts.map { ExpertRef(layer: $0.layer, expert: $0.expert) }, expiresAt: clock + 5_000)), by: k)
                log("\(c): selected \(experts.count) experts by token affinity (p = \(o.topP)): \(experts.map(\.description).joined(separator: " ")); training \(o.steps) steps")
                let replayCount = o.replay > 0 ? Int((Double(o.trainWindows) * o.replay / (1 - o.replay)).rounded()) : 0
                let share = try text.train.share(i, of: 3).prefix(o.trainWindows).appending(text.backgroundTrain.share(i, of: 3).prefix(replayCount))
                var options = TrainingOptions(steps: o.steps, batch: o.batch, learningRate: o.contributorLearningRate, warmupSteps: max(1, o.steps / 10),
                                              seed: o.seed &+ UInt64(i))
                options.clipNorm = 1
                options.weightDecay = o.contributorWeightDecay
                options.lowRank = o.loraRank > 0 ? o.loraRank : nil
                let request = Contribution.Request(experts: experts, data: share, heldOut: nil, options: options, partialResidency: false,
                                                   delta: o.contributorDelta, market: marketID, domain: domain.name,
                                                   round: round, matmul: o.matmul)
                let r = try Contribution.run(request, library: library, key: k, out: dir, progress: o.progress)
                trainLoss = r.training.history.last?.trainLoss
                if i == 0 {
                    firstExperts = experts
                    firstDeltas = try FileManager.default.contentsOfDirectory(atPath: dir + "/deltas").sorted().map { dir + "/deltas/" + $0 }
                }
            } else {
                behaviour = "dishonest: re-signs contributor-1's deltas"
                experts = firstExperts
                try await record(.claim(.init(at: tick(), round: round, experts: experts.map { ExpertRef(layer: $0.layer, expert: $0.expert) }, expiresAt: clock + 5_000)), by: k)
                _ = try SubmissionBundle.create(key: k, market: marketID, domain: domain.name, round: round, deltas: firstDeltas,
                                                training: .object([("note", .string("copied"))]), library: library, into: dir)
                log("\(c): copies contributor-1's deltas and signs them")
            }
            let bundle = try SubmissionBundle.verify(dir, library: library, requireCurrent: true)
            let (hash, sig) = try SubmissionBundle.submissionRecord(dir)
            try await record(.submit(.init(at: tick(), round: round, bundle: hash, bundleSignature: sig,
                                     experts: bundle.items.map { ExpertRef(layer: $0.expert.layer, expert: $0.expert.expert, version: $0.base) })), by: k)
            bundleDirs.append(dir)
            submissions.append(.init(contributor: c, behaviour: behaviour, bundle: hash, experts: experts.map(\.description),
                                     deltaBytes: bundle.items.reduce(0) { $0 + $1.size }, trainLossNatsPerToken: trainLoss, verdicts: [],
                                     state: "pending", unitsEarned: 0, outcome: ""))
        }
    }

    /// Each validator runs Proof-of-Loss on every submission, in submission order, and
    /// records its signed verdicts.
    func judge() async throws {
        for v in Self.validatorNames {
            log("\(v): evaluating the base model on its \(text.heldOut[v]!.count) held-out and \(text.background.count) background windows (forward caches kept)")
            let validator = try Validator(library: library, key: keys[v]!, policy: rules.proof, heldOut: text.heldOut[v]!, background: text.background)
            validators[v] = validator
            for (i, dir) in bundleDirs.enumerated() {
                let verdict = try validator.judge(bundle: dir)
                try verdict.save(signedBy: keys[v]!, to: path("verdicts/\(v)-\(submissions[i].contributor).json"))
                try await record(.verdict(.init(at: tick(), submission: verdict.submission, gainLCBMicronats: verdict.gainLCBMicronats,
                                          regressionUCBMicronats: verdict.regressionUCBMicronats, accept: verdict.accept, reason: verdict.reason)), by: keys[v]!)
                submissions[i].verdicts.append(.init(validator: v, accept: verdict.accept, gainLCBMicronatsPerToken: verdict.gainLCBMicronats,
                                                     regressionUCBMicronatsPerToken: verdict.regressionUCBMicronats, maxCosine: verdict.maxCosine,
                                                     reason: verdict.reason))
                log("\(v) on \(submissions[i].contributor): \(verdict.accept ? "ACCEPT" : "REJECT") — \(verdict.reason)")
            }
        }
    }

    /// The operator closes the round; the validators reveal what they committed to.
    func closeRound() async throws {
        try await record(.closeRound(.init(at: tick(), round: round)), by: keys["operator"]!)
        for v in Self.validatorNames {
            try await record(.reveal(.init(at: tick(), round: round, salt: Hex.encode(salts[v]!), heldOutSHA256: text.heldOut[v]!.contentHash)), by: keys[v]!)
        }
        log("round closed; validators revealed their held-out windows and the ledger checked them against the commitments")
    }

    /// The operator merges the accepted updates into new versions and mints shares by credit.
    func mergeAccepted() async throws {
        let state = try await market.state()
        guard let validator = validators[Self.validatorNames[0]],
              submissions.contains(where: { state.submissions[$0.bundle]?.state == .accepted }) else { return }
        log("merge: validating TIES and gain-weighted merges of the accepted updates against the best single one")
        merge = try await MarketMerge.run(market: market, library: library, bundles: bundleDirs, validator: validator, operatorKey: keys["operator"]!, at: tick())
        if let outcome = merge {
            log("merge: kept \(outcome.chosen.method.rawValue) (held-out gain " + String(format: "%.4f", outcome.chosen.gain) + " nats/token); \(outcome.versions.count) new expert versions")
        }
    }

    /// Text of the domain is served through the updated model while the routing is
    /// metered; a revenue event pays the owners by that usage.
    func serveAndPay() async throws {
        let served = text.train.share(0, of: 7).prefix(o.servedWindows)
        library = try ExpertLibrary(directory: directory.libraryPath)
        let updated = try library.loadModel()
        let versions = try library.versions()
        var gate = [[Double]](repeating: [Double](repeating: 0, count: updated.config.experts), count: updated.config.layers)
        try served.forEachBatch(model: updated, batch: 16, matmul: o.matmul) { run, _ in
            for l in gate.indices { for e in gate[l].indices { gate[l][e] += run.routerStats.gateMass[l][e] } }
        }
        let usage = library.manifest.experts.map { e in
            LedgerAction.Usage(layer: e.layer, expert: e.expert, version: versions[e.id]!, usage: Int64((gate[e.layer][e.expert] * 1000).rounded()))
        }.filter { $0.usage > 0 }
        try await record(.revenue(.init(at: tick(), domain: domain.name, period: "\(domain.name)-demo-1", amount: o.revenue, usage: usage)), by: keys["operator"]!)
        log("served \(served.count) windows of \(domain.language) text through the updated model; revenue \(o.revenue) minor units distributed by metered gate mass")
    }

    /// The report: losses before and after, every submission's fate and why, shares,
    /// payouts, and the ledger's own verification.
    public func report() async throws -> Report {
        let state = try await market.state()
        let updated = try library.loadModel()
        let v0 = validators[Self.validatorNames[0]]
        let base = baseLosses ?? (v0?.heldOut.baseLosses ?? [], v0?.background.baseLosses ?? [])
        let heldOut = text.heldOut[Self.validatorNames[0]]!
        // In the validators' precision, so that before and after compare like with like.
        let precision = v0?.matmul ?? rules.proof.matmul
        let after = try windowLosses(model: updated, windows: heldOut, batch: 16, matmul: precision)
        let bgAfter = try windowLosses(model: updated, windows: text.background, batch: 16, matmul: precision)
        for i in submissions.indices {
            guard let s = state.submissions[submissions[i].bundle] else { continue }
            submissions[i].state = s.state.rawValue
            submissions[i].consensusGainMicronatsPerToken = s.consensusGain
            let contributor = keys[submissions[i].contributor]!.publicHex
            submissions[i].unitsEarned = try await market.shares(owner: contributor).holdings.reduce(0) { $0 + $1.units }
            submissions[i].outcome = Self.outcome(s, bundle: submissions[i].bundle, merge: merge, units: submissions[i].unitsEarned)
        }
        var shares: [Report.ExpertShares] = []
        for v in merge?.versions ?? [] {
            let id = ExpertID(layer: v.layer, expert: v.expert)
            if let e = try await market.expert(id) {
                shares.append(.init(expert: id.description, version: e.currentVersion, totalUnits: e.totalUnits,
                                    holders: e.holders.map { .init(owner: label[$0.owner] ?? $0.owner, units: $0.units,
                                                                   fraction: Double($0.units) / Double(max(e.totalUnits, 1))) }))
            }
        }
        let payouts = try await market.payouts(event: nil).map { p in
            Report.Payout(recipient: label[p.recipient] ?? p.recipient, kind: p.kind,
                          expert: p.layer.flatMap { l in p.expert.map { "\(l):\($0)" } }, amountMinorUnits: p.amount)
        }
        let verify = try await market.verify()
        return Report(market: directory.path, domain: domain.name, language: domain.language, round: round,
                      heldOutLossBeforeNatsPerToken: mean(base.heldOut), heldOutLossAfterNatsPerToken: mean(after),
                      backgroundLossBeforeNatsPerToken: mean(base.background), backgroundLossAfterNatsPerToken: mean(bgAfter),
                      commitments: commitments, submissions: submissions, merge: merge, shares: shares, revenueMinorUnits: o.revenue,
                      payouts: payouts, payoutSumMinorUnits: payouts.reduce(0) { $0 + $1.amountMinorUnits }, verify: verify,
                      seconds: Date().timeIntervalSince(started))
    }

    /// What became of a submission, in words a contributor can act on.
    static func outcome(_ s: LedgerState.Submission, bundle: String, merge: RoundMerge.Outcome?, units: Int64) -> String {
        switch s.state {
        case .pending: return "pending: fewer verdicts than the quorum"
        case .rejected: return "rejected by the validators' consensus; earns nothing"
        case .merged: return "merged into new expert versions; its contributor holds \(units) units"
        case .accepted:
            guard let m = merge else { return "accepted, not yet merged: it earns units only when a new version merges it" }
            let kept = "the merge kept \(m.chosen.method.rawValue) of \(m.chosen.members.count) update(s) (held-out gain "
                + String(format: "%.4f", m.chosen.gain) + " nats/token)"
            return "accepted by the validators but not merged: \(kept), which validated better than every candidate including this update, so it minted no units for it"
        }
    }
}

/// Facts about the bundled base model that the demo and the docs share.
public enum BaseModel {
    /// The key of the base model's English held-out split. It is public: the base's
    /// held-out text guards against forgetting, it is not a secret test.
    public static let heldOutKey = Array("tessera base hold".utf8)
    public static let heldOutBps = 1000
}
