import Dispatch
import Foundation
import TesseraCore

public struct VerifyReport: Codable, Sendable, Equatable {
    public var events: Int64
    public var ok: Bool
    /// The first event at which anything disagrees: a broken link, a bad hash or
    /// signature, a rule the event breaks, or a derived figure that does not match.
    public var firstBadEvent: Int64?
    public var problem: String?

    enum CodingKeys: String, CodingKey {
        case events, ok, problem
        case firstBadEvent = "first_bad_event"
    }
}

extension Ledger {
    /// Replays the whole chain from the first event, checking every link, hash, signature
    /// and rule, recomputes every derived table (and the latest snapshot) from the events
    /// alone, and compares them with what is stored.
    public static func verify(store: LedgerStore, policy: MarketPolicy) throws -> VerifyReport {
        try store.read { r in
            var s = LedgerState(policy: policy)
            // The rows the events give for tables whose rows change, folded in event order
            // on the row queue below.
            let expected = ExpectedRows()
            let snapshot = try r.snapshot(atOrBefore: .max)
            // Other connections read pages and rows below; events committed after this
            // read began are not part of this verification.
            let head = try r.head()?.seq ?? 0
            var count: Int64 = 0
            let found = Discrepancies()
            // Rows written once (payouts, claims, verdicts, revenue) are compared with the
            // stored ones page by page, on another core and its own read connection: such
            // rows never change once committed, so any later snapshot holds the same ones.
            let pageRowChecks = DispatchQueue(label: "tessera.verify.rows")
            let rowChecks = DispatchGroup()
            defer { rowChecks.wait() }
            /// Where the replay must stop; a derived row found wrong at an earlier event is
            /// reported instead.
            func bad(_ seq: Int64, _ why: String) -> VerifyReport {
                rowChecks.wait()
                if let earlier = try? found.worst(), earlier.seq < seq {
                    return VerifyReport(events: count, ok: false, firstBadEvent: earlier.seq, problem: earlier.why)
                }
                return VerifyReport(events: count, ok: false, firstBadEvent: seq, problem: why)
            }
            // Pages flow through two stages: while the rules replay one page in order on
            // this thread, the next page's independent checks run on the other cores.
            let pending = PendingChecks()
            defer { pending.wait() }
            pending.start(store: store, after: 0, through: head)
            while true {
                let (page, checks) = try PhaseTimer.shared.measure("verify.wait") { try pending.take() }
                if page.isEmpty { break }
                pending.start(store: store, after: page.last!.seq, through: head)
                var pageRows: [DerivedRow] = [], changedRows: [DerivedRow] = []
                for (i, e) in page.enumerated() {
                    count += 1
                    guard e.seq == s.seq + 1 else { return bad(s.seq + 1, "event \(s.seq + 1) is missing (next stored is \(e.seq))") }
                    guard e.prevHash == s.headHash else { return bad(e.seq, "event \(e.seq) does not link to the hash of event \(s.seq)") }
                    let check = checks[i]
                    guard let action = check.action else {
                        return bad(e.seq, "event \(e.seq) payload is not a valid canonical \(e.kind) action")
                    }
                    guard check.hashOK else { return bad(e.seq, "event \(e.seq) hash does not match its contents") }
                    guard check.idempotencyKeyOK else {
                        return bad(e.seq, "event \(e.seq) idempotency key does not match its contents")
                    }
                    guard check.signatureOK else { return bad(e.seq, "event \(e.seq) has a bad signature") }
                    guard e.at == action.at else { return bad(e.seq, "event \(e.seq) time column disagrees with its payload") }
                    let rows: [DerivedRow]
                    do {
                        rows = try PhaseTimer.shared.measure("verify.apply") { try s.apply(SignedAction(action: action, actor: e.actor, signature: e.signature, storedPayload: e.payload), seq: e.seq, hash: e.hash, checkSignature: false) }
                    } catch {
                        return bad(e.seq, "event \(e.seq) breaks the rules: \(error)")
                    }
                    for row in rows {
                        if row.table.writtenOnce { pageRows.append(row) } else { changedRows.append(row) }
                    }
                    if let snapshot, snapshot.seq == e.seq {
                        // One state has one binary encoding: compare bytes (a JSON snapshot
                        // from an earlier version is decoded and compared instead).
                        let matches = PhaseTimer.shared.measure("verify.snapshot") {
                            LedgerState.isBinarySnapshot(snapshot.data)
                                ? (try? s.snapshotBytes(version: snapshot.data.starts(with: LedgerState.snapshotMagicV1) ? 1 : 2)).map { snapshot.data.elementsEqual($0) } ?? false
                                : (try? LedgerState(snapshot: snapshot.data, seq: snapshot.seq, policy: policy)) == s
                        }
                        guard matches else {
                            return bad(e.seq, "the state snapshot stored at event \(e.seq) does not match the events")
                        }
                    }
                }
                let (first, last) = (page.first!.seq, page.last!.seq)
                pageRowChecks.async(group: rowChecks) { [pageRows, changedRows] in
                    expected.fold(changedRows)
                    var want: [DerivedTable: [[SQLValue]: [SQLValue]]] = [:]
                    for row in pageRows { want[row.table, default: [:]][row.key] = row.values }
                    do {
                        try store.read { r in
                            for table in DerivedTable.allCases where table.writtenOnce {
                                var expected = want[table] ?? [:]
                                found.compare(table, stored: try r.rows(table, seqFrom: first, through: last), expected: &expected)
                            }
                        }
                    } catch {
                        found.fail(error)
                    }
                }
            }
            if let snapshot, snapshot.seq > s.seq { return bad(snapshot.seq, "a snapshot exists for event \(snapshot.seq), past the last event") }
            rowChecks.wait()
            let compareStart = DispatchTime.now().uptimeNanoseconds
            defer { PhaseTimer.shared.add("verify.compare", DispatchTime.now().uptimeNanoseconds - compareStart) }
            for table in DerivedTable.allCases {
                if table.writtenOnce {
                    // Rows claiming events past the last one.
                    var none: [[SQLValue]: [SQLValue]] = [:]
                    found.compare(table, stored: try r.rows(table, seqFrom: s.seq + 1, through: .max), expected: &none)
                } else {
                    var want = expected.rows[table] ?? [:]
                    found.compare(table, stored: try r.rows(table, matching: []), expected: &want)
                }
            }
            rowChecks.wait()
            if let worst = try found.worst() { return VerifyReport(events: count, ok: false, firstBadEvent: worst.seq, problem: worst.why) }
            return VerifyReport(events: count, ok: true, firstBadEvent: nil, problem: nil)
        }
    }
}

