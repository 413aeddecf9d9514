import Foundation
import Logging
import NIOCore
import PostgresNIO
import TesseraLedger

/// One transaction's statements on one connection. Every statement is a round trip (and a
/// plan) on the server, so writes are gathered: events and written-once rows go in as
/// multi-row INSERTs, and upserts of the same row keep only the last (an upsert is
/// last-writer-wins, so the outcome is the same). Gathered writes are sent before any read
/// that could see them; the idempotency lookup consults them first, so an action appended
/// earlier in the same transaction is found.
final class Access: LedgerWriter {
    let conn: PostgresConnection
    let url: PostgresURL
    private var pending: [EventLoopFuture<PostgresQueryResult>] = []
    private var events: [StoredEvent] = []
    private var eventsByIdem: [String: StoredEvent] = [:]
    private var upserts: [DerivedTable: [[SQLValue]: DerivedRow]] = [:]
    private var onceRows: [DerivedTable: [DerivedRow]] = [:]

    init(conn: PostgresConnection, url: PostgresURL) {
        self.conn = conn
        self.url = url
    }

    // MARK: statements

    func rows(_ sql: String, _ values: [SQLValue] = []) throws -> [PostgresRow] {
        sendGathered()
        do {
            return try conn.query(Self.query(sql, values), logger: PostgresConnections.logger).wait().rows
        } catch {
            // A write sent earlier may have failed first and aborted the transaction: report that one.
            try flush()
            throw fail(error, sql)
        }
    }

    func run(_ sql: String, _ values: [SQLValue] = []) throws { _ = try rows(sql, values) }

    func send(_ sql: String, _ values: [SQLValue]) {
        pending.append(conn.query(Self.query(sql, values), logger: PostgresConnections.logger))
    }

    func flush() throws {
        sendGathered()
        let sent = pending
        pending.removeAll()
        var first: (any Error)?
        for f in sent {
            do { _ = try f.wait() } catch { if first == nil { first = error } }
        }
        if let first { throw fail(first, nil) }
    }

    /// After a failure: the transaction is rolled back (or the connection is gone, and
    /// with it the transaction).
    func abandon() {
        (events, eventsByIdem, upserts, onceRows) = ([], [:], [:], [:])
        for f in pending { _ = try? f.wait() }
        pending.removeAll()
        if !conn.isClosed { _ = try? conn.query("ROLLBACK", logger: PostgresConnections.logger).wait() }
    }

    private func fail(_ error: any Error, _ sql: String?) -> any Error {
        if error is LedgerError { return error }
        return LedgerError.refused("PostgreSQL \(url): \(PostgresFailure.describe(error))" + (sql.map { " in: \($0.prefix(80))" } ?? ""))
    }

    /// The store's portable SQL uses `?` placeholders (SQLite's); PostgreSQL numbers them.
    static func query(_ sql: String, _ values: [SQLValue]) -> PostgresQuery {
        var text = ""
        text.reserveCapacity(sql.utf8.count + values.count * 2)
        var n = 0
        for ch in sql {
            if ch == "?" { n += 1; text += "$\(n)" } else { text.append(ch) }
        }
        var binds = PostgresBindings(capacity: values.count)
        for v in values {
            switch v {
            case let .int(i): binds.append(i)
            case let .text(s): binds.append(s)
            case .null: binds.appendNull()
            }
        }
        return PostgresQuery(unsafeSQL: text, binds: binds)
    }

    // MARK: LedgerReader

    static let eventColumns = "seq, kind, payload, actor, signature, prev_hash, hash, idem, at"

    static func event(_ row: PostgresRow) throws -> StoredEvent {
        let c = row.makeRandomAccess()
        return StoredEvent(seq: try c[0].decode(Int64.self), kind: try c[1].decode(String.self), payload: try c[2].decode(String.self),
                           actor: try c[3].decode(String.self), signature: try c[4].decode(String.self), prevHash: try c[5].decode(String.self),
                           hash: try c[6].decode(String.self), idempotencyKey: try c[7].decode(String.self), at: try c[8].decode(Int64.self))
    }

