import Foundation
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import PostgresNIO
import TesseraCore
import TesseraLedger

/// The ledger in PostgreSQL. The rules, the hash chain, `verify` and the queries are the
/// same code as for SQLite; only the rows' home differs.
///
/// Appends are serialized by a transaction-level advisory lock taken first in every write
/// transaction (`pg_advisory_xact_lock`): the ledger is a hash chain, so two writers can
/// never append concurrently anyway, and a lock that waits is cheaper and more predictable
/// than SERIALIZABLE transactions that fail and are retried under contention. Inside the
/// lock the ledger catches up with what other servers appended, so several `tessera serve`
/// processes on one database are one market.
///
/// The `LedgerStore` protocol is synchronous (the rules run inside the transaction), so
/// each statement waits for its answer; the writes of a transaction are sent without
/// waiting and their answers collected at the commit, which keeps an append to about one
/// round trip (the idempotency lookup) plus the commit's.
public final class PostgresLedgerStore: LedgerStore, @unchecked Sendable {
    public static let schemaVersion: Int64 = 1
    /// The advisory lock every write transaction holds ("tessera" in ASCII).
    static let writeLock: Int64 = 0x7465_7373_6572_61
    public let url: PostgresURL
    let pool: PostgresConnections

    public init(url: PostgresURL, maxConnections: Int = 8) throws {
        self.url = url
        pool = PostgresConnections(url: url, max: maxConnections)
        try migrate()
    }

    public convenience init(url text: String) throws { try self.init(url: try PostgresURL(text)) }

    public func close() { pool.closeAll() }
    deinit { pool.closeAll() }

    public func read<T>(_ body: (any LedgerReader) throws -> T) throws -> T {
        try pool.with { conn in
            let a = Access(conn: conn, url: url)
            // One snapshot for the whole body: a query that reads several tables sees one
            // ledger even while other servers append.
            try a.run("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            do {
                let r = try body(a)
                try a.run("COMMIT")
                return r
            } catch {
                a.abandon()
                throw error
            }
        }
    }

    public func write<T>(_ body: (any LedgerWriter) throws -> T) throws -> T {
        let result: T = try pool.with { conn in
            let a = Access(conn: conn, url: url)
            try a.run("BEGIN")
            do {
                try a.run("SELECT pg_advisory_xact_lock($1)", [.int(Self.writeLock)])
                let r = try body(a)
                try a.flush()
                CrashPoint.reach("ledger.commit")
                try a.run("COMMIT")
                return r
            } catch {
                a.abandon()
                throw error
            }
        }
        CrashPoint.reach("ledger.committed")
        return result
    }

    /// Creates the schema in an empty database, or checks the one it finds.
    func migrate() throws {
        try pool.with { conn in
            let a = Access(conn: conn, url: url)
            try a.run("BEGIN")
            do {
                try a.run("SELECT pg_advisory_xact_lock($1)", [.int(Self.writeLock)])
                try a.run("CREATE TABLE IF NOT EXISTS tessera_schema (version BIGINT NOT NULL)")
                let found = try a.rows("SELECT version FROM tessera_schema").map { try $0.makeRandomAccess()[0].decode(Int64.self) }
                if let v = found.max() {
                    guard v <= Self.schemaVersion else {
                        throw LedgerError.refused("\(url): the ledger's schema is version \(v); this tessera knows versions up to \(Self.schemaVersion) (upgrade tessera)")
                    }
                } else {
                    // Names are the schema's own constants, not input.
                    let ours = (["events", "snapshots"] + DerivedTable.allCases.map(\.rawValue)).map { "'\($0)'" }.joined(separator: ", ")
                    let others = try a.rows("SELECT table_name::text FROM information_schema.tables WHERE table_schema = current_schema() AND table_name IN (\(ours))")
                    guard others.isEmpty else {
                        let names = try others.map { try $0.makeRandomAccess()[0].decode(String.self) }.sorted()
                        throw LedgerError.refused("\(url) holds tables (\(names.joined(separator: ", "))) that are not a Tessera ledger's; use an empty database")
                    }
                    for sql in Self.schema { try a.run(sql) }
                    try a.run("INSERT INTO tessera_schema (version) VALUES ($1)", [.int(Self.schemaVersion)])
                }
                try a.flush()
                try a.run("COMMIT")
            } catch {
                a.abandon()
                throw error
            }
        }
    }

    static var schema: [String] {
        var s = [
            """
            CREATE TABLE events (seq BIGINT PRIMARY KEY, kind TEXT NOT NULL, payload TEXT NOT NULL, actor TEXT NOT NULL,
              signature TEXT NOT NULL, prev_hash TEXT NOT NULL, hash TEXT NOT NULL, idem TEXT NOT NULL UNIQUE, at BIGINT NOT NULL)
            """,
            "CREATE TABLE snapshots (seq BIGINT PRIMARY KEY, data BYTEA NOT NULL)",
        ]
        s += DerivedTable.allCases.map(\.createSQL)
        s += ["CREATE INDEX holdings_owner ON holdings (owner)", "CREATE INDEX claims_round ON claims (round)",
              "CREATE INDEX submissions_round ON submissions (round)"]
        s += DerivedTable.allCases.filter { $0.writtenOnce && $0.eventColumn == "seq" }.map { "CREATE INDEX \($0.rawValue)_seq ON \($0.rawValue) (seq)" }
        return s
    }
}

extension PostgresLedgerStore {
    /// The database's size on disk (`pg_database_size`), for the benchmarks.
    public func databaseBytes() throws -> Int64 {
        try pool.with { conn in
            do {
                return try conn.query("SELECT pg_database_size(current_database())", logger: PostgresConnections.logger).wait().rows.first
                    .map { try $0.makeRandomAccess()[0].decode(Int64.self) } ?? 0
            } catch {
                throw LedgerError.refused("PostgreSQL \(url): \(PostgresFailure.describe(error))")
            }
        }
    }

    /// One statement outside the ledger's transactions, on a connection of its own (tests
    /// tamper with rows this way, as an intruder with database access would): the number
    /// of rows it changed.
    @discardableResult
    func execute(_ sql: String) throws -> Int {
        try pool.with { conn in
            do {
                return try conn.query(PostgresQuery(unsafeSQL: sql), logger: PostgresConnections.logger).wait().metadata.rows ?? 0
            } catch {
                throw LedgerError.refused("PostgreSQL \(url): \(PostgresFailure.describe(error))")
            }
        }
    }

    /// Runs statements on a database without touching its schema (creating and dropping
    /// databases, say).
    public static func administer(_ url: PostgresURL, _ statements: [String]) throws {
        let pool = PostgresConnections(url: url, max: 1)
        defer { pool.closeAll() }
        try pool.with { conn in
            for sql in statements {
                do {
                    _ = try conn.query(PostgresQuery(unsafeSQL: sql), logger: PostgresConnections.logger).wait()
                } catch {
                    throw LedgerError.refused("PostgreSQL \(url): \(PostgresFailure.describe(error)) in: \(sql.prefix(80))")
                }
            }
        }
    }
}
