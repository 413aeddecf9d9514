import Dispatch
import Foundation
import TesseraEngine
import TesseraLibrary

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
            var expected: [DerivedTable: [[SQLValue]: [SQLValue]]] = [:]
            let snapshot = try r.snapshot(atOrBefore: .max)
            var count: Int64 = 0
            func bad(_ seq: Int64, _ why: String) -> VerifyReport {
                VerifyReport(events: count, ok: false, firstBadEvent: seq, problem: why)
            }
            var worst: (seq: Int64, why: String)? = nil
            func note(_ seq: Int64, _ why: String) { if worst == nil || seq < worst!.seq { worst = (seq, why) } }
            func describe(_ table: DerivedTable, _ key: [SQLValue]) -> String { "\(table.rawValue) \(key.map(\.description).joined(separator: "/"))" }
            func compare(_ table: DerivedTable, stored: [DerivedRow], expected want: inout [[SQLValue]: [SQLValue]]) {
                for row in stored {
                    if let v = want.removeValue(forKey: row.key) {
                        if v != row.values {
                            let seq = min(row.seq, DerivedRow(table: table, key: row.key, values: v).seq)
                            note(seq, "\(describe(table, row.key)): stored \(zip(table.valueColumns, row.values).map { "\($0)=\($1)" }.joined(separator: " ")), the events give \(zip(table.valueColumns, v).map { "\($0)=\($1)" }.joined(separator: " "))")
                        }
                    } else {
                        note(row.seq, "\(describe(table, row.key)): stored, but no event produces it")
                    }
                }
                for (key, v) in want {
                    note(DerivedRow(table: table, key: key, values: v).seq, "\(describe(table, key)): produced by the events, but not stored")
                }
                want.removeAll()
            }
            while true {
                let page = try PhaseTimer.shared.measure("verify.read") { try r.events(after: s.seq, limit: 10_000) }
                if page.isEmpty { break }
                var pageRows: [DerivedTable: [[SQLValue]: [SQLValue]]] = [:]
                // Signatures are the costly check: both cores, then in order.
                // Everything that depends on one event alone (decoding, hashes, signature)
                // runs on both cores; only the links and the rules need the order.
                var checks = [EventCheck](repeating: EventCheck(), count: page.count)
                PhaseTimer.shared.measure("verify.parallel") { checks.withUnsafeMutableBufferPointer { buf in
                    let out = SlotWriter(buf.baseAddress!)
                    Parallel.parts(page.count) { _, range in
                        for i in range { out.set(i, EventCheck(page[i])) }
                        // Signatures as one batch per core; after the first bad one nothing
                        // is read, as verify stops there.
                        let signed = range.map { buf[$0].action == nil ? nil : buf[$0].signature }
                        let bad = SignedAction.firstBad(signed, parallel: false).map { range.lowerBound + $0 } ?? range.upperBound
                        for i in range where i < bad && buf[i].action != nil { buf[i].signatureOK = true }
                    }
                } }
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
                        if row.table.writtenOnce { pageRows[row.table, default: [:]][row.key] = row.values } else { expected[row.table, default: [:]][row.key] = row.values }
                    }
                    if let snapshot, snapshot.seq == e.seq {
                        guard let stored = try? JSONDecoder().decode(LedgerState.self, from: snapshot.data), stored == s else {
                            return bad(e.seq, "the state snapshot stored at event \(e.seq) does not match the events")
                        }
                    }
                }
                for table in DerivedTable.allCases where table.writtenOnce {
                    var want = pageRows[table] ?? [:]
                    let stored = try PhaseTimer.shared.measure("verify.pagerows") { try r.rows(table, seqFrom: page.first!.seq, through: page.last!.seq) }
                    PhaseTimer.shared.measure("verify.pagecompare") { compare(table, stored: stored, expected: &want) }
                }
            }
            if let snapshot, snapshot.seq > s.seq { return bad(snapshot.seq, "a snapshot exists for event \(snapshot.seq), past the last event") }
            let compareStart = DispatchTime.now().uptimeNanoseconds
            defer { PhaseTimer.shared.add("verify.compare", DispatchTime.now().uptimeNanoseconds - compareStart) }
            for table in DerivedTable.allCases {
                if table.writtenOnce {
                    // Rows claiming events past the last one.
                    var none: [[SQLValue]: [SQLValue]] = [:]
                    compare(table, stored: try r.rows(table, seqFrom: s.seq + 1, through: .max), expected: &none)
                } else {
                    var want = expected[table] ?? [:]
                    compare(table, stored: try r.rows(table, matching: []), expected: &want)
                }
            }
            if let worst { return VerifyReport(events: count, ok: false, firstBadEvent: worst.seq, problem: worst.why) }
            return VerifyReport(events: count, ok: true, firstBadEvent: nil, problem: nil)
        }
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