    func head() throws -> StoredEvent? {
        try rows("SELECT \(Self.eventColumns) FROM events ORDER BY seq DESC LIMIT 1").first.map(Self.event)
    }

    func events(after seq: Int64, limit: Int) throws -> [StoredEvent] {
        try rows("SELECT \(Self.eventColumns) FROM events WHERE seq > ? ORDER BY seq LIMIT ?", [.int(seq), .int(Int64(clamping: limit))]).map(Self.event)
    }

    func event(idempotencyKey: String) throws -> StoredEvent? {
        if let e = eventsByIdem[idempotencyKey] { return e }
        // Committed events only: those gathered here were checked just above.
        do {
            return try conn.query(Self.query("SELECT \(Self.eventColumns) FROM events WHERE idem = ?", [.text(idempotencyKey)]),
                                  logger: PostgresConnections.logger).wait().rows.first.map(Self.event)
        } catch {
            try flush()
            throw fail(error, "idempotency lookup")
        }
    }

    func eventNumbers(idempotencyKeys keys: [String]) throws -> [String: Int64] {
        var out: [String: Int64] = [:]
        for k in keys { if let e = eventsByIdem[k] { out[k] = e.seq } }
        let unknown = keys.filter { out[$0] == nil }
        var i = 0
        while i < unknown.count {
            let chunk = Array(unknown[i..<min(unknown.count, i + 10_000)])
            // Committed events only: those gathered here were found above.
            let q = Self.query("SELECT idem, seq FROM events WHERE idem IN (" + Array(repeating: "?", count: chunk.count).joined(separator: ", ") + ")",
                               chunk.map(SQLValue.text))
            do {
                for row in try conn.query(q, logger: PostgresConnections.logger).wait().rows {
                    let c = row.makeRandomAccess()
                    out[try c[0].decode(String.self)] = try c[1].decode(Int64.self)
                }
            } catch {
                try flush()
                throw fail(error, "idempotency lookup")
            }
            i += chunk.count
        }
        return out
    }

    func eventCount() throws -> Int64 {
        try rows("SELECT COUNT(*) FROM events").first.map { try $0.makeRandomAccess()[0].decode(Int64.self) } ?? 0
    }

    func rows(_ table: DerivedTable, matching: [(column: String, value: SQLValue)]) throws -> [DerivedRow] {
        try derived(table, try table.selectSQL(matching: matching.map(\.column)), matching.map(\.value))
    }

    func rows(_ table: DerivedTable, seqFrom first: Int64, through last: Int64) throws -> [DerivedRow] {
        try derived(table, table.rangeSQL, [.int(first), .int(last)])
    }

    func rows(_ table: DerivedTable, keys: [[SQLValue]]) throws -> [DerivedRow] {
        let cols = table.keyColumns + table.valueColumns
        let width = table.keyColumns.count
        var out: [DerivedRow] = []
        var i = 0
        while i < keys.count {
            let chunk = keys[i..<min(keys.count, i + Self.maxParameters / width)]
            let sql = "SELECT \(cols.joined(separator: ", ")) FROM \(table.rawValue) WHERE (\(table.keyColumns.joined(separator: ", "))) IN "
                + "(" + Self.tuples(rows: chunk.count, columns: width) + ")"
            out += try derived(table, sql, chunk.flatMap { $0 })
            i += chunk.count
        }
        return out
    }

    private func derived(_ table: DerivedTable, _ sql: String, _ values: [SQLValue]) throws -> [DerivedRow] {
        let cols = table.keyColumns + table.valueColumns
        let integer = cols.map { table.integerColumns.contains($0) }
        let keyCount = table.keyColumns.count
        return try rows(sql, values).map { row in
            let c = row.makeRandomAccess()
            var all: [SQLValue] = []
            all.reserveCapacity(cols.count)
            for i in cols.indices {
                if integer[i] {
                    all.append(try c[i].decode(Int64?.self).map(SQLValue.int) ?? .null)
                } else {
                    all.append(try c[i].decode(String?.self).map(SQLValue.text) ?? .null)
                }
            }
            return DerivedRow(table: table, key: Array(all[..<keyCount]), values: Array(all[keyCount...]))
        }
    }

