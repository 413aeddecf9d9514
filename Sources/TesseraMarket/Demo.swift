import Crypto
import Foundation
import TesseraEngine
import TesseraLedger
import TesseraLibrary
import TesseraProof

/// `tessera demo`: one round of the whole market on the bundled base model and real
/// Spanish text, on one machine. Every participant acts through the same library,
/// ledger and Proof-of-Loss code the separate commands use.
public enum Demo {
    public struct Options: Sendable {
        public var experts = "Experts"
        public var policy = "Market"
        public var spanish = "/usr/share/games/fortunes/es"
        public var english = "/usr/share/games/fortunes"
        public var directory: String?
        public var seed: UInt64 = 1
        public var steps = 40
        public var batch = 16
        public var learningRate: Float = 1e-3
        public var topP = 0.3
        /// Share of each contributor's training windows drawn from English (rehearsal
        /// against forgetting, which the validators' background guard punishes).
        public var replay = 0.5
        /// Windows per contributor, per validator set, and served for metering.
        public var trainWindows = 512
        public var evalWindows = 128
        public var servedWindows = 256
        public var revenue: Int64 = 1_000_000
        public var progress = true
        public init() {}
    }

    public struct Report: Codable, Sendable {
        public struct Submission: Codable, Sendable {
            public struct Judgement: Codable, Sendable {
                public var validator: String
                public var accept: Bool
                public var gainLCBMicronats: Int64
                public var regressionUCBMicronats: Int64
                public var maxCosine: Double?
                public var reason: String
                enum CodingKeys: String, CodingKey {
                    case validator, accept, reason
                    case maxCosine = "max_cosine"
                    case gainLCBMicronats = "gain_lcb_micronats"
                    case regressionUCBMicronats = "regression_ucb_micronats"
                }
            }
            public var contributor: String
            public var behaviour: String
            public var bundle: String
            public var experts: [String]
            public var deltaBytes: Int
            public var trainLoss: Double?
            public var verdicts: [Judgement]
            public var state: String
            public var consensusGainMicronats: Int64?
            enum CodingKeys: String, CodingKey {
                case contributor, behaviour, bundle, experts, verdicts, state
                case deltaBytes = "delta_bytes"
                case trainLoss = "train_loss"
                case consensusGainMicronats = "consensus_gain_micronats"
            }
        }
        public struct Holding: Codable, Sendable { public var owner: String; public var units: Int64; public var fraction: Double }
        public struct ExpertShares: Codable, Sendable {
            public var expert: String
            public var version: String
            public var totalUnits: Int64
            public var holders: [Holding]
            enum CodingKeys: String, CodingKey { case expert, version, holders; case totalUnits = "total_units" }
        }
        public struct Payout: Codable, Sendable { public var recipient: String; public var kind: String; public var expert: String?; public var amount: Int64 }

        public var market: String
        public var heldOutLossBefore: Double
        public var heldOutLossAfter: Double
        public var backgroundLossBefore: Double
        public var backgroundLossAfter: Double
        public var commitments: [String: String]
        public var submissions: [Submission]
        public var merge: RoundMerge.Outcome?
        public var shares: [ExpertShares]
        public var revenue: Int64
        public var payouts: [Payout]
        public var payoutSum: Int64
        public var verify: VerifyReport
        public var seconds: Double

        enum CodingKeys: String, CodingKey {
            case market, commitments, submissions, merge, shares, revenue, payouts, verify, seconds
            case heldOutLossBefore = "held_out_loss_before"
            case heldOutLossAfter = "held_out_loss_after"
            case backgroundLossBefore = "background_loss_before"
            case backgroundLossAfter = "background_loss_after"
            case payoutSum = "payout_sum"
        }
    }

    /// A key derived from the seed and a name, so the demo is the same run after run.
    static func key(_ name: String, seed: UInt64) throws -> ParticipantKey {
        let raw = Array(SHA256.hash(data: Array("tessera-demo|\(seed)|\(name)".utf8)))
        return ParticipantKey(privateKey: try Curve25519.Signing.PrivateKey(rawRepresentation: raw))
    }

