import Foundation
import GRDB
import Testing
@testable import TesseraLedger
@testable import TesseraLedgerPostgres
import TesseraCore
import TesseraTestSupport

/// The stores every ledger test runs against: SQLite always, PostgreSQL when a server is
/// named by `TESSERA_TEST_POSTGRES` (`.ci/run` starts one), and on CI always (so that a
/// CI machine without the server fails instead of skipping).
enum StoreKind: String, CaseIterable, CustomTestStringConvertible, Sendable {
    case sqlite, postgres
    var testDescription: String { rawValue }

    static var tested: [StoreKind] { TestPostgres.enabled ? [.sqlite, .postgres] : [.sqlite] }
}

/// One empty ledger database of either kind, removed at the end: a file in a temporary
/// directory, or a PostgreSQL database of its own on the test server.
final class TestDatabase: @unchecked Sendable {
    let kind: StoreKind
    let dir: TemporaryDirectory
    let postgres: TestPostgres.Database?
    /// The PostgreSQL database's URL.
    var url: PostgresURL? { postgres?.url }
    private var opened: [PostgresLedgerStore] = []

    init(_ kind: StoreKind, in dir: TemporaryDirectory = TemporaryDirectory()) throws {
        self.kind = kind
        self.dir = dir
        postgres = kind == .postgres ? try TestPostgres.database() : nil
    }

    deinit {
        for s in opened { s.close() }
    }

    var sqlitePath: String { dir.sub("ledger.sqlite") }

    /// A new handle on the database, as another process would open it.
    func store() throws -> any LedgerStore {
        guard let url else { return try SQLiteLedgerStore(path: sqlitePath) }
        let s = try PostgresLedgerStore(url: url, maxConnections: 4)
        opened.append(s)
        return s
    }

    /// A statement behind the ledger's back, on a connection of its own: rows changed.
    @discardableResult
    func tamper(_ sql: String) throws -> Int {
        if url != nil {
            return try (try store() as! PostgresLedgerStore).execute(sql)
        }
        return try DatabaseQueue(path: sqlitePath).write { d in
            try d.execute(sql: sql)
            return d.changesCount
        }
    }
}
