import Dispatch
import Foundation
import TesseraCore

/// A market's ledger: appends signed actions after checking them against the rules, as
/// hash-chained events written in the same transaction as their effects; answers queries
/// from the derived tables; and verifies the whole chain on demand.
public final class Ledger: @unchecked Sendable {
    public let store: LedgerStore
    public let policy: MarketPolicy
    private var state: LedgerState
    private let lock = NSLock()
    /// A state snapshot is stored with every event whose number is a multiple of this, so
    /// the first append to a long ledger replays at most this many events (without
    /// signature checks). Encoding the whole state grows with the ledger (the 20 snapshots
    /// of a million appends took 18 s), so snapshots are not taken more often.
    public let snapshotInterval: Int64

    public enum Outcome: Sendable, Equatable {
        case appended(seq: Int64)
        /// The same action was already recorded, as this event; nothing new was written.
        case duplicate(seq: Int64)
        public var seq: Int64 { switch self { case let .appended(s), let .duplicate(s): return s } }
    }

    public init(store: LedgerStore, policy: MarketPolicy, snapshotInterval: Int64 = 50_000) throws {
        self.store = store
        self.policy = policy
        self.snapshotInterval = max(1, snapshotInterval)
        // The state is brought up to date by the first append (or `currentState`), not
        // here: queries read the derived tables, and opening a long ledger only to ask
        // for someone's shares should not replay anything.
        state = LedgerState(policy: policy)
    }

    /// Brings a state up to the store's head: from the latest snapshot when that is
    /// newer, then event by event (signatures were checked when each event was appended;
    /// `verify` checks them again).
    static func catchUp(_ start: LedgerState, reader: any LedgerReader) throws -> LedgerState {
        var s = start
        try catchUp(into: &s, reader: reader)
        return s
    }

    static func catchUp(into s: inout LedgerState, reader: any LedgerReader) throws {
        if let head = try reader.head(), head.seq > s.seq, let snap = try reader.snapshot(atOrBefore: head.seq), snap.seq > s.seq {
            s = try LedgerState(snapshot: snap.data, seq: snap.seq, policy: s.policy)
        }
        while true {
            let batch = try reader.events(after: s.seq, limit: 10_000)
            if batch.isEmpty { break }
            for e in batch {
                let action = try LedgerAction.decode(kind: e.kind, payload: e.payload)
                _ = try s.apply(SignedAction(action: action, actor: e.actor, signature: e.signature, storedPayload: e.payload), seq: e.seq, hash: e.hash, checkSignature: false)
            }
        }
    }

    public static func idempotencyKey(kind: String, payload: String, actor: String) -> String {
        ContentHash.sha256(Array("{\"actor\":\"\(actor)\",\"kind\":\"\(kind)\",\"payload\":\(payload)}".utf8))
    }

    public static func eventHash(seq: Int64, kind: String, payload: String, actor: String, signature: String, prev: String) -> String {
        ContentHash.sha256(Array("{\"actor\":\"\(actor)\",\"kind\":\"\(kind)\",\"payload\":\(payload),\"prev\":\"\(prev)\",\"seq\":\(seq),\"signature\":\"\(signature)\"}".utf8))
    }

    /// Appends actions in one transaction: all are recorded, or (on the first refusal)
    /// none. An action identical to one already recorded is not recorded again.
    @discardableResult
    public func append(_ actions: [SignedAction]) throws -> [Outcome] {
        // Signatures first, on every core, outside the write lock.
        try PhaseTimer.shared.measure("ledger.signatures") { try Self.checkSignatures(actions, parallel: true) }
        return try appendChecked(actions)
    }

    /// Appends several batches, each in its own transaction, checking the signatures of
    /// the next batch on another core while the current one is written. Batches before a
    /// refused one stay recorded.
    @discardableResult
    public func append(batches: [[SignedAction]]) throws -> [[Outcome]] {
        guard !batches.isEmpty else { return [] }
        try Self.checkSignatures(batches[0], parallel: true)
        var out: [[Outcome]] = []
        for i in batches.indices {
            let next = i + 1 < batches.count ? batches[i + 1] : []
            let nextChecked = Background { Result { try Self.checkSignatures(next, parallel: false) } }
            out.append(try appendChecked(batches[i]))
            try nextChecked.take().get()
        }
        return out
    }

    /// Batch verification: all of a batch's signatures in one multi-scalar multiplication
    /// (per core), and the first bad one located exactly when the batch fails.
    static func checkSignatures(_ actions: [SignedAction], parallel: Bool) throws {
        if let bad = SignedAction.firstBadSignature(actions, parallel: parallel) {
            throw LedgerState.badSignature(actions[bad])
        }
    }

    /// After a transaction was rolled back: a refused rule leaves the state unchanged, but
    /// actions applied before it in the batch did change it, and then it is reloaded.
    private func restoreState(_ s: LedgerState, changed: Bool) throws {
        state = changed ? try store.read { r in try Self.catchUp(LedgerState(policy: policy), reader: r) } : s
    }