    public static func run(_ o: Options, log: @escaping (String) -> Void) throws -> Report {
        let started = Date()
        let fm = FileManager.default
        let root = o.directory ?? (NSTemporaryDirectory() as NSString).appendingPathComponent("tessera-demo-\(getpid())")
        // The market is the directory itself (ledger.sqlite, library/, policy/), so every
        // `tessera ledger ... --market DIR` works on it; the participants' files sit beside.
        guard !fm.fileExists(atPath: MarketDirectory(path: root).ledgerPath) else {
            throw LibraryError("\(root) already holds a demo market; choose an empty directory")
        }
        for sub in ["keys", "data", "bundles", "verdicts"] {
            try fm.createDirectory(atPath: (root as NSString).appendingPathComponent(sub), withIntermediateDirectories: true)
        }
        func path(_ p: String) -> String { (root as NSString).appendingPathComponent(p) }

        // Participants.
        let names = ["operator", "publisher", "contributor-1", "contributor-2", "contributor-3", "validator-1", "validator-2"]
        var keys: [String: ParticipantKey] = [:]
        for n in names {
            keys[n] = try key(n, seed: o.seed)
            try keys[n]!.save(to: path("keys/\(n).json"))
        }
        var label: [String: String] = [:]
        for (n, k) in keys { label[k.publicHex] = n }
        var clock: Int64 = 1_800_000_000
        func tick() -> Int64 { clock += 1; return clock }

        log("market: creating \(root) from \(o.experts) and \(o.policy)")
        let marketDir = MarketDirectory(path: root)
        let ledger = try MarketDirectory.create(at: marketDir.path, policyFolder: o.policy, library: o.experts,
                                                operatorKey: keys["operator"]!, publisher: keys["publisher"]!.publicHex, at: tick())
        let policy = ledger.policy
        let library = try ExpertLibrary(directory: marketDir.libraryPath)
        let op = keys["operator"]!
        func record(_ action: LedgerAction, by k: ParticipantKey) throws { _ = try ledger.append(try SignedAction(action, key: k)) }
        for c in ["contributor-1", "contributor-2", "contributor-3"] {
            try record(.register(.init(at: tick(), key: keys[c]!.publicHex, roles: [.contributor], stake: 0)), by: op)
        }
        try record(.register(.init(at: tick(), key: keys["validator-1"]!.publicHex, roles: [.validator], stake: 100)), by: op)
        try record(.register(.init(at: tick(), key: keys["validator-2"]!.publicHex, roles: [.validator], stake: 60)), by: op)

        // Text: the Spanish domain split by the validators' round secret; English held-out
        // text (split by the base model's published key) as the background set.
        guard let domain = try marketDir.domains().first(where: { $0.name == "es" }) else {
            throw LibraryError("\(marketDir.domainsPath): no domain named es")
        }
        let roundKey = Array(SHA256.hash(data: Array("tessera-demo-round-secret|\(o.seed)".utf8)))
        log("data: Spanish from \(o.spanish) (held out \(domain.heldOutBps) bps by the validators' secret), English background from \(o.english)")
        let es = try Corpus.build(inputs: [o.spanish], options: .init(seq: 128, heldOutBps: Int(domain.heldOutBps), key: roundKey, separator: .fortune),
                                  out: path("data/es"))
        _ = try Corpus.build(inputs: [o.english], options: .init(seq: 128, heldOutBps: BaseModel.heldOutBps, key: BaseModel.heldOutKey, separator: .fortune),
                             out: path("data/en"))
        let esTrain = try TokenWindows.load(path: path("data/es/train.safetensors"))
        // Each validator judges on its own half of the held-out windows: nobody else's data.
        let esHeldAll = try TokenWindows.load(path: path("data/es/heldout.safetensors"))
        let validatorNames = ["validator-1", "validator-2"]
        var heldOut: [String: TokenWindows] = [:]
        for (i, v) in validatorNames.enumerated() { heldOut[v] = esHeldAll.share(i, of: 2).prefix(o.evalWindows) }
        let esHeld = heldOut["validator-1"]!
        // Saved so that `tessera verdict check` can re-run any verdict from the kept directory.
        for v in validatorNames { try heldOut[v]!.write(to: path("data/\(v)-heldout.safetensors")) }
        let enTrain = try TokenWindows.load(path: path("data/en/train.safetensors"))
        let enHeld = try TokenWindows.load(path: path("data/en/heldout.safetensors")).prefix(o.evalWindows)
        try enHeld.write(to: path("data/background.safetensors"))
        log("data: \(es.trainWindows) Spanish training windows, \(es.heldOutWindows) held out (each validator uses \(esHeld.count) of its own half); \(enHeld.count) English background windows")

        // The round, and each validator's commitment to its held-out windows.
        let round = "es-1"
        let allExperts = library.manifest.experts.map { ExpertRef(layer: $0.layer, expert: $0.expert) }
        try record(.openRound(.init(at: tick(), round: round, domain: "es", experts: allExperts, closesAt: clock + 10_000)), by: op)
        var commitments: [String: String] = [:]
        var salts: [String: [UInt8]] = [:]
        for v in validatorNames {
            let salt = Array(SHA256.hash(data: Array("salt|\(o.seed)|\(v)".utf8)))
            salts[v] = salt
            commitments[v] = HeldOutCommitment.commitment(heldOutSHA256: heldOut[v]!.contentHash, salt: salt)
            try record(.commit(.init(at: tick(), round: round, commitment: commitments[v]!)), by: keys[v]!)
        }
        log("round \(round) open on domain es; each validator committed to its held-out windows")

        // Contributors: select, claim, train, bundle, submit.
        var submissions: [Report.Submission] = []
        var bundleDirs: [String] = []
        var c1Deltas: [String] = []
        var c1Experts: [ExpertID] = []
        let baseModel = try library.loadModel()
        for (i, c) in ["contributor-1", "contributor-2", "contributor-3"].enumerated() {
            let k = keys[c]!
            let replayCount = o.replay > 0 ? Int((Double(o.trainWindows) * o.replay / (1 - o.replay)).rounded()) : 0
            let share = try esTrain.share(i, of: 3).prefix(o.trainWindows).appending(enTrain.share(i, of: 3).prefix(replayCount))
            let dir = path("bundles/\(c)")
            var experts: [ExpertID]
            var behaviour = "honest"
            var trainLoss: Double?
            if i < 2 {
                let selection = try ExpertSelection.compute(model: baseModel, data: esTrain.share(i, of: 3).prefix(128), score: .token, topP: o.topP)
                try selection.save(path("data/\(c)-selection.json"))
                experts = selection.experts
                try record(.claim(.init(at: tick(), round: round, experts: experts.map { ExpertRef(layer: $0.layer, expert: $0.expert) }, expiresAt: clock + 5_000)), by: k)
                log("\(c): selected \(experts.count) experts by token affinity (p = \(o.topP)): \(experts.map(\.description).joined(separator: " ")); training \(o.steps) steps")
                var options = TrainingOptions(steps: o.steps, batch: o.batch, learningRate: o.learningRate, warmupSteps: max(1, o.steps / 10),
                                              seed: o.seed &+ UInt64(i))
                options.clipNorm = 1
                let request = Contribution.Request(experts: experts, data: share, heldOut: nil, options: options, partialResidency: false,
                                                   delta: DeltaOptions(encoding: .sparse, density: 0.25), market: "demo", domain: "es", round: round)
                let r = try Contribution.run(request, library: library, key: k, out: dir, progress: o.progress)
                trainLoss = r.training.history.last?.trainLoss
                if i == 0 {
                    c1Experts = experts
                    c1Deltas = try fm.contentsOfDirectory(atPath: dir + "/deltas").sorted().map { dir + "/deltas/" + $0 }
                }
            } else {
                // The dishonest one re-signs contributor-1's deltas as its own work.
                behaviour = "dishonest: re-signs contributor-1's deltas"
                experts = c1Experts
                try record(.claim(.init(at: tick(), round: round, experts: experts.map { ExpertRef(layer: $0.layer, expert: $0.expert) }, expiresAt: clock + 5_000)), by: k)
                _ = try SubmissionBundle.create(key: k, market: "demo", domain: "es", round: round, deltas: c1Deltas,
                                                training: .object([("note", .string("copied"))]), library: library, into: dir)
                log("\(c): copies contributor-1's deltas and signs them")
            }
            let bundle = try SubmissionBundle.verify(dir, library: library, requireCurrent: true)
            let (hash, sig) = try SubmissionBundle.submissionRecord(dir)
            try record(.submit(.init(at: tick(), round: round, bundle: hash, bundleSignature: sig,
                                     experts: bundle.items.map { ExpertRef(layer: $0.expert.layer, expert: $0.expert.expert, version: $0.base) })), by: k)
            bundleDirs.append(dir)
            submissions.append(.init(contributor: c, behaviour: behaviour, bundle: hash, experts: experts.map(\.description),
                                     deltaBytes: bundle.items.reduce(0) { $0 + $1.size }, trainLoss: trainLoss, verdicts: [], state: "pending"))
        }

        // Validators: Proof-of-Loss on every submission, in submission order.
        var firstValidator: Validator?
        for v in validatorNames {
            log("\(v): evaluating the base model on its \(heldOut[v]!.count) held-out and \(enHeld.count) background windows (forward caches kept)")
            let validator = try Validator(library: library, key: keys[v]!, policy: policy.proofPolicy, heldOut: heldOut[v]!, background: enHeld)
            if firstValidator == nil { firstValidator = validator }
            for (i, dir) in bundleDirs.enumerated() {
                let verdict = try validator.judge(bundle: dir)
                try verdict.save(signedBy: keys[v]!, to: path("verdicts/\(v)-\(submissions[i].contributor).json"))
                try record(.verdict(.init(at: tick(), submission: verdict.submission, gainLCBMicronats: verdict.gainLCBMicronats,
                                          regressionUCBMicronats: verdict.regressionUCBMicronats, accept: verdict.accept, reason: verdict.reason)), by: keys[v]!)
                submissions[i].verdicts.append(.init(validator: v, accept: verdict.accept, gainLCBMicronats: verdict.gainLCBMicronats,
                                                     regressionUCBMicronats: verdict.regressionUCBMicronats, maxCosine: verdict.maxCosine,
                                                     reason: verdict.reason))
                log("\(v) on \(submissions[i].contributor): \(verdict.accept ? "ACCEPT" : "REJECT") — \(verdict.reason)")
            }
        }
        try record(.closeRound(.init(at: tick(), round: round)), by: op)
        for v in validatorNames {
            try record(.reveal(.init(at: tick(), round: round, salt: Hex.encode(salts[v]!), heldOutSHA256: heldOut[v]!.contentHash)), by: keys[v]!)
        }
        log("round closed; validators revealed their held-out windows and the ledger checked them against the commitments")

        // Merge the accepted updates into new versions; mint shares by credit.
        var state = try ledger.currentState()
        for i in submissions.indices {
            let s = state.submissions[submissions[i].bundle]!
            submissions[i].state = s.state.rawValue
            submissions[i].consensusGainMicronats = s.consensusGain
        }
        var merge: RoundMerge.Outcome?
        if let validator = firstValidator, submissions.contains(where: { $0.state == "accepted" }) {
            log("merge: validating TIES and gain-weighted merges of the accepted updates against the best single one")
            merge = try MarketMerge.run(ledger: ledger, library: library, bundles: bundleDirs, validator: validator, operatorKey: op, at: tick())
            if let outcome = merge {
                log("merge: kept \(outcome.chosen.method.rawValue) (held-out gain " + String(format: "%.4f", outcome.chosen.gain) + " nats/token); \(outcome.versions.count) new expert versions")
            }
        }
        state = try ledger.currentState()
        for i in submissions.indices { submissions[i].state = state.submissions[submissions[i].bundle]!.state.rawValue }

        // Serve Spanish text through the updated model, meter expert usage, distribute revenue.
        let served = esTrain.share(0, of: 7).prefix(o.servedWindows)
        let updated = try library.loadModel()
        let versions = try library.versions()
        var gate = [[Double]](repeating: [Double](repeating: 0, count: updated.config.experts), count: updated.config.layers)
        try served.forEachBatch(model: updated, batch: 16) { run, _ in
            for l in gate.indices { for e in gate[l].indices { gate[l][e] += run.routerStats.gateMass[l][e] } }
        }
        let usage = library.manifest.experts.map { e in
            LedgerAction.Usage(layer: e.layer, expert: e.expert, version: versions[e.id]!, usage: Int64((gate[e.layer][e.expert] * 1000).rounded()))
        }.filter { $0.usage > 0 }
        try record(.revenue(.init(at: tick(), domain: "es", period: "demo-1", amount: o.revenue, usage: usage)), by: op)
        log("served \(served.count) Spanish windows through the updated model; revenue \(o.revenue) minor units distributed by metered gate mass")

        let after = try windowLosses(model: updated, windows: esHeld, batch: 16)
        let bgAfter = try windowLosses(model: updated, windows: enHeld, batch: 16)
        var shares: [Report.ExpertShares] = []
        for v in merge?.versions ?? [] {
            let id = ExpertID(layer: v.layer, expert: v.expert)
            if let e = try ledger.expert(id) {
                shares.append(.init(expert: id.description, version: e.currentVersion, totalUnits: e.totalUnits,
                                    holders: e.holders.map { .init(owner: label[$0.owner] ?? $0.owner, units: $0.units,
                                                                   fraction: Double($0.units) / Double(max(e.totalUnits, 1))) }))
            }
        }
        let payouts = try ledger.payouts().map { p in
            Report.Payout(recipient: label[p.recipient] ?? p.recipient, kind: p.kind,
                          expert: p.layer.flatMap { l in p.expert.map { "\(l):\($0)" } }, amount: p.amount)
        }
        let verify = try Ledger.verify(store: ledger.store, policy: policy)
        let v0 = firstValidator!
        return Report(market: marketDir.path, heldOutLossBefore: mean(v0.heldOut.baseLosses), heldOutLossAfter: mean(after),
                      backgroundLossBefore: mean(v0.background.baseLosses), backgroundLossAfter: mean(bgAfter), commitments: commitments,
                      submissions: submissions, merge: merge, shares: shares, revenue: o.revenue, payouts: payouts,
                      payoutSum: payouts.reduce(0) { $0 + $1.amount }, verify: verify, seconds: Date().timeIntervalSince(started))
    }
}

/// Facts about the bundled base model that the demo and the docs share.
public enum BaseModel {
    /// The key of the base model's English held-out split. It is public: the base's
    /// held-out text guards against forgetting, it is not a secret test.
    public static let heldOutKey = Array("tessera base hold".utf8)
    public static let heldOutBps = 1000
}
