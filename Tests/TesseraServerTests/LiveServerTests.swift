import AsyncHTTPClient
import Foundation
import Hummingbird
import HummingbirdTesting
import Testing
import TesseraClient
import TesseraCore
import TesseraLedger
import TesseraLibrary
import TesseraMarket
@testable import TesseraServer
import TesseraTestSupport
#if canImport(Glibc)
import Glibc
#endif

/// The server on a real loopback socket: the client library against it, clients that
/// misbehave at the byte level, and the command line against a directory and a URL.
@Suite struct LiveServerTests {
    static func live(_ m: TestMarket, configure: (inout ServerConfiguration) -> Void = { _ in },
                     _ body: @Sendable @escaping (RemoteMarket, Int) async throws -> Void) async throws {
        var c = ServerConfiguration()
        c.logLevel = .critical
        c.port = 0
        configure(&c)
        try await MarketServer(market: m.market, configuration: c).buildApplication().test(.live) { client in
            let port = try #require(client.port)
            // A client of its own, shut down before the server stops: the shared one's idle
            // connections would hold the server's graceful shutdown.
            let http = HTTPClient(eventLoopGroupProvider: .singleton)
            let remote = try RemoteMarket(url: "http://127.0.0.1:\(port)", client: http)
            remote.retryFor = 5
            do { try await body(remote, port) } catch {
                try await http.shutdown()
                throw error
            }
            try await http.shutdown()
        }
    }