    private func appendChecked(_ actions: [SignedAction]) throws -> [Outcome] {
        lock.lock()
        defer { lock.unlock() }
        // The state is moved out while the batch is applied, so the rules mutate the only
        // copy in place; a second reference would copy every large table on each batch.
        var s = LedgerState(policy: policy)
        swap(&s, &state)
        var changed = false
        do {
            let outcomes = try PhaseTimer.shared.measure("ledger.write") { try store.write { w -> [Outcome] in
                try Self.catchUp(into: &s, reader: w)
                var (keys, seen) = try Self.recorded(actions, in: w)
                return try PhaseTimer.shared.measure("ledger.batch") { try applyBatch(actions, keys: keys, seen: &seen, to: &s, writer: w, changed: &changed) }
            } }
            state = s
            return outcomes
        } catch {
            try restoreState(s, changed: changed)
            throw error
        }
    }

    /// The idempotency keys of the actions and the events already recorded under them, in
    /// one lookup (a round trip per action would dominate appends to a database server).
    private static func recorded(_ actions: [SignedAction], in w: any LedgerWriter) throws -> (keys: [String], seen: [String: Int64]) {
        let keys = actions.map { Self.idempotencyKey(kind: $0.action.kind, payload: $0.payload, actor: $0.actor) }
        return (keys, try PhaseTimer.shared.measure("ledger.idem") { try w.eventNumbers(idempotencyKeys: keys) })
    }

    /// `seen`: keys already recorded (before or earlier in this transaction), with their
    /// events; the batch's appends are added to it.
    private func applyBatch(_ actions: [SignedAction], keys: [String], seen: inout [String: Int64], to s: inout LedgerState,
                            writer w: any LedgerWriter, changed: inout Bool) throws -> [Outcome] {
            var outcomes: [Outcome] = []
            for (a, idem) in zip(actions, keys) {
                let payload = a.payload
                if let seq = seen[idem] {
                    outcomes.append(.duplicate(seq: seq))
                    continue
                }
                let seq = s.seq + 1
                let hash = Self.eventHash(seq: seq, kind: a.action.kind, payload: payload, actor: a.actor, signature: a.signature, prev: s.headHash)
                let prev = s.headHash
                let rows = try PhaseTimer.shared.measure("ledger.rules") { try s.apply(a, seq: seq, hash: hash, checkSignature: false) }
                changed = true
                try PhaseTimer.shared.measure("ledger.sql") {
                    try w.append(StoredEvent(seq: seq, kind: a.action.kind, payload: payload, actor: a.actor, signature: a.signature,
                                             prevHash: prev, hash: hash, idempotencyKey: idem, at: a.action.at))
                    try w.upsert(rows)
                }
                if seq % snapshotInterval == 0 {
                    try PhaseTimer.shared.measure("ledger.snapshot") { try w.saveSnapshot(seq: seq, data: Data(try s.snapshotBytes())) }
                }
                seen[idem] = seq
                outcomes.append(.appended(seq: seq))
            }
            return outcomes
    }

    @discardableResult
    public func append(_ action: SignedAction) throws -> Outcome { try append([action])[0] }

    /// Appends actions that arrived independently (a server's concurrent requests) in one
    /// durable transaction, each on its own terms: a refused action (a broken rule, a bad
    /// signature) is reported in its slot and records nothing, the others are recorded in
    /// order. This is group commit: one fsync for the lot. Throws only when the store
    /// itself fails, and then nothing of the lot is recorded.
    public func appendEach(_ actions: [SignedAction]) throws -> [Result<Outcome, LedgerError>] {
        guard !actions.isEmpty else { return [] }
        // Signatures first, outside the write lock: all at once, one by one only if some fail.
        var signatureOK = [Bool](repeating: true, count: actions.count)
        if SignedAction.firstBadSignature(actions, parallel: true) != nil {
            for (i, a) in actions.enumerated() { signatureOK[i] = a.signatureCheck.map { SignatureBatch.allValid(CollectionOfOne($0)) } ?? false }
        }
        lock.lock()
        defer { lock.unlock() }
        var s = LedgerState(policy: policy)
        swap(&s, &state)
        var changed = false
        do {
            let results = try store.write { w -> [Result<Outcome, LedgerError>] in
                try Self.catchUp(into: &s, reader: w)
                var (keys, seen) = try Self.recorded(actions, in: w)
                var out: [Result<Outcome, LedgerError>] = []
                for (i, a) in actions.enumerated() {
                    guard signatureOK[i] else { out.append(.failure(LedgerState.badSignature(a))); continue }
                    do {
                        out.append(.success(try applyBatch([a], keys: [keys[i]], seen: &seen, to: &s, writer: w, changed: &changed)[0]))
                    } catch let e as LedgerError {
                        out.append(.failure(e))
                    }
                }
                return out
            }
            state = s
            return results
        } catch {
            try restoreState(s, changed: changed)
            throw error
        }
    }

    /// The current state (after catching up with other writers).
    public func currentState() throws -> LedgerState {
        lock.lock()
        defer { lock.unlock() }
        state = try store.read { r in try Self.catchUp(state, reader: r) }
        return state
    }
}
