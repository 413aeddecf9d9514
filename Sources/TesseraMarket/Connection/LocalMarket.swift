import Foundation
import Synchronization
import TesseraCore
import TesseraLedger
import TesseraLibrary
#if canImport(Glibc)
import Glibc
#endif

/// A market directory as a `MarketConnection`: the ledger, the library, the rules and the
/// bundles received, in one place. The server serves one of these; local commands use one
/// directly. The market's own rules beyond the ledger's live here: a bundle is taken only
/// after its round's submission window closed and only if its hash was submitted in time;
/// a `new_version` needs its shard stored first, and the library follows the ledger.
public final class LocalMarket: MarketConnection, @unchecked Sendable {
    public let directory: MarketDirectory
    public let ledger: Ledger
    public let library: ExpertLibrary
    public let rules: MarketPolicyFolder
    public var location: String { directory.path }
    /// Seconds an action's time may stray from this machine's clock (nil: not checked, for
    /// local commands that record history with explicit times).
    public var clockSkewLimit: Int64?
    /// The clock the market's windows are judged by.
    public var now: @Sendable () -> Int64 = { Int64(Date().timeIntervalSince1970) }
    let newEvents = EventSignal()
    /// Why the rules this market runs by are not the ones its genesis recorded (the policy
    /// file was edited): appends are refused and verify fails while this is set.
    public let policyProblem: String?
    /// The genesis event's hash (the market's ID) and the SHA-256 of the rules loaded at
    /// start: both fixed while this market is open, so read once.
    let genesisHash: String?
    let policySHA256: String

    static func policyProblem(_ genesis: StoredEvent?, policySHA256 now: String, path: String) throws -> String? {
        guard let genesis, case let .genesis(g) = try LedgerAction.decode(kind: genesis.kind, payload: genesis.payload),
              now != g.policySHA256 else { return nil }
        return "\(path) has SHA-256 \(now.prefix(12)), but the market's genesis recorded \(g.policySHA256.prefix(12)): the rules were edited behind the ledger; restore the file (policy changes are not events yet)"
    }

    public var bundlesPath: String { (directory.path as NSString).appendingPathComponent("bundles") }
    public func bundlePath(_ submission: String) -> String { (bundlesPath as NSString).appendingPathComponent(submission) }

    public init(directory: MarketDirectory) throws {
        self.directory = directory
        ledger = try directory.open()
        library = try directory.library()
        rules = try directory.rules()
        let genesis = try ledger.events(since: 0, limit: 1).first
        genesisHash = genesis?.hash
        policySHA256 = try ContentHash.sha256(file: directory.policyPath)
        policyProblem = try Self.policyProblem(genesis, policySHA256: policySHA256, path: directory.policyPath)
        try reconcileLibrary()
        removeAbandonedStaging()
    }

    /// Bundles half-copied by a process that died (`HASH.incoming-PID-…` whose PID is gone):
    /// the upload was never acknowledged, and its client sends it again.
    func removeAbandonedStaging() {
        let fm = FileManager.default
        for name in (try? fm.contentsOfDirectory(atPath: bundlesPath)) ?? [] {
            guard let r = name.range(of: ".incoming-") else { continue }
            let pid = name[r.upperBound...].split(separator: "-").first.flatMap { Int32($0) } ?? 0
            if pid > 0 && (kill(pid, 0) == 0 || errno == EPERM) { continue }
            try? fm.removeItem(atPath: (bundlesPath as NSString).appendingPathComponent(name))
        }
    }

    /// Versions the ledger recorded but the library does not name yet (a crash between
    /// the two writes) are added now; their shards were stored before the ledger took them.
    /// Names in the library the versions the ledger recorded since (through another
    /// server of the same market, say).
    public func refreshLibrary() throws { try reconcileLibrary() }

    func reconcileLibrary() throws {
        let state = try ledger.currentState()
        for (id, e) in state.experts.sorted(by: { $0.key < $1.key }) {
            guard let entry = library.manifest.entry(id) else { continue }
            let known = Set(entry.versions.map(\.hash))
            for (i, v) in e.versions.enumerated() where i > 0 && !known.contains(v) {
                try library.addVersion(id, hash: v, parent: e.versions[i - 1], producedBy: [], origin: "new_version")
            }
        }
    }

