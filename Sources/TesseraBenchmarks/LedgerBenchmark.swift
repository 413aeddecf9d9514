import GRDB
import Dispatch
import Foundation
import TesseraCore
import TesseraEngine
import TesseraLibrary
import TesseraLedger
import TesseraLedgerPostgres
import TesseraProof
import TesseraTestSupport

/// Append rate, query latency and verify time of a ledger built from a realistic mix of
/// actions (claims, submissions, three verdicts each, merges that mint units, revenue
/// events paying every holder), against raw SQLite inserts of the same event rows with
/// the same durability (WAL, synchronous FULL, same transactions) in the same run.
public struct LedgerBenchmark: Encodable, Sendable {
    /// The ledger's store: sqlite or postgresql.
    public var store: String
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
        case store, events, batch
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
            %@: %lld events appended in batches of %d with full durability: %.0f events/s (raw SQLite inserts of the same rows: %.0f rows/s; ratio %.2f)
            shares --owner: %.2f ms;  verify: %.1f s (%@; %.1f s of processor time);  database %.1f MB
            %@
            """, store, events, batch, appendEventsPerS, rawInsertRowsPerS, appendVsRaw, sharesQueryMs, verifySeconds, verifyOK ? "ok" : "FAILED: \(verifyProblem ?? "")", verifyCPUSeconds, Double(databaseBytes) / 1e6, signatures.text)
    }

    /// `database`: the ledger in this (empty) PostgreSQL database instead of an SQLite file
    /// (the raw-insert baseline stays SQLite's).
    public static func run(events: Int, batch: Int, database: String? = nil) throws -> LedgerBenchmark {
        let dir = NSTemporaryDirectory() + "tessera-ledger-bench-\(getpid())"
        try? FileManager.default.removeItem(atPath: dir)
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let signatureRates = try SignatureBenchmark.run()
        let (actions, owner) = try SyntheticLedger.actions(count: events)
        let store: any LedgerStore = try database.map { try PostgresLedgerStore(url: $0) } ?? SQLiteLedgerStore(path: dir + "/ledger.sqlite")
        let ledger = try Ledger(store: store, policy: SyntheticLedger.policy)
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
            try raw.write { db in try SQLiteLedgerStore.insertEvents(slice, into: db) }
            k += batch
        }
        let rawSeconds = Double(DispatchTime.now().uptimeNanoseconds - t1) / 1e9

        _ = try ledger.shares(owner: owner)
        let q = try EngineBenchmark.bestTime(20) { _ = try ledger.shares(owner: owner) }
        let t2 = DispatchTime.now().uptimeNanoseconds
        let cpu0 = processorSeconds()
        let report = try Ledger.verify(store: store, policy: SyntheticLedger.policy)
        let verifyCPU = processorSeconds() - cpu0
        let verifySeconds = Double(DispatchTime.now().uptimeNanoseconds - t2) / 1e9
        if PhaseTimer.shared.enabled {
            PhaseTimer.shared.enabled = false
            for (phase, seconds) in PhaseTimer.shared.report { FileHandle.standardError.write(Data("\(phase) \(seconds)\n".utf8)) }
        }
        let size = try (store as? PostgresLedgerStore).map { Int(try $0.databaseBytes()) }
            ?? ["", "-wal"].reduce(0) { $0 + ((try? FileManager.default.attributesOfItem(atPath: dir + "/ledger.sqlite" + $1)[.size] as? Int) ?? 0) }
        let n = Double(stored.count)
        return LedgerBenchmark(store: database == nil ? "sqlite" : "postgresql", events: Int64(stored.count), batch: batch, appendEventsPerS: n / appendSeconds, rawInsertRowsPerS: n / rawSeconds,
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
