import Foundation
import GRDB

/// The ledger in SQLite through GRDB: WAL, synchronous FULL, one writer at a time (also
/// across processes: writes start with BEGIN IMMEDIATE and wait on a busy lock), schema
/// by DatabaseMigrator.
public final class SQLiteLedgerStore: LedgerStore, @unchecked Sendable {
    public let path: String
    let pool: DatabasePool

    public init(path: String) throws {
        self.path = path
        var config = Configuration()
        config.busyMode = .timeout(30)
        config.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = FULL")
            // The idempotency index is keyed by hashes, so inserts land on random pages: a
            // 256 MB page cache keeps them in memory on a large ledger.
            try db.execute(sql: "PRAGMA cache_size = -262144")
        }
        pool = try DatabasePool(path: path, configuration: config)
        try Self.migrator.migrate(pool)
    }

    static var migrator: DatabaseMigrator {
        var m = DatabaseMigrator()
        m.registerMigration("v1") { db in
            try db.execute(sql: """
                CREATE TABLE events (seq BIGINT PRIMARY KEY, kind TEXT NOT NULL, payload TEXT NOT NULL, actor TEXT NOT NULL,
                  signature TEXT NOT NULL, prev_hash TEXT NOT NULL, hash TEXT NOT NULL, idem TEXT NOT NULL UNIQUE, at BIGINT NOT NULL)
                """)
            try db.execute(sql: "CREATE TABLE snapshots (seq BIGINT PRIMARY KEY, data BLOB NOT NULL)")
            for t in DerivedTable.allCases { try db.execute(sql: t.createSQL) }
            try db.execute(sql: "CREATE INDEX holdings_owner ON holdings (owner)")
            try db.execute(sql: "CREATE INDEX payout_totals_recipient ON payout_totals (recipient)")
            try db.execute(sql: "CREATE INDEX payouts_event ON payouts (event)")
            try db.execute(sql: "CREATE INDEX claims_round ON claims (round)")
            try db.execute(sql: "CREATE INDEX submissions_round ON submissions (round)")
            for t in DerivedTable.allCases where t.writtenOnce { try db.execute(sql: "CREATE INDEX \(t.rawValue)_seq ON \(t.rawValue) (seq)") }
        }
        return m
    }

    public func read<T>(_ body: (any LedgerReader) throws -> T) throws -> T {
        try pool.read { db in try body(Access(db: db)) }
    }

    public func write<T>(_ body: (any LedgerWriter) throws -> T) throws -> T {
        try pool.write { db in try body(Access(db: db)) }
    }

    struct Access: LedgerWriter {
        let db: Database

        func head() throws -> StoredEvent? {
            try EventRecord.order(EventRecord.CodingKeys.seq.desc).fetchOne(db)?.stored
        }

        func events(after seq: Int64, limit: Int) throws -> [StoredEvent] {
            try EventRecord.filter(EventRecord.CodingKeys.seq > seq).order(EventRecord.CodingKeys.seq).limit(limit).fetchAll(db).map(\.stored)
        }

        func event(idempotencyKey: String) throws -> StoredEvent? {
            // Asked once per appended action: a cached statement, not a query built each time.
            let st = try db.cachedStatement(sql: "SELECT * FROM events WHERE idem = ?")
            return try EventRecord.fetchOne(st, arguments: [idempotencyKey])?.stored
        }

        func eventCount() throws -> Int64 {
            try Int64.fetchOne(db, sql: "SELECT COUNT(*) FROM events") ?? 0
        }

        func rows(_ table: DerivedTable, matching: [(column: String, value: SQLValue)]) throws -> [DerivedRow] {
            let cols = table.keyColumns + table.valueColumns
            let known = Set(cols)
            precondition(matching.allSatisfy { known.contains($0.column) }, "unknown column")
            let whereSQL = matching.isEmpty ? "" : " WHERE " + matching.map { "\($0.column) = ?" }.joined(separator: " AND ")
            let sql = "SELECT \(cols.joined(separator: ", ")) FROM \(table.rawValue)\(whereSQL) ORDER BY \(table.keyColumns.joined(separator: ", "))"
            return try fetchRows(table, sql: sql, arguments: StatementArguments(matching.map { Self.dbValue($0.value) }))
        }

        func rows(_ table: DerivedTable, seqFrom first: Int64, through last: Int64) throws -> [DerivedRow] {
            let cols = table.keyColumns + table.valueColumns
            let sql = "SELECT \(cols.joined(separator: ", ")) FROM \(table.rawValue) WHERE seq >= ? AND seq <= ?"
            return try fetchRows(table, sql: sql, arguments: [first, last])
        }

        private func fetchRows(_ table: DerivedTable, sql: String, arguments: StatementArguments) throws -> [DerivedRow] {
            let cols = table.keyColumns + table.valueColumns
            return try Row.fetchAll(try db.cachedStatement(sql: sql), arguments: arguments).map { r in
                let values = cols.map { c -> SQLValue in
                    let v: DatabaseValue = r[c]
                    switch v.storage {
                    case .null: return .null
                    case let .int64(i): return .int(i)
                    case let .string(s): return .text(s)
                    case let .double(d): return .int(Int64(d))
                    case .blob: return .null
                    }
                }
                return DerivedRow(table: table, key: Array(values.prefix(table.keyColumns.count)), values: Array(values.dropFirst(table.keyColumns.count)))
            }
        }

        static func dbValue(_ v: SQLValue) -> DatabaseValue {
            switch v {
            case let .int(i): return i.databaseValue
            case let .text(s): return s.databaseValue
            case .null: return .null
            }
        }

        func append(_ e: StoredEvent) throws {
            try EventRecord(e).insert(db)
        }

        func upsert(_ rows: [DerivedRow]) throws {
            var onceRows: [DerivedTable: [DerivedRow]] = [:]
            for row in rows {
                if row.table.writtenOnce {
                    onceRows[row.table, default: []].append(row)
                } else {
                    try db.cachedStatement(sql: row.table.upsertSQL).execute(arguments: StatementArguments((row.key + row.values).map(Self.dbValue)))
                }
            }
            // Rows written once (a revenue event's payouts, say) go in as multi-row inserts:
            // one statement per 64 rows instead of one per row.
            for (table, list) in onceRows.sorted(by: { $0.key.rawValue < $1.key.rawValue }) {
                var i = 0
                while i < list.count {
                    let chunk = list[i..<min(list.count, i + 64)]
                    var args: [DatabaseValue] = []
                    args.reserveCapacity(chunk.count * (table.keyColumns.count + table.valueColumns.count))
                    for row in chunk { args += (row.key + row.values).map(Self.dbValue) }
                    try db.cachedStatement(sql: table.insertSQL(rows: chunk.count)).execute(arguments: StatementArguments(args))
                    i += 64
                }
            }
        }

        func snapshot(atOrBefore seq: Int64) throws -> (seq: Int64, data: Data)? {
            try SnapshotRecord.filter(SnapshotRecord.CodingKeys.seq <= seq).order(SnapshotRecord.CodingKeys.seq.desc).fetchOne(db)
                .map { ($0.seq, $0.data) }
        }

        func saveSnapshot(seq: Int64, data: Data) throws {
            try SnapshotRecord(seq: seq, data: data).insert(db, onConflict: .replace)
            try SnapshotRecord.filter(SnapshotRecord.CodingKeys.seq < seq).deleteAll(db)
        }
    }
}