    func snapshot(atOrBefore seq: Int64) throws -> (seq: Int64, data: Data)? {
        guard let row = try rows("SELECT seq, data FROM snapshots WHERE seq <= ? ORDER BY seq DESC LIMIT 1", [.int(seq)]).first else { return nil }
        let c = row.makeRandomAccess()
        let buffer = try c[1].decode(ByteBuffer.self)
        return (try c[0].decode(Int64.self), Data(buffer.readableBytesView))
    }

    // MARK: LedgerWriter

    func append(_ e: StoredEvent) throws {
        events.append(e)
        eventsByIdem[e.idempotencyKey] = e
    }

    func upsert(_ rows: [DerivedRow]) throws {
        for row in rows {
            if row.table.writtenOnce {
                onceRows[row.table, default: []].append(row)
            } else {
                upserts[row.table, default: [:]][row.key] = row
            }
        }
    }

    /// PostgreSQL takes at most 65,535 parameters in a statement.
    static let maxParameters = 60_000

    /// Sends the gathered writes, events first (in order), as multi-row statements.
    private func sendGathered() {
        if !events.isEmpty {
            let perRow = 9
            var i = 0
            while i < events.count {
                let chunk = events[i..<min(events.count, i + Self.maxParameters / perRow)]
                var args: [SQLValue] = []
                args.reserveCapacity(chunk.count * perRow)
                for e in chunk {
                    args += [.int(e.seq), .text(e.kind), .text(e.payload), .text(e.actor), .text(e.signature), .text(e.prevHash), .text(e.hash),
                             .text(e.idempotencyKey), .int(e.at)]
                }
                send("INSERT INTO events (\(Self.eventColumns)) VALUES " + Self.tuples(rows: chunk.count, columns: perRow), args)
                i += chunk.count
            }
            events.removeAll(keepingCapacity: true)
            eventsByIdem.removeAll(keepingCapacity: true)
        }
        for (table, byKey) in upserts.sorted(by: { $0.key.rawValue < $1.key.rawValue }) {
            send(table, Array(byKey.values), upsert: true)
        }
        upserts.removeAll(keepingCapacity: true)
        for (table, list) in onceRows.sorted(by: { $0.key.rawValue < $1.key.rawValue }) {
            send(table, list, upsert: false)
        }
        onceRows.removeAll(keepingCapacity: true)
    }

    private func send(_ table: DerivedTable, _ rows: [DerivedRow], upsert: Bool) {
        let width = table.keyColumns.count + table.valueColumns.count
        var i = 0
        while i < rows.count {
            let chunk = rows[i..<min(rows.count, i + Self.maxParameters / width)]
            var args: [SQLValue] = []
            args.reserveCapacity(chunk.count * width)
            for row in chunk { args += row.key; args += row.values }
            send(upsert ? table.upsertSQL(rows: chunk.count) : table.insertSQL(rows: chunk.count), args)
            i += chunk.count
        }
    }

    static func tuples(rows: Int, columns: Int) -> String {
        let one = "(" + Array(repeating: "?", count: columns).joined(separator: ", ") + ")"
        return Array(repeating: one, count: rows).joined(separator: ", ")
    }

    func saveSnapshot(seq: Int64, data: Data) throws {
        sendGathered()
        var binds = PostgresBindings()
        binds.append(seq)
        binds.append(ByteBuffer(bytes: data))
        pending.append(conn.query(PostgresQuery(unsafeSQL: "INSERT INTO snapshots (seq, data) VALUES ($1, $2) ON CONFLICT (seq) DO UPDATE SET data = excluded.data",
                                                binds: binds), logger: PostgresConnections.logger))
        send("DELETE FROM snapshots WHERE seq < ?", [.int(seq)])
    }
}
