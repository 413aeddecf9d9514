import Dispatch
import Foundation
import GRDB
import TesseraEngine
import TesseraLibrary

/// Append rate, query latency and verify time of a ledger built from a realistic mix of
/// actions (claims, submissions, three verdicts each, merges that mint units, revenue
/// events paying every holder), against raw SQLite inserts of the same event rows with
/// the same durability (WAL, synchronous FULL, same transactions) in the same run.
public struct LedgerBenchmark: Encodable, Sendable {
    public var events: Int64
    public var batch: Int
    public var appendEventsPerS: Double
    public var rawInsertRowsPerS: Double
    public var appendVsRaw: Double
    public var sharesQueryMs: Double
    public var verifySeconds: Double
    /// Processor time of all threads during verify: against 2 × verifySeconds it shows
    /// how much of the two cores verify kept busy.
    public var verifyCPUSeconds: Double
    public var verifyOK: Bool
    public var verifyProblem: String?
    public var databaseBytes: Int
    public var signatures: SignatureBenchmark

    enum CodingKeys: String, CodingKey {
        case events, batch
        case appendEventsPerS = "append_events_per_s"
        case rawInsertRowsPerS = "raw_insert_rows_per_s"
        case appendVsRaw = "append_vs_raw"
        case sharesQueryMs = "shares_query_ms"
        case verifySeconds = "verify_seconds"
        case verifyCPUSeconds = "verify_cpu_seconds"
        case verifyOK = "verify_ok"
        case verifyProblem = "verify_problem"
        case databaseBytes = "database_bytes"
        case signatures
    }

    public var text: String {
        String(format: """
            %lld events appended in batches of %d with full durability: %.0f events/s (raw SQLite inserts of the same rows: %.0f rows/s; ratio %.2f)
            shares --owner: %.2f ms;  verify: %.1f s (%@; %.1f s of processor time);  database %.1f MB
            %@
            """, events, batch, appendEventsPerS, rawInsertRowsPerS, appendVsRaw, sharesQueryMs, verifySeconds, verifyOK ? "ok" : "FAILED: \(verifyProblem ?? "")", verifyCPUSeconds, Double(databaseBytes) / 1e6, signatures.text)
    }

    static let policy = MarketPolicy(confidence: 0.95, minGainMicronats: 100, backgroundToleranceMicronats: 1000, deltaNormBound: 0.2,
                                     copyThreshold: 0.95, quorum: 3, genesisUnits: 1_000_000, doublingGainMicronats: 1_000_000,
                                     maxMintBps: 5_000, validatorFeeBps: 500, operatorFeeBps: 200, maxClaimantsPerExpert: 3)

    /// The signed actions of the benchmark, about `count` of them.
    public static func actions(count: Int) throws -> (actions: [SignedAction], owner: String) {
        let op = ParticipantKey.generate()
        let contributors = (0..<50).map { _ in ParticipantKey.generate() }
        let validators = (0..<3).map { _ in ParticipantKey.generate() }
        let experts = (0..<8).flatMap { l in (0..<8).map { ExpertID(layer: l, expert: $0) } }
        func h(_ s: String) -> String { ContentHash.sha256(Array(s.utf8)) }
        var t: Int64 = 1_000_000
        var plain: [(LedgerAction, ParticipantKey)] = []
        plain.append((.genesis(.init(at: t, publisher: op.publicHex, experts: experts.map { ExpertRef(layer: $0.layer, expert: $0.expert, version: h("base\($0)")) }, policySHA256: h("p"))), op))
        plain.append((.openDomain(.init(at: t, name: "es")), op))
        for c in contributors { plain.append((.register(.init(at: t, key: c.publicHex, roles: [.contributor], stake: 0)), op)) }
        for (i, v) in validators.enumerated() { plain.append((.register(.init(at: t, key: v.publicHex, roles: [.validator], stake: Int64(100 + i))), op)) }
        plain.append((.openRound(.init(at: t, round: "r", domain: "es", experts: experts.map { ExpertRef(layer: $0.layer, expert: $0.expert) }, closesAt: Int64.max / 2)), op))
        var current = Dictionary(uniqueKeysWithValues: experts.map { ($0, h("base\($0)")) })
        var i = 0
        while plain.count < count {
            let e = experts[i % experts.count], c = contributors[i % contributors.count]
            t += 10
            let bundle = h("bundle\(i)")
            plain.append((.claim(.init(at: t, round: "r", experts: [ExpertRef(layer: e.layer, expert: e.expert)], expiresAt: t + 5)), c))
            plain.append((.submit(.init(at: t + 1, round: "r", bundle: bundle, bundleSignature: "00", experts: [ExpertRef(layer: e.layer, expert: e.expert, version: current[e])])), c))
            for (j, v) in validators.enumerated() {
                plain.append((.verdict(.init(at: t + 2, submission: bundle, gainLCBMicronats: 1_000 + Int64((i * 7 + j * 13) % 500), regressionUCBMicronats: 5, accept: true, reason: "ok")), v))
            }
            let version = h("v\(i)")
            plain.append((.newVersion(.init(at: t + 3, layer: e.layer, expert: e.expert, version: version, parent: current[e]!, submissions: [bundle])), op))
            current[e] = version
            if i % 5 == 4 {
                let used = (0..<4).map { experts[(i + $0 * 16) % experts.count] }
                plain.append((.revenue(.init(at: t + 4, domain: "es", period: "p\(i)", amount: 1_000_003 + Int64(i),
                                             usage: used.map { .init(layer: $0.layer, expert: $0.expert, version: current[$0]!, usage: Int64(10 + ($0.expert * 3) % 7)) })), op))
            }
            i += 1
        }
        // Signing is the clients' work, spread over both cores here.
        var signed = [SignedAction?](repeating: nil, count: plain.count)
        signed.withUnsafeMutableBufferPointer { buf in
            let out = SlotWriter(buf.baseAddress!)
            Parallel.parts(plain.count) { _, range in
                for k in range { out.set(k, try? SignedAction(plain[k].0, key: plain[k].1)) }
            }
        }
        return (signed.map { $0! }, contributors[0].publicHex)
    }

