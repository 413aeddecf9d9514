import Foundation
import GRDB

/// GRDB records of the SQLite store: one row of `events` and of `snapshots`, with their
/// columns named explicitly. The rules see only `StoredEvent`; these stay in the store.
struct EventRecord: Codable, FetchableRecord, PersistableRecord {
    static let databaseTableName = "events"
    var seq: Int64
    var kind: String
    var payload: String
    var actor: String
    var signature: String
    var prevHash: String
    var hash: String
    var idem: String
    var at: Int64

    enum CodingKeys: String, CodingKey, ColumnExpression {
        case seq, kind, payload, actor, signature, hash, idem, at
        case prevHash = "prev_hash"
    }

    init(_ e: StoredEvent) {
        seq = e.seq; kind = e.kind; payload = e.payload; actor = e.actor; signature = e.signature
        prevHash = e.prevHash; hash = e.hash; idem = e.idempotencyKey; at = e.at
    }

    var stored: StoredEvent {
        StoredEvent(seq: seq, kind: kind, payload: payload, actor: actor, signature: signature, prevHash: prevHash, hash: hash,
                    idempotencyKey: idem, at: at)
    }
}

struct SnapshotRecord: Codable, FetchableRecord, PersistableRecord {
    static let databaseTableName = "snapshots"
    var seq: Int64
    var data: Data

    enum CodingKeys: String, CodingKey, ColumnExpression { case seq, data }
}
