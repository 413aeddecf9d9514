import GRDB
import GRDBSQLite

/// Cached GRDB statements bound, stepped and read through SQLite's C interface. The
/// ledger's hot paths (appending events and their rows, reading pages of events and
/// derived rows in verify) spent more time in GRDB's generic argument and record
/// conversions than in SQLite itself.
struct SQLiteStatements {
    let db: Database

    /// Runs a statement that returns no rows.
    func run(_ sql: String, _ values: [SQLValue]) throws {
        let statement = try db.cachedStatement(sql: sql)
        let st = try bind(statement, values)
        defer { sqlite3_reset(st); sqlite3_clear_bindings(st) }
        let rc = sqlite3_step(st)
        guard rc == SQLITE_DONE else { throw error(rc, statement) }
    }

    /// Runs a query, reading each row with `row` (columns by position).
    func query<T>(_ sql: String, _ values: [SQLValue], row: (Columns) throws -> T) throws -> [T] {
        let statement = try db.cachedStatement(sql: sql)
        let st = try bind(statement, values)
        defer { sqlite3_reset(st); sqlite3_clear_bindings(st) }
        var out: [T] = []
        while true {
            let rc = sqlite3_step(st)
            if rc == SQLITE_DONE { return out }
            guard rc == SQLITE_ROW else { throw error(rc, statement) }
            out.append(try row(Columns(st: st)))
        }
    }

    /// Columns read by position, each checked for the type the schema gives it: a ledger
    /// database edited by hand (a REAL or a NULL where an integer belongs) is reported as
    /// corrupt, never converted.
    struct Columns {
        let st: OpaquePointer
        func int(_ i: Int32) throws -> Int64 {
            try expect(i, SQLITE_INTEGER, "an integer")
            return sqlite3_column_int64(st, i)
        }
        func text(_ i: Int32) throws -> String {
            try expect(i, SQLITE_TEXT, "text")
            guard let p = sqlite3_column_text(st, i) else { return "" }
            return String(decoding: UnsafeBufferPointer(start: p, count: Int(sqlite3_column_bytes(st, i))), as: UTF8.self)
        }
        /// An integer, text or NULL (the derived tables' optional columns).
        func value(_ i: Int32) throws -> SQLValue {
            switch sqlite3_column_type(st, i) {
            case SQLITE_INTEGER: return .int(sqlite3_column_int64(st, i))
            case SQLITE_TEXT: return .text(try text(i))
            case SQLITE_NULL: return .null
            default: throw mismatch(i, "an integer, text or NULL")
            }
        }
        private func expect(_ i: Int32, _ type: Int32, _ what: String) throws {
            guard sqlite3_column_type(st, i) == type else { throw mismatch(i, what) }
        }
        private func mismatch(_ i: Int32, _ what: String) -> LedgerError {
            let names = [SQLITE_INTEGER: "an integer", SQLITE_FLOAT: "a real number", SQLITE_TEXT: "text", SQLITE_BLOB: "a blob", SQLITE_NULL: "NULL"]
            let column = sqlite3_column_name(st, i).map { String(cString: $0) } ?? "#\(i)"
            return .corrupt("ledger database: column \(column) holds \(names[sqlite3_column_type(st, i)] ?? "an unknown type") where \(what) belongs")
        }
    }

    private func bind(_ statement: Statement, _ values: [SQLValue]) throws -> OpaquePointer {
        let st = statement.sqliteStatement
        sqlite3_reset(st)
        let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)
        for (i, v) in values.enumerated() {
            let at = Int32(i + 1)
            let rc: Int32
            switch v {
            case let .int(x): rc = sqlite3_bind_int64(st, at, x)
            case let .text(x): rc = x.withCString { sqlite3_bind_text(st, at, $0, -1, transient) }
            case .null: rc = sqlite3_bind_null(st, at)
            }
            guard rc == SQLITE_OK else { throw error(rc, statement) }
        }
        return st
    }

    private func error(_ rc: Int32, _ statement: Statement) -> DatabaseError {
        DatabaseError(resultCode: ResultCode(rawValue: rc), message: String(cString: sqlite3_errmsg(db.sqliteConnection)), sql: statement.sql)
    }
}
