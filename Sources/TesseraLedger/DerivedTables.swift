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

    public var upsertSQL: String {
        let cols = keyColumns + valueColumns
        let updates = valueColumns.map { "\($0) = excluded.\($0)" }.joined(separator: ", ")
        return "INSERT INTO \(rawValue) (\(cols.joined(separator: ", "))) VALUES (\(cols.map { _ in "?" }.joined(separator: ", "))) ON CONFLICT (\(keyColumns.joined(separator: ", "))) DO UPDATE SET \(updates)"
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
