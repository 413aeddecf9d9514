import Foundation
import TesseraCore
import TesseraEngine
import TesseraLedger
import TesseraLibrary
import TesseraProof

/// `tessera contribute`: a contributor's whole round against a market — fetch the library,
/// select experts, claim them, train, submit the bundle's hash in the window, wait for the
/// window to close, upload the bundle. Each step's result is kept in the work directory
/// (the signed actions themselves, so re-posting one after a kill records nothing new), and
/// a rerun continues after the last finished step.
public final class ContributorWorkflow {
    public struct Options: Sendable {
        public var round: String
        public var data: String
        public var replay: String?
        public var replayShare = 0.5
        public var experts: [ExpertID]?
        public var topP = 0.3
        public var selectionWindows = 128
        public var training: TrainingOptions
        public var delta = DeltaOptions(encoding: .sparse, density: 0.25)
        public var matmul = MatmulPrecision.machineDefault
        /// `Trainer.recomputeActivations` (nil: only when keeping them would not fit).
        public var recomputeActivations: Bool?
        /// Seconds between looks at the round while waiting for its window to close.
        public var pollSeconds = 2.0
        /// Name of the market signed into the bundle.
        public init(round: String, data: String, training: TrainingOptions) {
            self.round = round; self.data = data; self.training = training
        }
    }

    /// What has been done so far, kept in `work/contribute.json`.
    struct Progress: Codable {
        var fetched = false
        var experts: [ExpertID]?
        var claim: ActionEnvelope?
        var trained = false
        var submit: ActionEnvelope?
        var uploaded: String?
    }

    public struct Report: Codable, Sendable {
        public var submission: String
        public var experts: [ExpertID]
        public var deltaBytes: Int
        public var bundle: String
        enum CodingKeys: String, CodingKey { case submission, experts, bundle; case deltaBytes = "delta_bytes" }
    }

    let market: any MarketConnection
    let key: ParticipantKey
    let work: String
    let o: Options
    let log: (String) -> Void
    var progress: Progress
    var progressPath: String { (work as NSString).appendingPathComponent("contribute.json") }
    var libraryPath: String { (work as NSString).appendingPathComponent("library") }
    var bundlePath: String { (work as NSString).appendingPathComponent("bundle") }

    public init(market: any MarketConnection, key: ParticipantKey, work: String, options: Options, log: @escaping (String) -> Void) throws {
        self.market = market
        self.key = key
        self.work = work
        self.o = options
        self.log = log
        try options.training.validate()
        guard (0..<1).contains(options.replayShare) else { throw CoreError("--replay-share \(options.replayShare) must be in [0, 1)") }
        guard FileManager.default.fileExists(atPath: options.data) else { throw CoreError("\(options.data): no such token file") }
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        let path = (work as NSString).appendingPathComponent("contribute.json")
        progress = FileManager.default.fileExists(atPath: path) ? try StrictJSON.load(Progress.self, file: path) : Progress()
    }

    func save() throws { try AtomicFile.write(try JSONOutput.pretty(progress), to: progressPath) }

    /// Posts a signed action kept in the progress file (signing and keeping it first).
    func postKept(_ slot: WritableKeyPath<Progress, ActionEnvelope?>, _ make: () throws -> LedgerAction) async throws {
        if progress[keyPath: slot] == nil {
            progress[keyPath: slot] = try ActionEnvelope(try SignedAction(try make(), key: key))
            try save()
        }
        let kept = progress[keyPath: slot]!
        do {
            _ = try await market.post(try kept.signedAction())
        } catch let LedgerError.refused(why) {
            throw CoreError("the market refused the \(kept.kind): \(why)")
        }
    }

    /// Where this contributor's bundle goes: the market's ID and the round's domain.
    func destination() async throws -> (market: String, domain: String) {
        guard let r = try await market.state().rounds[o.round] else { throw LedgerError.refused("no round \(o.round) in this market") }
        return (try await market.summary().marketID, r.domain)
    }

    public func run() async throws -> Report {
        let now = { Int64(Date().timeIntervalSince1970) }
        if !progress.fetched {
            log("fetching the library from \(market.location)")
            _ = try await LibraryFetch.run(from: market, into: libraryPath, log: log)
            progress.fetched = true
            try save()
        }
        let library = try ExpertLibrary(directory: libraryPath)
        var windows = try TokenWindows.load(path: o.data)
        if progress.experts == nil {
            if let chosen = o.experts {
                progress.experts = chosen.sorted()
            } else {
                let selection = try ExpertSelection.compute(model: try library.loadModel(), data: windows.prefix(o.selectionWindows), score: .token,
                                                            topP: o.topP, matmul: o.matmul)
                try selection.save((work as NSString).appendingPathComponent("selection.json"))
                progress.experts = selection.experts
                log("selected \(selection.experts.count) experts by token affinity (p = \(o.topP)): \(selection.experts.map(\.description).joined(separator: " "))")
            }
            try save()
        }
        let experts = progress.experts!
        try await postKept(\.claim) {
            .claim(.init(at: now(), round: o.round, experts: experts.map { ExpertRef(layer: $0.layer, expert: $0.expert) }, expiresAt: now() + 86_400))
        }
        if !progress.trained {
            log("training \(experts.count) experts for \(o.training.steps) steps")
            if let replay = o.replay {
                let count = Int((Double(windows.count) * o.replayShare / (1 - o.replayShare)).rounded())
                windows = try windows.appending(try TokenWindows.load(path: replay).spread(count))
            }
            let signedFor = try await destination()
            var request = Contribution.Request(experts: experts, data: windows, heldOut: nil, options: o.training, partialResidency: false,
                                               delta: o.delta, market: signedFor.market, domain: signedFor.domain,
                                               round: o.round, matmul: o.matmul)
            request.recomputeActivations = o.recomputeActivations
            _ = try Contribution.run(request, library: library, key: key, out: bundlePath, progress: true)
            progress.trained = true
            try save()
        }
        _ = try SubmissionBundle.verify(bundlePath, library: library)
        let (marketID, domain) = try await destination()
        try await postKept(\.submit) { try SubmissionBundle.submitAction(bundlePath, market: marketID, domain: domain, round: o.round, at: now()) }
        let (hash, _) = try SubmissionBundle.submissionRecord(bundlePath)
        if progress.uploaded == nil {
            log("submitted \(hash.prefix(12)); waiting for round \(o.round)'s window to close before revealing the bundle")
            var follower = try await LedgerFollower.start(market)
            while true {
                try await follower.update(market, wait: o.pollSeconds)
                guard let round = follower.state.rounds[o.round] else { throw CoreError("round \(o.round) vanished from \(market.location)") }
                if !round.open || now() >= round.closesAt { break }
            }
            progress.uploaded = try await market.uploadBundle(bundlePath)
            try save()
            log("uploaded bundle \(hash.prefix(12))")
        }
        let size = try SubmissionBundle.verify(bundlePath, library: library).items.reduce(0) { $0 + $1.size }
        return Report(submission: hash, experts: experts, deltaBytes: size, bundle: bundlePath)
    }
}