    public func summary() async throws -> MarketSummary {
        let state = try ledger.currentState()
        return MarketSummary(marketID: try marketID(), events: state.seq, headHash: state.headHash, policySHA256: policySHA256,
                             domains: state.domains.sorted(), rounds: state.rounds.keys.sorted(), trunk: library.manifest.trunk,
                             modelType: library.manifest.modelType, experts: library.manifest.experts.count)
    }

    /// The hash of the genesis event.
    public func marketID() throws -> String {
        guard let genesisHash else { throw MarketError.corrupt("the market's ledger is empty") }
        return genesisHash
    }

    public func policyText() async throws -> Data { try read(directory.policyPath) }

    public func domainText(_ name: String) async throws -> Data {
        guard rules.domains.contains(where: { $0.name == name }) else {
            throw MarketError.notFound("no domain \"\(name)\"; domains: \(rules.domains.map(\.name).joined(separator: ", "))")
        }
        return try read((directory.domainsPath as NSString).appendingPathComponent("\(name).toml"))
    }

    public func libraryManifest() async throws -> Data { try read(library.manifestPath) }
    public func libraryConfig() async throws -> Data { try read(library.configPath) }

    public func downloadShard(_ hash: String, to path: String) async throws {
        let source = try shardFile(hash)
        let data = try read(source)
        guard ContentHash.sha256(Array(data)) == hash else { throw MarketError.corrupt("shard \(hash.prefix(12)) does not hash to its name") }
        try AtomicFile.write(Array(data), to: path)
    }

    /// The path of a shard the library holds (named by any version or the trunk).
    public func shardFile(_ hash: String) throws -> String {
        guard ContentHash.isValid(hash) else { throw MarketError.badRequest("\(hash.prefix(80)) is not a SHA-256 hex digest") }
        let path = library.shardPath(hash)
        guard FileManager.default.fileExists(atPath: path) else { throw MarketError.notFound("no shard \(hash.prefix(12))") }
        return path
    }

    public func post(_ action: SignedAction) async throws -> Ledger.Outcome {
        try postEach([action])[0].get()
    }

    /// Posts actions that arrived together (group commit); each gets its own answer.
    public func postEach(_ actions: [SignedAction]) throws -> [Result<Ledger.Outcome, Error>] {
        if let policyProblem { return actions.map { _ in .failure(LedgerError.refused(policyProblem)) } }
        var checked: [Result<SignedAction, Error>] = actions.map { a in Result { try self.precheck(a) } }
        let toAppend = checked.compactMap { try? $0.get() }
        var appended = try ledger.appendEach(toAppend).makeIterator()
        var out: [Result<Ledger.Outcome, Error>] = []
        for (i, c) in checked.enumerated() {
            switch c {
            case let .failure(e): out.append(.failure(e))
            case .success:
                let r = appended.next()!.mapError { $0 as Error }
                if case let .success(o) = r, case let .newVersion(v) = actions[i].action, case .appended = o {
                    try adoptVersion(v)
                }
                out.append(r)
            }
        }
        checked.removeAll()
        if out.contains(where: { if case .success(.appended) = $0 { return true }; return false }) { newEvents.signal() }
        return out
    }

    /// What the market checks before the ledger sees an action: its time against this
    /// machine's clock (when asked), and for a new version that its shard is stored.
    func precheck(_ a: SignedAction) throws -> SignedAction {
        if let limit = clockSkewLimit {
            let t = now()
            // Any Int64 may arrive: the difference is taken without overflow.
            let (d, overflow) = a.action.at.subtractingReportingOverflow(t)
            guard !overflow, d.magnitude <= limit.magnitude else {
                throw LedgerError.refused("the action's time \(a.action.at) is \(overflow ? "far" : "\(d) s") from this market's clock (\(t)); at most \(limit) s is allowed")
            }
        }
        if case let .newVersion(v) = a.action {
            guard ContentHash.isValid(v.version), FileManager.default.fileExists(atPath: library.shardPath(v.version)) else {
                throw LedgerError.refused("new_version: no shard \(v.version.prefix(12)) is stored for expert \(v.layer):\(v.expert); upload it first")
            }
        }
        return a
    }

    func adoptVersion(_ v: LedgerAction.NewVersion) throws {
        let id = ExpertID(layer: v.layer, expert: v.expert)
        if library.manifest.entry(id)?.versions.contains(where: { $0.hash == v.version }) == true { return }
        try library.addVersion(id, hash: v.version, parent: v.parent, producedBy: v.submissions, origin: "new_version")
    }