    public static func run(events: Int, batch: Int) throws -> LedgerBenchmark {
        let dir = NSTemporaryDirectory() + "tessera-ledger-bench-\(getpid())"
        try? FileManager.default.removeItem(atPath: dir)
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let signatureRates = try SignatureBenchmark.run()
        let (actions, owner) = try actions(count: events)
        let store = try SQLiteLedgerStore(path: dir + "/ledger.sqlite")
        let ledger = try Ledger(store: store, policy: policy)
        PhaseTimer.shared.reset()
        PhaseTimer.shared.enabled = ProcessInfo.processInfo.environment["TESSERA_PROFILE"] != nil
        let t0 = DispatchTime.now().uptimeNanoseconds
        var batches: [[SignedAction]] = []
        var k = 0
        while k < actions.count {
            batches.append(Array(actions[k..<min(actions.count, k + batch)]))
            k += batch
        }
        try ledger.append(batches: batches)
        let appendSeconds = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9

        // Raw SQLite: the same event rows, same durability, same transaction sizes.
        let stored = try store.read { r in try r.events(after: 0, limit: Int.max) }
        var config = Configuration()
        config.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = FULL")
            try db.execute(sql: "PRAGMA cache_size = -262144")
            try db.execute(sql: "PRAGMA wal_autocheckpoint = 16384")
        }
        let raw = try DatabasePool(path: dir + "/raw.sqlite", configuration: config)
        try raw.write { db in
            try db.execute(sql: "CREATE TABLE events (seq INTEGER PRIMARY KEY, kind TEXT NOT NULL, payload TEXT NOT NULL, actor TEXT NOT NULL, signature TEXT NOT NULL, prev_hash TEXT NOT NULL, hash TEXT NOT NULL, idem TEXT NOT NULL UNIQUE, at BIGINT NOT NULL)")
        }
        let t1 = DispatchTime.now().uptimeNanoseconds
        k = 0
        while k < stored.count {
            let slice = stored[k..<min(stored.count, k + batch)]
            // The ledger's own insert path (a cached statement bound through SQLite's C
            // interface), so the ratio measures the ledger's work, not a slower baseline.
            try raw.write { db in
                let w = SQLiteLedgerStore.Access(db: db)
                for e in slice { try w.append(e) }
            }
            k += batch
        }
        let rawSeconds = Double(DispatchTime.now().uptimeNanoseconds - t1) / 1e9

        _ = try ledger.shares(owner: owner)
        let q = try EngineBenchmark.bestTime(20) { _ = try ledger.shares(owner: owner) }
        let t2 = DispatchTime.now().uptimeNanoseconds
        let cpu0 = processorSeconds()
        let report = try Ledger.verify(store: store, policy: policy)
        let verifyCPU = processorSeconds() - cpu0
        let verifySeconds = Double(DispatchTime.now().uptimeNanoseconds - t2) / 1e9
        if PhaseTimer.shared.enabled {
            PhaseTimer.shared.enabled = false
            for (phase, seconds) in PhaseTimer.shared.report { FileHandle.standardError.write(Data("\(phase) \(seconds)\n".utf8)) }
        }
        let size = ["", "-wal"].reduce(0) { $0 + ((try? FileManager.default.attributesOfItem(atPath: dir + "/ledger.sqlite" + $1)[.size] as? Int) ?? 0) }
        let n = Double(stored.count)
        return LedgerBenchmark(events: Int64(stored.count), batch: batch, appendEventsPerS: n / appendSeconds, rawInsertRowsPerS: n / rawSeconds,
                               appendVsRaw: (n / appendSeconds) / (n / rawSeconds), sharesQueryMs: q * 1000, verifySeconds: verifySeconds, verifyCPUSeconds: verifyCPU,
                               verifyOK: report.ok, verifyProblem: report.problem, databaseBytes: size, signatures: signatureRates)
    }
}

/// User and system time of every thread of this process so far.
func processorSeconds() -> Double {
    var u = rusage()
    getrusage(RUSAGE_SELF.rawValue, &u)
    return Double(u.ru_utime.tv_sec + u.ru_stime.tv_sec) + Double(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6
}

/// Lets parallel workers fill distinct slots of a buffer they do not own.
struct SlotWriter<T>: @unchecked Sendable {
    let base: UnsafeMutablePointer<T>
    init(_ base: UnsafeMutablePointer<T>) { self.base = base }
    func set(_ i: Int, _ v: T) { base[i] = v }
}
