import Foundation
import TesseraLedger

/// `postgresql://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?sslmode=disable|require]`, as libpq
/// spells it. A password absent from the URL is read from `PGPASSWORD`.
public struct PostgresURL: Sendable, Equatable, CustomStringConvertible {
    public var user: String
    public var password: String?
    public var host: String
    public var port: Int
    public var database: String
    public var requireTLS: Bool

    public static func isPostgres(_ text: String) -> Bool {
        text.hasPrefix("postgresql://") || text.hasPrefix("postgres://")
    }

    public init(_ text: String, environment: [String: String] = ProcessInfo.processInfo.environment) throws {
        func bad(_ why: String) -> LedgerError { .refused("database URL \(PostgresURL.redacted(text)): \(why)") }
        guard PostgresURL.isPostgres(text), let c = URLComponents(string: text) else {
            throw bad("expected postgresql://USER@HOST:PORT/DATABASE")
        }
        guard let host = c.host, !host.isEmpty else { throw bad("no host") }
        guard let user = c.user, !user.isEmpty else { throw bad("no user (postgresql://USER@HOST/DATABASE)") }
        let db = String(c.path.drop(while: { $0 == "/" }))
        guard !db.isEmpty, !db.contains("/") else { throw bad("no database name after the host") }
        let port = c.port ?? 5432
        guard (1...65535).contains(port) else { throw bad("port \(port) is outside 1...65535") }
        var tls = false
        for item in c.queryItems ?? [] {
            switch (item.name, item.value ?? "") {
            case ("sslmode", "disable"): tls = false
            case ("sslmode", "require"): tls = true
            case ("sslmode", let v): throw bad("sslmode \(v) is not supported (disable or require)")
            default: throw bad("unknown parameter \(item.name)")
            }
        }
        self.user = user
        self.password = c.password ?? environment["PGPASSWORD"]
        self.host = host
        self.port = port
        self.database = db
        self.requireTLS = tls
    }

    /// The URL without its password, for messages and files.
    public var description: String {
        "postgresql://\(user)@\(host):\(port)/\(database)" + (requireTLS ? "?sslmode=require" : "")
    }

    static func redacted(_ text: String) -> String {
        guard var c = URLComponents(string: text), c.password != nil else { return text }
        c.password = "***"
        return c.string ?? "(unreadable)"
    }
}