    public func events(since: Int64, limit: Int, wait: Double) async throws -> [StoredEvent] {
        let deadline = Date().addingTimeInterval(max(0, wait))
        while true {
            let e = try ledger.events(since: since, limit: limit)
            if !e.isEmpty || Date() >= deadline { return e }
            // Woken by an append here, or every 250 ms for appends by other processes.
            await newEvents.wait(upTo: min(0.25, deadline.timeIntervalSinceNow))
        }
    }

    public func shares(owner: String) async throws -> SharesReport {
        let (h, f) = try ledger.shares(owner: owner)
        return SharesReport(owner: owner, holdings: h, fees: f)
    }
    public func expert(_ id: ExpertID) async throws -> Ledger.ExpertReport? { try ledger.expert(id) }
    public func rounds() async throws -> [String] { try ledger.rounds() }
    public func round(_ id: String) async throws -> Ledger.RoundReport? { try ledger.round(id) }
    public func payouts(event: Int64?) async throws -> [Ledger.Payout] { try ledger.payouts(event: event) }
    public func verify() async throws -> VerifyReport { try checkLedger() }

    /// `verify`, blocking: the chain replayed and every figure recomputed, and the rules
    /// checked against the ones genesis recorded.
    public func checkLedger() throws -> VerifyReport {
        var report = try Ledger.verify(store: ledger.store, policy: ledger.policy)
        if let policyProblem, report.ok {
            report.ok = false
            report.firstBadEvent = 1
            report.problem = policyProblem
        }
        return report
    }
    public func state() async throws -> LedgerState { try ledger.currentState() }

    public func uploadBundle(_ dir: String) async throws -> String {
        try acceptBundle(directory: dir)
    }

    /// Takes a bundle directory (unpacked from an upload, or a local one): checks it the
    /// way the market's rules say and stores it under its submission hash.
    @discardableResult
    public func acceptBundle(directory dir: String) throws -> String {
        let (hash, _) = try SubmissionBundle.submissionRecord(dir)
        let target = bundlePath(hash)
        if FileManager.default.fileExists(atPath: (target as NSString).appendingPathComponent("bundle.json")) { return hash }
        let state = try ledger.currentState()
        guard let sub = state.submissions[hash] else {
            throw MarketError.forbidden("bundle \(hash.prefix(12)) was not submitted to this market: submit its hash in the round's window first")
        }
        guard let round = state.rounds[sub.round] else { throw MarketError.corrupt("submission \(hash.prefix(12)) names unknown round \(sub.round)") }
        guard !round.open || now() >= round.closesAt else {
            throw MarketError.tooEarly("round \(sub.round)'s submission window is open until \(round.closesAt) (or until the operator closes it); bundles are revealed after it closes")
        }
        let bundle = try SubmissionBundle.verify(dir, library: library)
        do {
            try bundle.requireDestination(market: try marketID(), domain: round.domain, round: sub.round)
        } catch { throw MarketError.forbidden("\(error)") }
        guard bundle.contributor == sub.contributor else {
            throw MarketError.forbidden("bundle \(hash.prefix(12)) is signed by \(bundle.contributor.prefix(16))…, the submission by \(sub.contributor.prefix(16))…")
        }
        let fm = FileManager.default
        try fm.createDirectory(atPath: bundlesPath, withIntermediateDirectories: true)
        let staging = target + ".incoming-\(getpid())-\(UUID().uuidString)"
        try fm.createDirectory(atPath: (staging as NSString).appendingPathComponent("deltas"), withIntermediateDirectories: true)
        for item in bundle.items {
            try fm.copyItem(atPath: (dir as NSString).appendingPathComponent(item.file), toPath: (staging as NSString).appendingPathComponent(item.file))
        }
        for name in ["bundle.json", "bundle.sig"] {
            try fm.copyItem(atPath: (dir as NSString).appendingPathComponent(name), toPath: (staging as NSString).appendingPathComponent(name))
        }
        CrashPoint.reach("market.bundle.staged")
        if rename(staging, target) != 0 {
            try? fm.removeItem(atPath: staging)
            guard fm.fileExists(atPath: (target as NSString).appendingPathComponent("bundle.json")) else {
                throw MarketError.corrupt("cannot store bundle \(hash.prefix(12))")
            }
        }
        return hash
    }

    public func downloadBundle(_ submission: String, to dir: String) async throws {
        let source = try storedBundle(submission)
        let archive = try BundleArchive.pack(source)
        let tmp = NSTemporaryDirectory() + "tessera-bundle-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: tmp) }
        try AtomicFile.write(archive, to: tmp)
        try BundleArchive.unpack(tmp, into: dir, maxBytes: rules.bundles.maxBytes)
    }

