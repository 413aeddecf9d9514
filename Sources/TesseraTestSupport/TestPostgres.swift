import Foundation
import TesseraLedger
import TesseraLedgerPostgres

/// PostgreSQL for the tests: the server `TESSERA_TEST_POSTGRES` names (`.ci/run` starts one
/// with scripts/postgres-for-tests), and a fresh database on it per test.
public enum TestPostgres {
    public static var serverURL: String? { ProcessInfo.processInfo.environment["TESSERA_TEST_POSTGRES"] }

    /// Whether the PostgreSQL variants run: with a server, and always on CI (where a
    /// missing server must fail, not skip).
    public static var enabled: Bool { serverURL != nil || ProcessInfo.processInfo.environment["CI"] != nil }

    /// A new empty database, dropped when the returned value is released.
    public static func database() throws -> Database {
        guard let server = serverURL else {
            throw LedgerError.refused("TESSERA_TEST_POSTGRES is not set: start a server with scripts/postgres-for-tests start DIR and export the URL it prints")
        }
        let admin = try PostgresURL(server)
        let name = "tessera_t_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased().prefix(16)
        try PostgresLedgerStore.administer(admin, ["CREATE DATABASE \(name)"])
        var url = admin
        url.database = String(name)
        return Database(url: url, admin: admin)
    }

    public final class Database: Sendable {
        public let url: PostgresURL
        let admin: PostgresURL
        init(url: PostgresURL, admin: PostgresURL) { (self.url, self.admin) = (url, admin) }
        deinit { try? PostgresLedgerStore.administer(admin, ["DROP DATABASE IF EXISTS \(url.database) WITH (FORCE)"]) }
    }
}
