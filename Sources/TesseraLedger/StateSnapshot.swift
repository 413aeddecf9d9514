import Foundation
import TesseraCore

/// The ledger state as a snapshot: a compact binary form with every collection in sorted
/// order, so one state has exactly one encoding. JSON took seconds per snapshot on a
/// million-event ledger (a third of all append time); this form is written in a fraction
/// of that, and `verify` compares bytes instead of decoding. Snapshots written as JSON by
/// earlier versions are still read.
extension LedgerState {
    /// Version 2 adds the ledger's clock; version 1 snapshots (no clock) are still read and
    /// verified.
    static let snapshotMagic = Array("TESSERA-STATE-2\n".utf8)
    static let snapshotMagicV1 = Array("TESSERA-STATE-1\n".utf8)

    /// Whether `data` is a binary snapshot (of either version), not a JSON one.
    static func isBinarySnapshot(_ data: Data) -> Bool {
        data.starts(with: snapshotMagic) || data.starts(with: snapshotMagicV1)
    }

    /// `version` 1 only to compare with a snapshot an earlier version wrote.
    public func snapshotBytes(version: Int = 2) throws -> [UInt8] {
        var w = SnapshotWriter()
        w.bytes.reserveCapacity(1 << 20)
        w.bytes += version == 1 ? Self.snapshotMagicV1 : Self.snapshotMagic
        w.blob(try JSONOutput.canonicalBytes(policy))
        w.int(seq)
        w.string(headHash)
        if version != 1 { w.optional(clock) { $0.int($1) } }
        w.optional(operatorKey) { $0.string($1) }
        w.sorted(participants) { w, p in
            w.list(p.roles.sorted()) { $0.string($1.rawValue) }
            w.int(p.stake)
        }
        w.list(domains.sorted()) { $0.string($1) }
        w.sorted(rounds) { w, r in
            w.string(r.domain)
            w.list(r.experts.sorted()) { $0.expert($1) }
            w.int(r.openedAt); w.int(r.closesAt); w.bool(r.open)
        }
        w.count(claims.count)
        for (id, list) in claims.sorted(by: { $0.key < $1.key }) {
            w.expert(id)
            w.list(list) { w, c in w.string(c.participant); w.string(c.round); w.int(c.expiresAt) }
        }
        w.sorted(submissions) { w, s in
            w.string(s.contributor); w.string(s.round)
            w.list(s.experts) { w, e in w.expert(e.id); w.optional(e.version) { $0.string($1) } }
            w.string(s.state.rawValue)
            w.sorted(s.verdicts) { w, v in w.int(v.gain); w.int(v.regression); w.bool(v.accept) }
            w.optional(s.consensusGain) { $0.int($1) }
        }
        w.count(experts.count)
        for (id, e) in experts.sorted(by: { $0.key < $1.key }) {
            w.expert(id)
            w.list(e.versions) { $0.string($1) }
            w.sorted(e.holdings) { $0.int($1) }
            w.int(e.units); w.int(e.revenue)
        }
        w.sorted(versionOwner) { $0.expert($1) }
        w.list(revenuePeriods.sorted()) { $0.string($1) }
        w.sorted(payoutTotals) { w, byExpert in
            w.count(byExpert.count)
            for (id, amount) in byExpert.sorted(by: { $0.key < $1.key }) { w.expert(id); w.int(amount) }
        }
        w.sorted(commitments) { w, byValidator in
            w.sorted(byValidator) { w, c in w.string(c.commitment); w.bool(c.revealed); w.optional(c.heldOutSHA256) { $0.string($1) } }
        }
        return w.bytes
    }

    /// The state a snapshot holds. `policy` is the market's: a snapshot made under any
    /// other policy is refused, as is a damaged one (named by `seq`).
    public init(snapshot data: Data, seq snapshotSeq: Int64, policy expected: MarketPolicy) throws {
        let bytes = [UInt8](data)
        let v1 = bytes.starts(with: Self.snapshotMagicV1)
        guard v1 || bytes.starts(with: Self.snapshotMagic) else {
            guard let legacy = try? StrictJSON.decode(LedgerState.self, from: data, file: "snapshot") else {
                throw LedgerError.corrupt("snapshot at event \(snapshotSeq) is neither a binary nor a JSON ledger state")
            }
            guard legacy.policy == expected else { throw LedgerError.corrupt("snapshot at event \(snapshotSeq) was made under another policy") }
            self = legacy
            return
        }
        var r = SnapshotReader(bytes: bytes, at: Self.snapshotMagic.count, seq: snapshotSeq)
        guard let policy = try? StrictJSON.decode(MarketPolicy.self, from: Data(try r.blob()), file: "snapshot"), policy == expected else {
            throw LedgerError.corrupt("snapshot at event \(snapshotSeq) was made under another policy")
        }
        self.init(policy: policy)
        seq = try r.int()
        headHash = try r.string()
        if !v1 { clock = try r.optional { try $0.int() } }
        operatorKey = try r.optional { try $0.string() }
        participants = try r.dictionary { r in
            let roles = try r.list { r in try r.enumValue(Role.self) }
            return Participant(roles: Set(roles), stake: try r.int())
        }
        domains = Set(try r.list { try $0.string() })
        rounds = try r.dictionary { r in
            Round(domain: try r.string(), experts: Set(try r.list { try $0.expert() }), openedAt: try r.int(), closesAt: try r.int(), open: try r.bool())
        }
        for _ in 0..<(try r.count()) {
            let id = try r.expert()
            claims[id] = try r.list { r in ActiveClaim(participant: try r.string(), round: try r.string(), expiresAt: try r.int()) }
        }
        submissions = try r.dictionary { r in
            let contributor = try r.string(), round = try r.string()
            let experts = try r.list { r in
                let id = try r.expert()
                return ExpertRef(layer: id.layer, expert: id.expert, version: try r.optional { try $0.string() })
            }
            let state = try r.enumValue(SubmissionState.self)
            let verdicts = try r.dictionary { r in VerdictRecord(gain: try r.int(), regression: try r.int(), accept: try r.bool()) }
            return Submission(contributor: contributor, round: round, experts: experts, state: state, verdicts: verdicts, consensusGain: try r.optional { try $0.int() })
        }
        for _ in 0..<(try r.count()) {
            let id = try r.expert()
            experts[id] = Expert(versions: try r.list { try $0.string() }, holdings: try r.dictionary { try $0.int() }, units: try r.int(), revenue: try r.int())
        }
        versionOwner = try r.dictionary { try $0.expert() }
        revenuePeriods = Set(try r.list { try $0.string() })
        payoutTotals = try r.dictionary { r in
            var byExpert: [ExpertID: Int64] = [:]
            for _ in 0..<(try r.count()) { byExpert[try r.expert()] = try r.int() }
            return byExpert
        }
        commitments = try r.dictionary { r in
            try r.dictionary { r in Commitment(commitment: try r.string(), revealed: try r.bool(), heldOutSHA256: try r.optional { try $0.string() }) }
        }
        guard r.at == bytes.count else { throw r.damaged("\(bytes.count - r.at) bytes left over") }
    }
}

