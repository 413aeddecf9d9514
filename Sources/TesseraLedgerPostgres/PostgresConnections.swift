import Foundation
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import PostgresNIO
import TesseraLedger

/// A few connections to one database, lent out one body at a time. The store's calls are
/// synchronous and short, so a lock-guarded list is all the pooling they need; a connection
/// that failed is closed and replaced by a new one on the next call.
final class PostgresConnections: @unchecked Sendable {
    let url: PostgresURL
    let max: Int
    private let lock = NSCondition()
    private var idle: [PostgresConnection] = []
    private var open = 0
    private var nextID = 0
    static let logger = Logger(label: "tessera.postgres")

    init(url: PostgresURL, max: Int) {
        self.url = url
        self.max = Swift.max(1, max)
    }

    func with<T>(_ body: (PostgresConnection) throws -> T) throws -> T {
        let conn = try take()
        do {
            let r = try body(conn)
            give(conn, broken: false)
            return r
        } catch {
            give(conn, broken: conn.isClosed)
            throw error
        }
    }

    private func take() throws -> PostgresConnection {
        lock.lock()
        while idle.isEmpty && open >= max { lock.wait() }
        if let c = idle.popLast() {
            lock.unlock()
            if !c.isClosed { return c }
            lock.lock(); open -= 1; lock.unlock()
            return try take()
        }
        open += 1
        nextID += 1
        let id = nextID
        lock.unlock()
        do {
            return try connect(id: id)
        } catch {
            lock.lock(); open -= 1; lock.signal(); lock.unlock()
            throw error
        }
    }

    private func give(_ c: PostgresConnection, broken: Bool) {
        lock.lock()
        if broken { open -= 1; try? (c.close() as EventLoopFuture<Void>).wait() } else { idle.append(c) }
        lock.signal()
        lock.unlock()
    }

    private func connect(id: Int) throws -> PostgresConnection {
        let tls: PostgresConnection.Configuration.TLS
        if url.requireTLS {
            tls = .require(try NIOSSLContext(configuration: .makeClientConfiguration()))
        } else {
            tls = .disable
        }
        var config = PostgresConnection.Configuration(host: url.host, port: url.port, username: url.user, password: url.password,
                                                      database: url.database, tls: tls)
        config.options.connectTimeout = .seconds(10)
        do {
            return try PostgresConnection.connect(on: MultiThreadedEventLoopGroup.singleton.next(), configuration: config,
                                                  id: id, logger: Self.logger).wait()
        } catch {
            throw LedgerError.refused("cannot connect to \(url): \(PostgresFailure.describe(error))")
        }
    }

    func closeAll() {
        lock.lock()
        let all = idle
        idle.removeAll()
        open -= all.count
        lock.unlock()
        for c in all { try? (c.close() as EventLoopFuture<Void>).wait() }
    }
}

/// PostgreSQL's own words for a failure (postgres-nio hides them from `description` lest
/// a query's data leak into logs; a ledger's rows are public).
enum PostgresFailure {
    static func describe(_ error: any Error) -> String {
        if let e = error as? PSQLError {
            if let info = e.serverInfo {
                let message = info[.message] ?? "error"
                let detail = info[.detail].map { " (\($0))" } ?? ""
                return "\(message)\(detail) [SQLSTATE \(info[.sqlState] ?? "?")]"
            }
            return "\(e.code)" + (e.underlying.map { ": \($0)" } ?? "")
        }
        return "\(error)"
    }
}
