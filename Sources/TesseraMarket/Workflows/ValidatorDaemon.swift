import Foundation
import TesseraCore
import TesseraEngine
import TesseraLedger
import TesseraLibrary
import TesseraProof

/// `tessera validator run`: a validator following a market. When a round of its domain
/// opens it commits to its held-out windows (the salt kept in its state directory first);
/// once the round's submission window has closed it downloads every bundle the round
/// received and judges each, in the order the ledger recorded them, comparing each with
/// all earlier ones for copies, and posts signed verdicts; after the round closes it
/// reveals. Everything it did is in the ledger or its state directory, so a validator that
/// was down catches up where it stopped.
public final class ValidatorDaemon {
    public struct Options: Sendable {
        public var domain: String
        public var heldOut: String
        public var background: String
        public var maxWindows: Int?
        public var batch = 16
        /// Handle what can be handled now, then return (instead of following forever).
        public var once = false
        public var waitSeconds = 20.0
        public init(domain: String, heldOut: String, background: String) {
            self.domain = domain; self.heldOut = heldOut; self.background = background
        }
    }

    public struct Summary: Codable, Sendable {
        public var commitments = 0
        public var verdicts = 0
        public var reveals = 0
    }

    let market: any MarketConnection
    let key: ParticipantKey
    let state: String
    let o: Options
    let log: (String) -> Void
    var follower: LedgerFollower
    var policy: ProofPolicy
    let heldOut: TokenWindows
    let background: TokenWindows
    /// The validator over the current library, kept while the experts' versions stay.
    var validator: (heads: [ExpertID: String], round: String, validator: Validator)?
    public private(set) var summary = Summary()

    var libraryPath: String { (state as NSString).appendingPathComponent("library") }
    func saltPath(_ round: String) -> String { (state as NSString).appendingPathComponent("salts/\(Self.fileName(round)).hex") }
    func bundlePath(_ submission: String) -> String { (state as NSString).appendingPathComponent("bundles/\(submission)") }
    func verdictPath(_ submission: String) -> String { (state as NSString).appendingPathComponent("verdicts/\(submission).json") }

    static func fileName(_ s: String) -> String {
        String(s.unicodeScalars.map { CharacterSet.alphanumerics.contains($0) || $0 == "-" || $0 == "_" ? Character($0) : "_" })
    }

    public init(market: any MarketConnection, key: ParticipantKey, state: String, options: Options, log: @escaping (String) -> Void) async throws {
        self.market = market
        self.key = key
        self.state = state
        self.o = options
        self.log = log
        heldOut = try TokenWindows.load(path: options.heldOut).prefix(options.maxWindows)
        background = try TokenWindows.load(path: options.background).prefix(options.maxWindows)
        let text = String(decoding: try await market.policyText(), as: UTF8.self)
        let document = try PolicyFile.parse(text, file: "\(market.location) market.toml")
        policy = try ProofPolicy.read(document, file: "\(market.location) market.toml")
        // Told now, not after judging: a validator here could not reproduce the others.
        try policy.requireUsablePrecision(file: "\(market.location) market.toml")
        follower = LedgerFollower(policy: try MarketPolicy.read(document, file: "\(market.location) market.toml"))
        for sub in ["salts", "bundles", "verdicts"] {
            try FileManager.default.createDirectory(atPath: (state as NSString).appendingPathComponent(sub), withIntermediateDirectories: true)
        }
    }

    var now: Int64 { Int64(Date().timeIntervalSince1970) }

    public func run() async throws -> Summary {
        var first = true
        while true {
            try await follower.update(market, wait: first || o.once ? 0 : o.waitSeconds)
            first = false
            let did = try await pass()
            if o.once && !did { return summary }
        }
    }

    /// One look at everything pending; true when something was done.
    func pass() async throws -> Bool {
        let me = key.publicHex
        var did = false
        let s = follower.state
        for (id, round) in s.rounds.sorted(by: { $0.key < $1.key }) where round.domain == o.domain {
            if round.open, now < round.closesAt, s.commitments[id]?[me] == nil {
                try await commit(id)
                did = true
            }
            let windowClosed = !round.open || now >= round.closesAt
            if windowClosed, s.commitments[id]?[me] != nil || !round.open {
                if try await judge(round: id) { did = true }
            }
            if !round.open, let c = follower.state.commitments[id]?[me], !c.revealed {
                try await reveal(id)
                did = true
            }
        }
        return did
    }