struct SnapshotWriter {
    var bytes: [UInt8] = []

    mutating func int(_ v: Int64) { withUnsafeBytes(of: v.littleEndian) { bytes += $0 } }
    mutating func count(_ n: Int) { int(Int64(n)) }
    mutating func bool(_ v: Bool) { bytes.append(v ? 1 : 0) }
    mutating func blob(_ b: [UInt8]) { count(b.count); bytes += b }
    mutating func string(_ s: String) { count(s.utf8.count); bytes += s.utf8 }
    mutating func expert(_ id: ExpertID) { int(Int64(id.layer)); int(Int64(id.expert)) }
    mutating func optional<T>(_ v: T?, _ body: (inout SnapshotWriter, T) -> Void) {
        bool(v != nil)
        if let v { body(&self, v) }
    }
    mutating func list<T>(_ items: [T], _ body: (inout SnapshotWriter, T) -> Void) {
        count(items.count)
        for item in items { body(&self, item) }
    }
    /// A string-keyed dictionary in key order.
    mutating func sorted<V>(_ d: [String: V], _ body: (inout SnapshotWriter, V) -> Void) {
        count(d.count)
        for key in d.keys.sorted() {
            string(key)
            body(&self, d[key]!)
        }
    }
}

/// Reads what `SnapshotWriter` wrote; every read is bounds-checked, so a damaged snapshot
/// is an error naming the event and byte, never a crash.
struct SnapshotReader {
    let bytes: [UInt8]
    var at: Int
    let seq: Int64

    func damaged(_ why: String) -> LedgerError { .corrupt("snapshot at event \(seq) is damaged at byte \(at): \(why)") }

    mutating func take(_ n: Int) throws -> ArraySlice<UInt8> {
        guard n >= 0, n <= bytes.count - at else { throw damaged("needs \(n) bytes, \(bytes.count - at) left") }
        defer { at += n }
        return bytes[at..<(at + n)]
    }
    mutating func int() throws -> Int64 {
        var v: Int64 = 0
        for (i, b) in try take(8).enumerated() { v |= Int64(b) << (8 * i) }
        return v
    }
    mutating func count() throws -> Int {
        let n = try int()
        // Every element takes at least a byte: a larger count is damage, not a huge allocation.
        guard n >= 0, n <= Int64(bytes.count - at) else { throw damaged("count \(n) is impossible") }
        return Int(n)
    }
    mutating func bool() throws -> Bool {
        switch try take(1).first! {
        case 0: return false
        case 1: return true
        case let b: throw damaged("\(b) is not a boolean")
        }
    }
    mutating func blob() throws -> [UInt8] { Array(try take(try count())) }
    mutating func string() throws -> String {
        let raw = try take(try count())
        guard let s = String(validating: raw, as: UTF8.self) else { throw damaged("text is not UTF-8") }
        return s
    }
    mutating func expert() throws -> ExpertID {
        let layer = try int(), expert = try int()
        guard let l = Int(exactly: layer), let e = Int(exactly: expert) else { throw damaged("expert \(layer):\(expert) out of range") }
        return ExpertID(layer: l, expert: e)
    }
    mutating func enumValue<E: RawRepresentable>(_: E.Type) throws -> E where E.RawValue == String {
        let raw = try string()
        guard let v = E(rawValue: raw) else { throw damaged("unknown value \(raw)") }
        return v
    }
    mutating func optional<T>(_ body: (inout SnapshotReader) throws -> T) throws -> T? {
        try bool() ? try body(&self) : nil
    }
    mutating func list<T>(_ body: (inout SnapshotReader) throws -> T) throws -> [T] {
        let n = try count()
        var out: [T] = []
        out.reserveCapacity(n)
        for _ in 0..<n { out.append(try body(&self)) }
        return out
    }
    mutating func dictionary<V>(_ body: (inout SnapshotReader) throws -> V) throws -> [String: V] {
        let n = try count()
        var out: [String: V] = [:]
        out.reserveCapacity(n)
        for _ in 0..<n {
            let key = try string()
            guard out.updateValue(try body(&self), forKey: key) == nil else { throw damaged("key \(key) appears twice") }
        }
        return out
    }
}