    /// The directory of a bundle this market holds.
    public func storedBundle(_ submission: String) throws -> String {
        guard ContentHash.isValid(submission) else { throw MarketError.badRequest("\(submission.prefix(80)) is not a submission hash") }
        let dir = bundlePath(submission)
        guard FileManager.default.fileExists(atPath: (dir as NSString).appendingPathComponent("bundle.json")) else {
            throw MarketError.notFound("no bundle \(submission.prefix(12)) has been uploaded")
        }
        return dir
    }

    public func uploadShard(_ path: String, signedBy key: ParticipantKey) async throws -> String {
        try intakeShard(path, uploader: key.publicHex)
    }

    /// Stores an expert shard the operator sends ahead of its `new_version`.
    public func intakeShard(_ path: String, uploader: String) throws -> String {
        guard uploader == (try ledger.currentState().operatorKey) else {
            throw MarketError.forbidden("only the market operator stores new expert versions")
        }
        return try library.intakeShard(path).hash
    }

    func read(_ path: String) throws -> Data {
        guard let d = FileManager.default.contents(atPath: path) else { throw MarketError.notFound("\(path): missing") }
        return d
    }
}

/// Why the market said no, with the HTTP status a server answers.
public enum MarketError: Error, CustomStringConvertible, Sendable {
    case badRequest(String)
    case unauthorized(String)
    case forbidden(String)
    case notFound(String)
    case tooEarly(String)
    case tooLarge(String)
    case rangeNotSatisfiable(String)
    case corrupt(String)

    public var status: Int {
        switch self {
        case .badRequest: return 400
        case .unauthorized: return 401
        case .forbidden: return 403
        case .notFound: return 404
        case .tooEarly: return 425
        case .tooLarge: return 413
        case .rangeNotSatisfiable: return 416
        case .corrupt: return 500
        }
    }

    public var code: String {
        switch self {
        case .badRequest: return "bad_request"
        case .unauthorized: return "unauthorized"
        case .forbidden: return "forbidden"
        case .notFound: return "not_found"
        case .tooEarly: return "too_early"
        case .tooLarge: return "too_large"
        case .rangeNotSatisfiable: return "range_not_satisfiable"
        case .corrupt: return "corrupt"
        }
    }

    public var description: String {
        switch self {
        case let .badRequest(s), let .unauthorized(s), let .forbidden(s), let .notFound(s), let .tooEarly(s), let .tooLarge(s),
             let .rangeNotSatisfiable(s), let .corrupt(s): return s
        }
    }
}

/// Wakes those waiting for new events. Each waiter is registered under its own number, so
/// one whose time ran out is released alone, even before it was registered.
final class EventSignal: Sendable {
    private struct Waiters {
        var next = 0
        var waiting: [Int: CheckedContinuation<Void, Never>] = [:]
        /// Numbered but not registered yet.
        var unregistered: Set<Int> = []
        /// Released before they registered: they return at once when they do.
        var released: Set<Int> = []
    }
    private let waiters = Mutex(Waiters())

    func signal() {
        let all = waiters.withLock { w -> [CheckedContinuation<Void, Never>] in
            defer { w.waiting.removeAll() }
            return Array(w.waiting.values)
        }
        for c in all { c.resume() }
    }

    /// Returns at the next signal or after `seconds`, whichever comes first.
    func wait(upTo seconds: Double) async {
        guard seconds > 0 else { return }
        let id = waiters.withLock { w -> Int in
            w.next += 1
            w.unregistered.insert(w.next)
            return w.next
        }
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
                    let now = self.waiters.withLock { w -> Bool in
                        if w.released.remove(id) != nil { return true }
                        w.unregistered.remove(id)
                        w.waiting[id] = c
                        return false
                    }
                    if now { c.resume() }
                }
            }
            group.addTask { try? await Task.sleep(nanoseconds: UInt64(seconds * 1e9)) }
            await group.next()
            group.cancelAll()
            self.release(id)
        }
    }

    private func release(_ id: Int) {
        let c = waiters.withLock { w -> CheckedContinuation<Void, Never>? in
            if let c = w.waiting.removeValue(forKey: id) { return c }
            if w.unregistered.remove(id) != nil { w.released.insert(id) }
            return nil
        }
        c?.resume()
    }
}