    func commit(_ round: String) async throws {
        let path = saltPath(round)
        if !FileManager.default.fileExists(atPath: path) {
            try AtomicFile.write(Array((Hex.encode(HeldOutCommitment.newSalt()) + "\n").utf8), to: path)
        }
        let salt = try readSalt(round)
        let commitment = HeldOutCommitment.commitment(heldOutSHA256: heldOut.contentHash, salt: salt)
        _ = try await market.post(try SignedAction(.commit(.init(at: now, round: round, commitment: commitment)), key: key))
        try await follower.update(market)
        summary.commitments += 1
        log("round \(round): committed to the held-out windows (\(commitment.prefix(12)))")
    }

    func readSalt(_ round: String) throws -> [UInt8] {
        guard let text = try? String(contentsOfFile: saltPath(round), encoding: .utf8),
              let salt = Hex.decode(text.trimmingCharacters(in: .whitespacesAndNewlines)) else {
            throw CoreError("\(saltPath(round)): the salt of round \(round)'s commitment is missing; it cannot be revealed without it")
        }
        return salt
    }

    func reveal(_ round: String) async throws {
        _ = try await market.post(try SignedAction(.reveal(.init(at: now, round: round, salt: Hex.encode(try readSalt(round)),
                                                                  heldOutSHA256: heldOut.contentHash)), key: key))
        try await follower.update(market)
        summary.reveals += 1
        log("round \(round): revealed the held-out windows; the ledger checked them against the commitment")
    }

    /// Judges the round's pending submissions this validator has no verdict on, in ledger
    /// order; bundles not uploaded yet are judged on a later pass.
    func judge(round: String) async throws -> Bool {
        let me = key.publicHex
        let order = follower.submissions(ofRound: round)
        let todo = order.filter { follower.state.submissions[$0]?.state == .pending && follower.state.submissions[$0]?.verdicts[me] == nil }
        guard !todo.isEmpty else { return false }
        // Every bundle of the round that has been uploaded, for copy detection.
        var available: [String] = []
        for submission in order {
            let dir = bundlePath(submission)
            if !FileManager.default.fileExists(atPath: (dir as NSString).appendingPathComponent("bundle.json")) {
                do { try await market.downloadBundle(submission, to: dir) } catch MarketError.notFound { continue }
            }
            available.append(submission)
        }
        guard todo.contains(where: available.contains) else { return false }
        let validator = try await currentValidator(round: round)
        var did = false
        for submission in order where available.contains(submission) {
            let dir = bundlePath(submission)
            try await ensureBases(dir, library: validator.library)
            guard todo.contains(submission) else {
                try validator.remember(bundle: dir)
                continue
            }
            let verdict: Verdict
            if FileManager.default.fileExists(atPath: verdictPath(submission)) {
                verdict = try Verdict.load(verdictPath(submission))
                try validator.remember(bundle: dir)
            } else {
                verdict = try validator.judge(bundle: dir)
                try verdict.save(signedBy: key, to: verdictPath(submission))
            }
            do {
                _ = try await market.post(try SignedAction(.verdict(verdict.ledgerAction(at: now)), key: key))
                summary.verdicts += 1
                log("round \(round): \(verdict.accept ? "ACCEPT" : "REJECT") \(submission.prefix(12)) — \(verdict.reason)")
            } catch let LedgerError.refused(why) {
                // Decided by the others' verdicts meanwhile: nothing left to say on it.
                log("round \(round): verdict on \(submission.prefix(12)) not recorded: \(why)")
            }
            did = true
        }
        try await follower.update(market)
        return did
    }

    /// A validator over the library as it is now (fetched again when versions moved).
    func currentValidator(round: String) async throws -> Validator {
        let heads = follower.state.experts.mapValues { $0.versions.last ?? "" }
        if let v = validator, v.heads == heads, v.round == round { return v.validator }
        _ = try await LibraryFetch.run(from: market, into: libraryPath)
        let library = try ExpertLibrary(directory: libraryPath)
        log("round \(round): evaluating the base model on \(heldOut.count) held-out and \(background.count) background windows (\(policy.matmul.rawValue))")
        let v = try Validator(library: library, key: key, policy: policy, heldOut: heldOut, background: background, batch: o.batch)
        validator = (heads, round, v)
        return v
    }

    /// The base versions a bundle names, fetched when the local library lacks them (older
    /// versions, for bundles on stale bases).
    func ensureBases(_ dir: String, library: ExpertLibrary) async throws {
        guard let data = FileManager.default.contents(atPath: (dir as NSString).appendingPathComponent("bundle.json")),
              let experts = (try? JSONValue.parse(data))?["experts"]?.arrayValue else { return }
        for e in experts {
            guard let base = e["base"]?.stringValue, ContentHash.isValid(base) else { continue }
            let path = library.shardPath(base)
            if !FileManager.default.fileExists(atPath: path) { try? await market.downloadShard(base, to: path) }
        }
    }
}