    @Test func theClientSeesWhatTheDirectoryHolds() async throws {
        let m = try TestMarket()
        try await Self.live(m) { remote, _ in
            #expect(try await remote.summary() == (try await m.market.summary()))
            let state = try await remote.state()
            #expect(state.headHash == (try m.market.ledger.currentState().headHash))
            #expect(try await remote.policyText() == (try await m.market.policyText()))
            let claim = try m.sign(.claim(.init(at: m.now, round: m.round, experts: [ExpertRef(layer: 1, expert: 0)], expiresAt: m.now + 600)),
                                   by: "contributor-2")
            let first = try await remote.post(claim)
            #expect(try await remote.post(claim) == .duplicate(seq: first.seq))
            // A refusal arrives as the error a directory would throw, with the rule's words.
            let stranger = try m.sign(.claim(.init(at: m.now, round: m.round, experts: [ExpertRef(layer: 1, expert: 0)], expiresAt: m.now + 600)),
                                      by: "stranger")
            await #expect { try await remote.post(stranger) } throws: { e in
                guard case let LedgerError.refused(why) = e else { return false }
                return why.contains("not registered")
            }
        }
    }

    @Test func shardDownloadsResumeAndRefuseWhatDoesNotHash() async throws {
        let m = try TestMarket()
        let hash = m.market.library.manifest.experts[1].head.hash
        let bytes = Array(try Data(contentsOf: URL(fileURLWithPath: m.market.library.shardPath(hash))))
        let out = m.tmp.sub("shard.safetensors")
        try await Self.live(m) { remote, _ in
            // Resumed from a partial file that holds the first bytes.
            try Data(bytes.prefix(100)).write(to: URL(fileURLWithPath: out + ".partial"))
            try await remote.downloadShard(hash, to: out)
            #expect(Array(try Data(contentsOf: URL(fileURLWithPath: out))) == bytes)
            #expect(!FileManager.default.fileExists(atPath: out + ".partial"))
            try FileManager.default.removeItem(atPath: out)
            // A partial file of wrong bytes: refused by the hash, removed, and the next try is clean.
            try Data(repeating: 9, count: 100).write(to: URL(fileURLWithPath: out + ".partial"))
            await #expect { try await remote.downloadShard(hash, to: out) } throws: { "\($0)".contains("does not hash") }
            #expect(!FileManager.default.fileExists(atPath: out + ".partial") && !FileManager.default.fileExists(atPath: out))
            try await remote.downloadShard(hash, to: out)
            #expect(Array(try Data(contentsOf: URL(fileURLWithPath: out))) == bytes)
            // A partial file longer than the shard: started again.
            try FileManager.default.removeItem(atPath: out)
            try Data(repeating: 1, count: bytes.count + 10).write(to: URL(fileURLWithPath: out + ".partial"))
            try await remote.downloadShard(hash, to: out)
            #expect(Array(try Data(contentsOf: URL(fileURLWithPath: out))) == bytes)
        }
    }

    @Test func slowAndTruncatedClientsBlockNobodyAndLeaveNothing() async throws {
        let m = try TestMarket()
        let ids = [ExpertID(layer: 0, expert: 2)]
        let bundle = try m.makeBundle("contributor-1", experts: ids, seed: 9)
        _ = try m.claimAndSubmit("contributor-1", bundle: bundle, experts: ids)
        try m.closeRound()
        let archive = try BundleArchive.pack(bundle)
        try await Self.live(m, configure: { $0.idleTimeout = 1 }) { remote, port in
            // Slow clients: headers that never end, and bodies that stop half way.
            var slow: [RawConnection] = []
            for i in 0..<40 {
                let c = try RawConnection(port: port)
                if i % 2 == 0 {
                    try c.send("GET /v1/market HTTP/1.1\r\nHost: x\r\nX-Slow: ")
                } else {
                    try c.send("PUT /v1/bundles HTTP/1.1\r\nHost: x\r\nContent-Length: \(archive.count)\r\n\r\n")
                    try c.send(Array(archive.prefix(archive.count / 2)))
                }
                slow.append(c)
            }
            // Everyone else is served meanwhile.
            for _ in 0..<20 { #expect(try await remote.summary().events > 0) }
            // An upload cut off by its client stores nothing.
            let cut = try RawConnection(port: port)
            try cut.send("PUT /v1/bundles HTTP/1.1\r\nHost: x\r\nContent-Length: \(archive.count)\r\n\r\n")
            try cut.send(Array(archive.prefix(archive.count - 10)))
            cut.close()
            // The idle timeout closes the slow connections.
            for c in slow { #expect(try await Blocking.run { c.readUntilClosed(seconds: 60) }, "a slow connection is closed by the idle timeout") }
            #expect(m.storedBundles.isEmpty, "\(m.storedBundles)")
            // And the whole upload still works.
            #expect(try await remote.uploadBundle(bundle) == (try SubmissionBundle.submissionRecord(bundle).hash))
            #expect(m.storedBundles.count == 1)
        }
    }

    @Test func theCommandLineAnswersAlikeForADirectoryAndAURL() async throws {
        guard tesseraIsBuilt() else { return }
        let m = try TestMarket()
        let publisher = m.keys["publisher"]!.publicHex
        let queries: [[String]] = [["ledger", "round", "es-1", "--json"], ["ledger", "shares", "--owner", publisher, "--json"],
                                   ["ledger", "expert", "0:1", "--json"], ["ledger", "payouts", "--json"],
                                   ["ledger", "events", "--since", "3", "--json"], ["ledger", "verify", "--json"],
                                   ["ledger", "round", "es-1"], ["ledger", "shares", "--owner", publisher]]
        try await Self.live(m) { remote, port in
            for q in queries {
                let fromDirectory = try await Blocking.run { try Self.run(q + ["--market", m.dir]) }
                let fromServer = try await Blocking.run { try Self.run(q + ["--market", "http://127.0.0.1:\(port)"]) }
                #expect(fromDirectory.status == 0 && !fromDirectory.out.isEmpty, "\(q): \(fromDirectory.out)")
                #expect(fromDirectory == fromServer, "\(q.joined(separator: " ")) differs:\n\(fromDirectory.out)\n---\n\(fromServer.out)")
            }
        }
    }

    static func run(_ args: [String]) throws -> Output {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: ReferenceFixtures.binary)
        p.arguments = args
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = pipe
        try p.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return Output(status: p.terminationStatus, out: String(decoding: data, as: UTF8.self))
    }

    struct Output: Equatable, Sendable { var status: Int32; var out: String }
}

/// A TCP connection to loopback driven byte by byte, for clients no HTTP library would be.
final class RawConnection: @unchecked Sendable {
    let fd: Int32

    init(port: Int) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw CoreError("socket: \(errno)") }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let r = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard r == 0 else { Glibc.close(fd); throw CoreError("connect to port \(port): \(errno)") }
    }

    func send(_ text: String) throws { try send(Array(text.utf8)) }

    func send(_ bytes: [UInt8]) throws {
        var sent = 0
        while sent < bytes.count {
            let n = bytes[sent...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard n > 0 else { throw CoreError("send: \(errno)") }
            sent += n
        }
    }

    /// Reads (and drops) whatever arrives until the server closes the connection; false if
    /// it is still open after `seconds`.
    func readUntilClosed(seconds: Double) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        var buffer = [UInt8](repeating: 0, count: 4096)
        while Date() < deadline {
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&p, 1, 200) >= 0 else { return false }
            if p.revents != 0 {
                let n = recv(fd, &buffer, buffer.count, 0)
                if n <= 0 { return true }
            }
        }
        return false
    }

    private var closed = false
    func close() {
        if !closed { Glibc.close(fd) }
        closed = true
    }
    deinit { close() }
}
