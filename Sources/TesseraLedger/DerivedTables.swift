/// The tables derived from the events: a cache that `ledger verify` recomputes. Each row
/// records the sequence number of the event that last wrote it.
public enum SQLValue: Hashable, Sendable, CustomStringConvertible {
    case int(Int64)
    case text(String)
    case null
    public var description: String {
        switch self {
        case let .int(i): return String(i)
        case let .text(s): return s
        case .null: return "null"
        }
    }
}

public enum DerivedTable: String, CaseIterable, Sendable {
    case participants, domains, rounds, claims, submissions, verdicts, versions, holdings
    case expertTotals = "expert_totals"
    case payouts
    case payoutTotals = "payout_totals"
    case revenue

    public var keyColumns: [String] {
        switch self {
        case .participants: return ["key"]
        case .domains: return ["name"]
        case .rounds: return ["id"]
        case .claims: return ["claim"]
        case .submissions: return ["bundle"]
        case .verdicts: return ["submission", "validator"]
        case .versions: return ["hash"]
        case .holdings: return ["layer", "expert", "owner"]
        case .expertTotals: return ["layer", "expert"]
        case .payouts: return ["event", "recipient", "kind", "layer", "expert"]
        case .payoutTotals: return ["recipient", "layer", "expert"]
        case .revenue: return ["domain", "period"]
        }
    }

    /// Value columns; every table ends with `seq`.
    public var valueColumns: [String] {
        switch self {
        case .participants: return ["roles", "stake", "seq"]
        case .domains: return ["seq"]
        case .rounds: return ["domain", "experts", "closes_at", "state", "seq"]
        case .claims: return ["participant", "round", "experts", "expires_at", "seq"]
        case .submissions: return ["contributor", "round", "experts", "state", "consensus_gain", "seq"]
        case .verdicts: return ["gain", "regression", "accept", "reason", "seq"]
        case .versions: return ["layer", "expert", "parent", "submissions", "seq"]
        case .holdings: return ["units", "seq"]
        case .expertTotals: return ["units", "version", "revenue", "seq"]
        case .payouts: return ["amount", "seq"]
        case .payoutTotals: return ["amount", "seq"]
        case .revenue: return ["amount", "event", "seq"]
        }
    }

    /// Tables whose rows are written by one event and never changed (payouts of a revenue
    /// event, a claim, a verdict, a revenue record): `verify` checks them page by page
    /// instead of holding them all, since they grow with the ledger.
    public var writtenOnce: Bool {
        switch self {
        case .payouts, .claims, .verdicts, .revenue: return true
        default: return false
        }
    }

    /// The indexed column holding the number of the event that wrote a row-written-once
    /// table's rows: a claim's and a payout's key already is that number, so those tables
    /// need no second index on `seq` (their `seq` column repeats it, and verify checks it).
    public var eventColumn: String {
        switch self {
        case .payouts: return "event"
        case .claims: return "claim"
        default: return "seq"
        }
    }

    /// Columns holding integers (everything else is text).
    public var integerColumns: Set<String> {
        ["stake", "seq", "closes_at", "claim", "expires_at", "consensus_gain", "gain", "regression", "accept", "layer", "expert",
         "units", "revenue", "event", "amount"]
    }

    /// Portable SQL (SQLite and PostgreSQL) creating the table.
    public var createSQL: String {
        let cols = (keyColumns + valueColumns).map { "\($0) \(integerColumns.contains($0) ? "BIGINT" : "TEXT")" + (($0 == "consensus_gain" || $0 == "parent") ? "" : " NOT NULL") }
        return "CREATE TABLE \(rawValue) (\(cols.joined(separator: ", ")), PRIMARY KEY (\(keyColumns.joined(separator: ", "))))"
    }

    /// Portable multi-row INSERT for rows that are written once.
    public func insertSQL(rows: Int) -> String {
        let cols = keyColumns + valueColumns
        let tuple = "(" + cols.map { _ in "?" }.joined(separator: ", ") + ")"
        return "INSERT INTO \(rawValue) (\(cols.joined(separator: ", "))) VALUES " + Array(repeating: tuple, count: rows).joined(separator: ", ")
    }

    /// Portable SELECT of the rows whose `columns` equal given values (keys, then values,
    /// in key order). Column names are checked: they are spliced into the SQL.
    public func selectSQL(matching columns: [String]) throws -> String {
        let cols = keyColumns + valueColumns
        let known = Set(cols)
        for c in columns where !known.contains(c) { throw LedgerError.corrupt("no column \(c) in \(rawValue)") }
        let whereSQL = columns.isEmpty ? "" : " WHERE " + columns.map { "\($0) = ?" }.joined(separator: " AND ")
        return "SELECT \(cols.joined(separator: ", ")) FROM \(rawValue)\(whereSQL) ORDER BY \(keyColumns.joined(separator: ", "))"
    }

    /// Portable SELECT of the rows written by events first...last.
    public var rangeSQL: String {
        "SELECT \((keyColumns + valueColumns).joined(separator: ", ")) FROM \(rawValue) WHERE \(eventColumn) >= ? AND \(eventColumn) <= ?"
    }

    public var upsertSQL: String { upsertSQL(rows: 1) }

    /// Portable multi-row upsert (the rows' keys must differ: a statement cannot update one
    /// row twice).
    public func upsertSQL(rows: Int) -> String {
        let updates = valueColumns.map { "\($0) = excluded.\($0)" }.joined(separator: ", ")
        return insertSQL(rows: rows) + " ON CONFLICT (\(keyColumns.joined(separator: ", "))) DO UPDATE SET \(updates)"
    }
}

public struct DerivedRow: Hashable, Sendable {
    public var table: DerivedTable
    public var key: [SQLValue]
    public var values: [SQLValue]
    public init(table: DerivedTable, key: [SQLValue], values: [SQLValue]) {
        (self.table, self.key, self.values) = (table, key, values)
    }
    public var seq: Int64 { if case let .int(s) = values.last { return s }; return 0 }
}