/// Derived rows that disagree with the events, from any thread; the earliest event wins.
final class Discrepancies: @unchecked Sendable {
    private let lock = NSLock()
    private var earliest: (seq: Int64, why: String)?
    private var error: Error?

    func note(_ seq: Int64, _ why: String) {
        lock.lock(); defer { lock.unlock() }
        if earliest == nil || seq < earliest!.seq { earliest = (seq, why) }
    }

    func fail(_ e: Error) { lock.lock(); defer { lock.unlock() }; if error == nil { error = e } }

    func worst() throws -> (seq: Int64, why: String)? {
        lock.lock(); defer { lock.unlock() }
        if let error { throw error }
        return earliest
    }

    /// Compares stored rows with the rows the events produce, noting each difference at
    /// the event that wrote it.
    func compare(_ table: DerivedTable, stored: [DerivedRow], expected want: inout [[SQLValue]: [SQLValue]]) {
        func describe(_ key: [SQLValue]) -> String { "\(table.rawValue) \(key.map(\.description).joined(separator: "/"))" }
        func columns(_ values: [SQLValue]) -> String { zip(table.valueColumns, values).map { "\($0)=\($1)" }.joined(separator: " ") }
        for row in stored {
            if let v = want.removeValue(forKey: row.key) {
                if v != row.values {
                    note(min(row.seq, DerivedRow(table: table, key: row.key, values: v).seq),
                         "\(describe(row.key)): stored \(columns(row.values)), the events give \(columns(v))")
                }
            } else {
                note(row.seq, "\(describe(row.key)): stored, but no event produces it")
            }
        }
        for (key, v) in want {
            note(DerivedRow(table: table, key: key, values: v).seq, "\(describe(key)): produced by the events, but not stored")
        }
        want.removeAll()
    }
}

extension Ledger {
    static let verifyPage = 10_000

    /// Decoding, hashes and signatures of a page, on every core: nothing here needs the
    /// order. Signatures go as one batch per core; past the first bad one nothing is
    /// marked valid, as verify stops there.
    static func checkPage(_ page: [StoredEvent]) -> [EventCheck] {
        var checks = [EventCheck](repeating: EventCheck(), count: page.count)
        checks.withUnsafeMutableBufferPointer { buf in
            let out = SlotWriter(buf.baseAddress!)
            Parallel.parts(page.count) { _, range in
                for i in range { out.set(i, EventCheck(page[i])) }
                let signed = range.map { out.base[$0].action == nil ? nil : out.base[$0].signature }
                let bad = SignedAction.firstBad(signed, parallel: false).map { range.lowerBound + $0 } ?? range.upperBound
                for i in range where i < bad && out.base[i].action != nil { out.base[i].signatureOK = true }
            }
        }
        return checks
    }
}

/// The next page, read on its own connection and checked, while the current page is
/// replayed. Committed events never change, so a later read snapshot returns the same ones.
final class PendingChecks: @unchecked Sendable {
    private var job: Background<Result<([StoredEvent], [EventCheck]), Error>>?
    func start(store: LedgerStore, after seq: Int64, through head: Int64) {
        job = Background {
            Result {
                let page = try PhaseTimer.shared.measure("verify.read") {
                    try store.read { try $0.events(after: seq, limit: Ledger.verifyPage) }.filter { $0.seq <= head }
                }
                return (page, Ledger.checkPage(page))
            }
        }
    }
    func take() throws -> ([StoredEvent], [EventCheck]) { try job?.take().get() ?? ([], []) }
    func wait() { _ = job?.take() }
}

/// Table → key → values, last write wins: what the mutable derived tables should hold.
final class ExpectedRows: @unchecked Sendable {
    var rows: [DerivedTable: [[SQLValue]: [SQLValue]]] = [:]
    func fold(_ changed: [DerivedRow]) {
        for row in changed { rows[row.table, default: [:]][row.key] = row.values }
    }
}

/// The checks of one stored event that need no other event.
struct EventCheck {
    var action: LedgerAction?
    var hashOK = false
    var idempotencyKeyOK = false
    var signatureOK = false
    var signature: SignatureCheck?

    init() {}

    init(_ e: StoredEvent) {
        // The signature covers the stored payload bytes; the action is what they decode to.
        guard let a = try? LedgerAction.decode(kind: e.kind, payload: e.payload) else { return }
        action = a
        hashOK = e.hash == Ledger.eventHash(seq: e.seq, kind: e.kind, payload: e.payload, actor: e.actor, signature: e.signature, prev: e.prevHash)
        idempotencyKeyOK = e.idempotencyKey == Ledger.idempotencyKey(kind: e.kind, payload: e.payload, actor: e.actor)
        signature = SignedAction.signatureCheck(kind: e.kind, payload: e.payload, actor: e.actor, signature: e.signature)
    }
}
