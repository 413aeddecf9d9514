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

    struct Columns {
        let st: OpaquePointer
        func int(_ i: Int32) -> Int64 { sqlite3_column_int64(st, i) }
        /// The column as text; a NULL reads as "" (and then fails the checks that read it).
        func text(_ i: Int32) -> String {
            guard let p = sqlite3_column_text(st, i) else { return "" }
            return String(decoding: UnsafeBufferPointer(start: p, count: Int(sqlite3_column_bytes(st, i))), as: UTF8.self)
        }
        func value(_ i: Int32) -> SQLValue {
            switch sqlite3_column_type(st, i) {
            case SQLITE_INTEGER: return .int(int(i))
            case SQLITE_TEXT: return .text(text(i))
            case SQLITE_FLOAT: return .int(Int64(sqlite3_column_double(st, i)))
            default: return .null
            }
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
