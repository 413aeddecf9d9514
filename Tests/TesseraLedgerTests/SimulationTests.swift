import Foundation
import Testing
@testable import TesseraLedger
import TesseraCore
import TesseraTestSupport

/// A fault of the simulated store.
enum InjectedFault: Error, Equatable {
    /// The write failed before anything was written, or half-way through (a statement
    /// failed, the disk filled, the process died between statements): rolled back.
    case midTransaction
    /// The transaction committed, but the caller never heard (a crash after the commit,
    /// a lost answer): its retry must find the action already recorded.
    case afterCommit
}

/// A store that fails, from a seeded generator, at every place a real one can: before a
/// write, between the statements of a transaction (which is then rolled back), and after
/// a commit whose answer is lost. TigerBeetle's idea: the same seed replays the same faults,
/// so a failing seed reproduces.
final class FaultyStore: LedgerStore, @unchecked Sendable {
    let inner: any LedgerStore
    private var rng: SplitMix64
    private let lock = NSLock()
    /// Per thousand operations.
    let rate: UInt64
    var armed = false
    private(set) var faults: [InjectedFault] = []

    init(_ inner: any LedgerStore, seed: UInt64, rate: UInt64) {
        self.inner = inner
        rng = SplitMix64(seed: seed)
        self.rate = rate
    }

    func roll(_ fault: InjectedFault) throws {
        lock.lock()
        defer { lock.unlock() }
        guard armed, rng.next() % 1000 < rate else { return }
        faults.append(fault)
        throw fault
    }

    func read<T>(_ body: (any LedgerReader) throws -> T) throws -> T { try inner.read(body) }

    func write<T>(_ body: (any LedgerWriter) throws -> T) throws -> T {
        let result = try inner.write { w -> T in
            try roll(.midTransaction)
            return try body(FaultyWriter(inner: w, store: self))
        }
        try roll(.afterCommit)
        return result
    }
}

struct FaultyWriter: LedgerWriter {
    let inner: any LedgerWriter
    let store: FaultyStore
    func head() throws -> StoredEvent? { try inner.head() }
    func events(after seq: Int64, limit: Int) throws -> [StoredEvent] { try inner.events(after: seq, limit: limit) }
    func event(idempotencyKey: String) throws -> StoredEvent? { try inner.event(idempotencyKey: idempotencyKey) }
    func eventNumbers(idempotencyKeys: [String]) throws -> [String: Int64] { try inner.eventNumbers(idempotencyKeys: idempotencyKeys) }
    func rows(_ table: DerivedTable, matching: [(column: String, value: SQLValue)]) throws -> [DerivedRow] { try inner.rows(table, matching: matching) }
    func rows(_ table: DerivedTable, keys: [[SQLValue]]) throws -> [DerivedRow] { try inner.rows(table, keys: keys) }
    func rows(_ table: DerivedTable, seqFrom first: Int64, through last: Int64) throws -> [DerivedRow] { try inner.rows(table, seqFrom: first, through: last) }
    func eventCount() throws -> Int64 { try inner.eventCount() }
    func snapshot(atOrBefore seq: Int64) throws -> (seq: Int64, data: Data)? { try inner.snapshot(atOrBefore: seq) }
    func append(_ event: StoredEvent) throws {
        try store.roll(.midTransaction)
        try inner.append(event)
    }
    func upsert(_ rows: [DerivedRow]) throws {
        try store.roll(.midTransaction)
        try inner.upsert(rows)
    }
    func saveSnapshot(seq: Int64, data: Data) throws {
        try store.roll(.midTransaction)
        try inner.saveSnapshot(seq: seq, data: data)
    }
}

/// Deterministic simulation of the ledger under store faults: random action sequences
/// (valid and not) over many seeds, every action retried until the ledger answers, with
/// the invariants checked after every step — nothing recorded twice or lost, no holding
/// negative, units equal to holdings, payouts equal to the revenue recorded — and the chain
/// verified and replayed from scratch every 40 steps and at the end. Small snapshots
/// (every 25 events) put faults inside snapshot writes too.
@Suite struct SimulationTests {
    @Test(arguments: Array(1...8) as [UInt64])
    func theLedgerSurvivesStoreFaults(_ seed: UInt64) throws {
        let db = try TestDatabase(.sqlite)
        let faulty = FaultyStore(try db.store(), seed: seed &* 7_919, rate: 60)
        let m = try MarketFixture(store: faulty, snapshotInterval: 25)
        faulty.armed = true
        var rng = SplitMix64(seed: seed)
        var bundles: [String] = []
        var revenueTotal: Int64 = 0
        var period = 0
        var recorded: [String: Int64] = [:]
        for step in 0..<300 {
            guard let (action, revenue, bundle) = try m.randomAction(&rng, tag: "\(seed)-\(step)", bundles: bundles, period: &period) else { continue }
            var outcome: Ledger.Outcome?
            var attempts = 0
            retry: while attempts < 100 {
                attempts += 1
                do {
                    outcome = try m.ledger.append(action)
                    break retry
                } catch is InjectedFault {
                    continue retry
                } catch LedgerError.refused {
                    break retry
                }
            }
            #expect(attempts < 100, "seed \(seed) step \(step): never answered")
            if let outcome {
                // A retry after a lost commit is the same event, never a second one.
                let key = Ledger.idempotencyKey(kind: action.action.kind, payload: action.payload, actor: action.actor)
                #expect(recorded[key] == nil, "seed \(seed) step \(step): recorded before as \(recorded[key] ?? 0)")
                recorded[key] = outcome.seq
                revenueTotal += revenue ?? 0
                bundles += bundle.map { [$0] } ?? []
            }
            faulty.armed = false
            try m.checkBalances(revenueTotal: revenueTotal)
            #expect(try m.eventCount() == Int64(recorded.count) + m.setupEvents, "seed \(seed) step \(step): events lost or doubled")
            if step % 40 == 39 { try Self.fullCheck(m, seed: seed, step: step) }
            faulty.armed = true
        }
        faulty.armed = false
        try Self.fullCheck(m, seed: seed, step: 300)
        #expect(faulty.faults.contains(.midTransaction) && faulty.faults.contains(.afterCommit), "seed \(seed) injected \(faulty.faults.count) faults")
    }

    static func fullCheck(_ m: MarketFixture, seed: UInt64, step: Int) throws {
        let v = try m.verify()
        #expect(v.ok, "seed \(seed) step \(step): \(v.problem ?? "")")
        let replayed = try Ledger(store: m.ledger.store, policy: m.ledger.policy, snapshotInterval: 1_000_000)
        #expect(try replayed.currentState() == m.ledger.currentState(), "seed \(seed) step \(step): a replay differs")
    }
}
