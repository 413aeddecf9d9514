import Foundation
import GRDB
import TesseraCore

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
            // Checkpoints copy the write-ahead log into the database file; at every 1,000
            // pages (the default) a page rewritten by many batches is copied each time.
            try db.execute(sql: "PRAGMA wal_autocheckpoint = 16384")
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
        // Fewer B-trees per row written: the event number becomes the events table's rowid,
        // derived tables are stored in their primary key (WITHOUT ROWID), and indexes that
        // repeat a primary key's leading columns are dropped. Existing rows are copied.
        m.registerMigration("v2: rowid and primary-key tables") { db in
            try db.execute(sql: """
                CREATE TABLE events_v2 (seq INTEGER PRIMARY KEY, kind TEXT NOT NULL, payload TEXT NOT NULL, actor TEXT NOT NULL,
                  signature TEXT NOT NULL, prev_hash TEXT NOT NULL, hash TEXT NOT NULL, idem TEXT NOT NULL UNIQUE, at BIGINT NOT NULL)
                """)
            try db.execute(sql: "INSERT INTO events_v2 SELECT seq, kind, payload, actor, signature, prev_hash, hash, idem, at FROM events")
            try db.execute(sql: "DROP TABLE events")
            try db.execute(sql: "ALTER TABLE events_v2 RENAME TO events")
            for t in DerivedTable.allCases {
                let cols = (t.keyColumns + t.valueColumns).joined(separator: ", ")
                try db.execute(sql: t.createSQL.replacingOccurrences(of: "CREATE TABLE \(t.rawValue) (", with: "CREATE TABLE \(t.rawValue)_v2 (") + " WITHOUT ROWID")
                try db.execute(sql: "INSERT INTO \(t.rawValue)_v2 (\(cols)) SELECT \(cols) FROM \(t.rawValue)")
                try db.execute(sql: "DROP TABLE \(t.rawValue)")
                try db.execute(sql: "ALTER TABLE \(t.rawValue)_v2 RENAME TO \(t.rawValue)")
            }
            try db.execute(sql: "CREATE INDEX holdings_owner ON holdings (owner)")
            try db.execute(sql: "CREATE INDEX claims_round ON claims (round)")
            try db.execute(sql: "CREATE INDEX submissions_round ON submissions (round)")
            for t in DerivedTable.allCases where t.writtenOnce && t.eventColumn == "seq" {
                try db.execute(sql: "CREATE INDEX \(t.rawValue)_seq ON \(t.rawValue) (seq)")
            }
        }
        return m
    }

    public func read<T>(_ body: (any LedgerReader) throws -> T) throws -> T {
        try pool.read { db in try body(Access(db: db)) }
    }

    public func write<T>(_ body: (any LedgerWriter) throws -> T) throws -> T {
        let result = try pool.write { db in
            let r = try body(Access(db: db))
            CrashPoint.reach("ledger.commit")
            return r
        }
        CrashPoint.reach("ledger.committed")
        return result
    }

    /// Inserts events into the `events` table of any database through the ledger's own
    /// insert path (a cached statement bound through SQLite's C interface): the raw
    /// baseline `ledger bench` compares appends with.
    public static func insertEvents<S: Sequence>(_ events: S, into db: Database) throws where S.Element == StoredEvent {
        let w = Access(db: db)
        for e in events { try w.append(e) }
    }

    struct Access: LedgerWriter {
        let db: Database

        func head() throws -> StoredEvent? {
            try EventRecord.order(EventRecord.CodingKeys.seq.desc).fetchOne(db)?.stored
        }

        func events(after seq: Int64, limit: Int) throws -> [StoredEvent] {
            // Pages of events are verify's and catch-up's bulk read: through the C interface.
            try SQLiteStatements(db: db).query("SELECT seq, kind, payload, actor, signature, prev_hash, hash, idem, at FROM events WHERE seq > ? ORDER BY seq LIMIT ?",
                                               [.int(seq), .int(Int64(clamping: limit))]) { c in
                try StoredEvent(seq: c.int(0), kind: c.text(1), payload: c.text(2), actor: c.text(3), signature: c.text(4),
                                prevHash: c.text(5), hash: c.text(6), idempotencyKey: c.text(7), at: c.int(8))
            }
        }

        func event(idempotencyKey: String) throws -> StoredEvent? {
            // Asked once per appended action and almost always absent: answered through the
            // C interface without building a record.
            guard let seq = try SQLiteStatements(db: db).query("SELECT seq FROM events WHERE idem = ?", [.text(idempotencyKey)], row: { try $0.int(0) }).first else {
                return nil
            }
            return try EventRecord.filter(EventRecord.CodingKeys.seq == seq).fetchOne(db)?.stored
        }

        func eventCount() throws -> Int64 {
            try Int64.fetchOne(db, sql: "SELECT COUNT(*) FROM events") ?? 0
        }

        func rows(_ table: DerivedTable, matching: [(column: String, value: SQLValue)]) throws -> [DerivedRow] {
            try fetchRows(table, sql: try table.selectSQL(matching: matching.map(\.column)), arguments: matching.map(\.value))
        }

        func rows(_ table: DerivedTable, seqFrom first: Int64, through last: Int64) throws -> [DerivedRow] {
            try fetchRows(table, sql: table.rangeSQL, arguments: [.int(first), .int(last)])
        }

        private func fetchRows(_ table: DerivedTable, sql: String, arguments: [SQLValue]) throws -> [DerivedRow] {
            // By position: the SELECT lists the key columns, then the value columns.
            let keyCount = Int32(table.keyColumns.count), count = keyCount + Int32(table.valueColumns.count)
            return try SQLiteStatements(db: db).query(sql, arguments) { c in
                DerivedRow(table: table, key: try (0..<keyCount).map(c.value), values: try (keyCount..<count).map(c.value))
            }
        }

        // Built once: the statement cache is keyed by the SQL text.
        static let upsertSQL = Dictionary(uniqueKeysWithValues: DerivedTable.allCases.map { ($0, $0.upsertSQL) })
        static let insertSQL = Dictionary(uniqueKeysWithValues: DerivedTable.allCases.map { t in (t, (0...64).map { t.insertSQL(rows: max($0, 1)) }) })


        func append(_ e: StoredEvent) throws {
            try SQLiteStatements(db: db).run(Self.insertEventSQL,
                    [.int(e.seq), .text(e.kind), .text(e.payload), .text(e.actor), .text(e.signature), .text(e.prevHash), .text(e.hash), .text(e.idempotencyKey), .int(e.at)])
        }

        static let insertEventSQL = "INSERT INTO events (seq, kind, payload, actor, signature, prev_hash, hash, idem, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"

        func upsert(_ rows: [DerivedRow]) throws {
            let sql = SQLiteStatements(db: db)
            var onceRows: [DerivedTable: [DerivedRow]] = [:]
            for row in rows {
                if row.table.writtenOnce {
                    onceRows[row.table, default: []].append(row)
                } else {
                    try sql.run(Self.upsertSQL[row.table]!, row.key + row.values)
                }
            }
            // Rows written once (a revenue event's payouts, say) go in as multi-row inserts:
            // one statement per 64 rows instead of one per row.
            for (table, list) in onceRows.sorted(by: { $0.key.rawValue < $1.key.rawValue }) {
                var i = 0
                while i < list.count {
                    let chunk = list[i..<min(list.count, i + 64)]
                    var args: [SQLValue] = []
                    args.reserveCapacity(chunk.count * (table.keyColumns.count + table.valueColumns.count))
                    for row in chunk { args += row.key; args += row.values }
                    try sql.run(Self.insertSQL[table]![chunk.count], args)
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
