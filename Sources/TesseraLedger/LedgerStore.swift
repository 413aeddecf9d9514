import Foundation

/// One appended event as stored: the signed action, its place in the hash chain and the
/// key that makes re-sending it harmless.
public struct StoredEvent: Sendable, Equatable, Codable {
    public var seq: Int64
    public var kind: String
    public var payload: String
    public var actor: String
    public var signature: String
    public var prevHash: String
    public var hash: String
    /// SHA-256 of kind, payload and actor: the same action sent twice has the same key.
    public var idempotencyKey: String
    public var at: Int64

    public init(seq: Int64, kind: String, payload: String, actor: String, signature: String, prevHash: String, hash: String,
                idempotencyKey: String, at: Int64) {
        (self.seq, self.kind, self.payload, self.actor, self.signature) = (seq, kind, payload, actor, signature)
        (self.prevHash, self.hash, self.idempotencyKey, self.at) = (prevHash, hash, idempotencyKey, at)
    }

    enum CodingKeys: String, CodingKey {
        case seq, kind, payload, actor, signature, hash, at
        case prevHash = "prev_hash"
        case idempotencyKey = "idempotency_key"
    }
}

/// Reads shared by the rules, the queries and `verify`. Implementations use portable SQL
/// so that a PostgreSQL store can stand beside the SQLite one without touching the rules.
public protocol LedgerReader {
    func head() throws -> StoredEvent?
    func events(after seq: Int64, limit: Int) throws -> [StoredEvent]
    func event(idempotencyKey: String) throws -> StoredEvent?
    /// The numbers of the events already recorded under any of these keys: one query where
    /// the store can.
    func eventNumbers(idempotencyKeys: [String]) throws -> [String: Int64]
    /// Rows of a derived table whose columns equal the given values.
    func rows(_ table: DerivedTable, matching: [(column: String, value: SQLValue)]) throws -> [DerivedRow]
    /// Rows of a derived table last written by events first...last.
    func rows(_ table: DerivedTable, seqFrom first: Int64, through last: Int64) throws -> [DerivedRow]
    /// Rows of a derived table by primary key (absent keys are left out): one query where
    /// the store can, where each query is a network round trip.
    func rows(_ table: DerivedTable, keys: [[SQLValue]]) throws -> [DerivedRow]
    func eventCount() throws -> Int64
    /// The latest state snapshot at or before `seq`, if one is stored.
    func snapshot(atOrBefore seq: Int64) throws -> (seq: Int64, data: Data)?
}

extension LedgerReader {
    public func eventNumbers(idempotencyKeys: [String]) throws -> [String: Int64] {
        var out: [String: Int64] = [:]
        for k in idempotencyKeys { if let e = try event(idempotencyKey: k) { out[k] = e.seq } }
        return out
    }

    public func rows(_ table: DerivedTable, keys: [[SQLValue]]) throws -> [DerivedRow] {
        try keys.flatMap { key in try rows(table, matching: Array(zip(table.keyColumns, key)).map { (column: $0.0, value: $0.1) }) }
    }
}

public protocol LedgerWriter: LedgerReader {
    func append(_ event: StoredEvent) throws
    func upsert(_ rows: [DerivedRow]) throws
    func saveSnapshot(seq: Int64, data: Data) throws
}

/// Storage of a market's ledger. `write` runs its body in one exclusive, durable
/// transaction: all of it lands or none of it does.
public protocol LedgerStore: Sendable {
    func read<T>(_ body: (any LedgerReader) throws -> T) throws -> T
    func write<T>(_ body: (any LedgerWriter) throws -> T) throws -> T
}
