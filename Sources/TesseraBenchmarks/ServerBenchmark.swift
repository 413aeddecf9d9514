import AsyncHTTPClient
import Foundation
import NIOCore
import TesseraCore
import TesseraEngine
import TesseraLedger
import TesseraLibrary
import TesseraMarket
#if canImport(Glibc)
import Glibc
#endif

/// A bounded load test of `tessera serve` on loopback. The server is a separate process on
/// a fresh market (two layers of 32 experts of DeepSeek-V2-Lite's expert shape, 8.6 MB
/// per shard); the clients run in this process. Three phases, each timed alone:
/// - actions: `clients` clients, each with its own contributor key, post signed claims as
///   fast as the server answers them (one request in flight per client); every answer is
///   a durable commit (group commit);
/// - downloads: `downloads` clients fetch expert shards whole, round-robin;
/// - soak (optional): both at once for `soakSeconds`, the server's resident memory sampled.
/// Both share the two cores with the server: what the clients spend (signing, HTTP) is
/// processor time the server does not get, so the figures are a floor.
public struct ServerBenchmark: Encodable, Sendable {
    public struct Options: Sendable {
        public var binary: String
        public var policy = "Market"
        public var directory: String?
        public var clients = 32
        public var seconds = 20.0
        public var downloads = 4
        public var soakSeconds = 0.0
        public var sampleEvery = 10.0
        /// The ledger in this PostgreSQL database (empty) instead of SQLite.
        public var database: String?
        /// `tessera serve` processes on the one market (more than one needs `database`);
        /// client i talks to server i mod servers.
        public var servers = 1
        public init(binary: String) { self.binary = binary }
    }

    public struct Actions: Encodable, Sendable {
        public var clients: Int
        public var seconds: Double
        public var accepted: Int
        public var refused: Int
        public var perSecond: Double
        public var p50Ms: Double
        public var p99Ms: Double
        public var maxMs: Double
        /// The server's processor time per accepted action, microseconds.
        public var serverCPUMicrosPerAction: Double
        enum CodingKeys: String, CodingKey {
            case clients, seconds, accepted, refused
            case perSecond = "accepted_per_s"
            case p50Ms = "p50_ms", p99Ms = "p99_ms", maxMs = "max_ms"
            case serverCPUMicrosPerAction = "server_cpu_us_per_action"
        }
    }

    public struct Downloads: Encodable, Sendable {
        public var clients: Int
        public var seconds: Double
        public var bytes: Int
        public var gbPerSecond: Double
        /// One thread's memcpy rate on this machine, measured in the same run.
        public var copyGBPerSecond: Double
        enum CodingKeys: String, CodingKey {
            case clients, seconds, bytes
            case gbPerSecond = "gb_per_s"
            case copyGBPerSecond = "memcpy_gb_per_s"
        }
    }

    public struct Soak: Encodable, Sendable {
        public var seconds: Double
        public var actions: Actions
        public var downloadGBPerSecond: Double
        /// The server's resident memory at each sample, MiB.
        public var residentMiB: [Double]
        enum CodingKeys: String, CodingKey {
            case seconds, actions
            case downloadGBPerSecond = "download_gb_per_s"
            case residentMiB = "resident_mib"
        }
    }

    public var servers: Int
    /// The ledger's store: sqlite or postgresql.
    public var store: String
    public var actions: Actions
    public var downloads: Downloads
    public var soak: Soak?
    public var shardBytes: Int
    public var events: Int64
    public var verifyOK: Bool

    enum CodingKeys: String, CodingKey {
        case servers, store, actions, downloads, soak, events
        case shardBytes = "shard_bytes"
        case verifyOK = "verify_ok"
    }

    public var text: String {
        var lines = [
            "\(servers) server\(servers == 1 ? "" : "s"), ledger in \(store)",
            String(format: "signed actions: %d clients, %.0f s: %d accepted (%.0f/s), %d refused; latency p50 %.1f ms, p99 %.1f ms, max %.1f ms; server %.0f µs of processor time per action",
                   actions.clients, actions.seconds, actions.accepted, actions.perSecond, actions.refused, actions.p50Ms, actions.p99Ms, actions.maxMs,
                   actions.serverCPUMicrosPerAction),
            String(format: "shard downloads: %d clients, %.0f s, %.2f GB/s (%.1f MB shards; memcpy on one thread here: %.1f GB/s, ratio %.2f)",
                   downloads.clients, downloads.seconds, downloads.gbPerSecond, Double(shardBytes) / 1e6, downloads.copyGBPerSecond,
                   downloads.gbPerSecond / downloads.copyGBPerSecond),
        ]
        if let s = soak {
            lines.append(String(format: "soak %.0f s, both loads at once: %.0f actions/s (p99 %.1f ms), downloads %.2f GB/s; server memory %@ MiB",
                                s.seconds, s.actions.perSecond, s.actions.p99Ms, s.downloadGBPerSecond,
                                s.residentMiB.map { String(format: "%.0f", $0) }.joined(separator: " ")))
        }
        lines.append("ledger: \(events) events, verify \(verifyOK ? "ok" : "FAILED")")
        return lines.joined(separator: "\n")
    }

    public static func run(_ o: Options, log: @escaping @Sendable (String) -> Void) async throws -> ServerBenchmark {
        guard o.clients > 0, o.downloads > 0, o.seconds > 0, o.soakSeconds >= 0, o.sampleEvery > 0 else {
            throw CoreError("server bench: clients, downloads, seconds and sample interval must be positive, soak not negative")
        }
        let root = o.directory ?? (NSTemporaryDirectory() + "tessera-server-bench-\(UUID().uuidString)")
        defer { if o.directory == nil { try? FileManager.default.removeItem(atPath: root) } }
        guard o.servers >= 1, o.servers == 1 || o.database != nil else {
            throw CoreError("server bench: several servers share one market through a PostgreSQL database (--database)")
        }
        let setup = try Setup(root: root, policy: o.policy, clients: o.clients, database: o.database, log: log)
        var servers: [ServerProcess] = []
        for i in 0..<o.servers {
            servers.append(try await ServerProcess.start(binary: o.binary, market: setup.market, logPath: root + "/server-\(i).log"))
        }
        let server = servers[0]
        let http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: .init(
            connectionPool: .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: o.clients + o.downloads + 4)))
        do {
            let load = Load(urls: servers.map(\.url), http: http, setup: setup, pids: servers.map(\.pid))
            log("actions: \(o.clients) clients for \(Int(o.seconds)) s")
            let actions = try await load.actions(clients: o.clients, seconds: o.seconds)
            log("downloads: \(o.downloads) clients for \(Int(o.seconds)) s")
            let (bytes, downloadSeconds) = try await load.downloads(clients: o.downloads, seconds: o.seconds)
            var soak: Soak?
            if o.soakSeconds > 0 {
                log("soak: both loads for \(Int(o.soakSeconds)) s, memory sampled every \(Int(o.sampleEvery)) s")
                soak = try await load.soak(clients: o.clients, downloads: o.downloads, seconds: o.soakSeconds, every: o.sampleEvery, server: server)
            }
            let verify = try await load.verify()
            try await http.shutdown()
            for s in servers { await s.stop() }
            return ServerBenchmark(servers: o.servers, store: o.database == nil ? "sqlite" : "postgresql", actions: actions,
                                   downloads: Downloads(clients: o.downloads, seconds: downloadSeconds, bytes: bytes,
                                                        gbPerSecond: Double(bytes) / downloadSeconds / 1e9, copyGBPerSecond: Self.copyRate()),
                                   soak: soak, shardBytes: setup.shardBytes, events: verify.events, verifyOK: verify.ok)
        } catch {
            try? await http.shutdown()
            for s in servers { await s.stop() }
            throw error
        }
    }

    /// One thread copying 256 MiB buffers, GB/s (the best of five).
    static func copyRate() -> Double {
        let n = 256 << 20
        let a = UnsafeMutableRawPointer.allocate(byteCount: n, alignment: 64)
        let b = UnsafeMutableRawPointer.allocate(byteCount: n, alignment: 64)
        defer { a.deallocate(); b.deallocate() }
        memset(a, 1, n)
        memset(b, 2, n)
        var best = 0.0
        for _ in 0..<5 {
            let t = DispatchTime.now().uptimeNanoseconds
            memcpy(b, a, n)
            let s = Double(DispatchTime.now().uptimeNanoseconds - t) / 1e9
            best = max(best, Double(n) / s / 1e9)
        }
        return best
    }
}

/// The market the load runs against: its directory, the contributors' keys and experts,
/// the shards to download.
struct Setup: Sendable {
    let market: String
    let contributors: [ParticipantKey]
    let experts: [ExpertRef]
    let shards: [String]
    let shardBytes: Int

    init(root: String, policy: String, clients: Int, database: String?, log: (String) -> Void) throws {
        let fm = FileManager.default
        try fm.createDirectory(atPath: root, withIntermediateDirectories: true)
        log("setup: a two-layer model with 32 experts per layer (1024 × 1408 each) in \(root)")
        let config = ModelConfig(family: .qwen3MoE, vocabSize: 256, hiddenSize: 1024, layers: 2, heads: 8, kvHeads: 2, headDim: 128,
                                 experts: 32, topK: 2, expertWidth: 1408, normTopKProb: true, tieWordEmbeddings: true)
        let model = MoEModel(config: config)
        model.initializeRandomly(seed: 1, std: 0.02)
        let op = ParticipantKey.generate()
        let local = try benchmarkMarket(model, root: root, policy: policy, operatorKey: op, database: database)
        market = local.directory.path
        let now = Int64(Date().timeIntervalSince1970)
        contributors = (0..<clients).map { _ in ParticipantKey.generate() }
        experts = local.library.manifest.experts.map { ExpertRef(layer: $0.layer, expert: $0.expert) }
        var setup = try contributors.map { try SignedAction(.register(.init(at: now, key: $0.publicHex, roles: [.contributor], stake: 0)), key: op) }
        setup.append(try SignedAction(.openRound(.init(at: now, round: "load", domain: local.rules.domains[0].name, experts: experts, closesAt: now + 86_400)),
                                      key: op))
        for r in try local.postEach(setup) { _ = try r.get() }
        shards = local.library.manifest.experts.map(\.head.hash)
        shardBytes = (try fm.attributesOfItem(atPath: local.library.shardPath(shards[0]))[.size] as? Int) ?? 0
    }
}

/// The clients.
struct Load: Sendable {
    let urls: [String]
    let http: HTTPClient
    let setup: Setup
    let pids: [Int32]
    var url: String { urls[0] }

    /// Each client claims, over and over, one of three sets of its own experts; an action
    /// differs from the one before by its time or its expiry, so every one is new.
    func actions(clients: Int, seconds: Double) async throws -> ServerBenchmark.Actions {
        let cpu0 = pids.reduce(0) { $0 + processorSeconds($1) }
        let start = Date()
        let results = try await withThrowingTaskGroup(of: (latencies: [Double], accepted: Int, refused: Int).self) { group in
            for i in 0..<clients {
                group.addTask { try await self.claimLoop(client: i, clients: clients, until: start.addingTimeInterval(seconds)) }
            }
            var all: [(latencies: [Double], accepted: Int, refused: Int)] = []
            for try await r in group { all.append(r) }
            return all
        }
        let elapsed = Date().timeIntervalSince(start)
        let cpu = pids.reduce(0) { $0 + processorSeconds($1) } - cpu0
        let latencies = results.flatMap(\.latencies).sorted()
        let accepted = results.reduce(0) { $0 + $1.accepted }
        func q(_ p: Double) -> Double { latencies.isEmpty ? 0 : latencies[min(latencies.count - 1, Int(Double(latencies.count) * p))] }
        return .init(clients: clients, seconds: elapsed, accepted: accepted, refused: results.reduce(0) { $0 + $1.refused },
                     perSecond: Double(accepted) / elapsed, p50Ms: q(0.5), p99Ms: q(0.99), maxMs: latencies.last ?? 0,
                     serverCPUMicrosPerAction: accepted > 0 ? cpu / Double(accepted) * 1e6 : 0)
    }

    func claimLoop(client: Int, clients: Int, until end: Date) async throws -> (latencies: [Double], accepted: Int, refused: Int) {
        let key = setup.contributors[client]
        let mine = [setup.experts[(2 * client) % setup.experts.count], setup.experts[(2 * client + 1) % setup.experts.count]]
        let sets = [[mine[0]], [mine[1]], mine]
        var latencies: [Double] = []
        var accepted = 0, refused = 0, k = 0
        var last: Int64 = 0
        while Date() < end {
            let at = Int64(Date().timeIntervalSince1970)
            if at != last { k = 0; last = at } else { k += 1 }
            let action = try SignedAction(.claim(.init(at: at, round: "load", experts: sets[k % 3], expiresAt: at + 1 + Int64(k / 3))), key: key)
            var request = HTTPClientRequest(url: urls[client % urls.count] + "/v1/actions")
            request.method = .POST
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(string: try JSONOutput.compact(try ActionEnvelope(action))))
            let t = DispatchTime.now().uptimeNanoseconds
            let response = try await http.execute(request, timeout: .seconds(60))
            let body = try await response.body.collect(upTo: 1 << 16)
            latencies.append(Double(DispatchTime.now().uptimeNanoseconds - t) / 1e6)
            if response.status == .ok, String(buffer: body).contains("\"recorded\":true") { accepted += 1 } else { refused += 1 }
        }
        return (latencies, accepted, refused)
    }

    func downloads(clients: Int, seconds: Double) async throws -> (bytes: Int, seconds: Double) {
        let start = Date()
        let bytes = try await withThrowingTaskGroup(of: Int.self) { group in
            for i in 0..<clients {
                group.addTask {
                    var n = 0, j = i
                    while Date().timeIntervalSince(start) < seconds {
                        let response = try await http.execute(HTTPClientRequest(url: urls[j % urls.count] + "/v1/shards/" + setup.shards[j % setup.shards.count]),
                                                              timeout: .seconds(60))
                        guard response.status == .ok else { throw CoreError("shard download: HTTP \(response.status.code)") }
                        for try await part in response.body { n += part.readableBytes }
                        j += clients
                    }
                    return n
                }
            }
            return try await group.reduce(0, +)
        }
        return (bytes, Date().timeIntervalSince(start))
    }

    func soak(clients: Int, downloads: Int, seconds: Double, every: Double, server: ServerProcess) async throws -> ServerBenchmark.Soak {
        async let a = actions(clients: clients, seconds: seconds)
        async let d = self.downloads(clients: downloads, seconds: seconds)
        var samples: [Double] = []
        let start = Date()
        while Date().timeIntervalSince(start) < seconds {
            samples.append(Double(server.residentBytes ?? 0) / 1_048_576)
            try await Task.sleep(nanoseconds: UInt64(min(every, max(0.1, seconds - Date().timeIntervalSince(start))) * 1e9))
        }
        samples.append(Double(server.residentBytes ?? 0) / 1_048_576)
        let (actions, (bytes, s)) = try await (a, d)
        return .init(seconds: s, actions: actions, downloadGBPerSecond: Double(bytes) / s / 1e9, residentMiB: samples)
    }

    func verify() async throws -> (ok: Bool, events: Int64) {
        let response = try await http.execute(HTTPClientRequest(url: url + "/v1/verify"), timeout: .seconds(600))
        let report = try StrictJSON.decode(VerifyReport.self, from: Data(try await response.body.collect(upTo: 1 << 20).readableBytesView), file: "verify")
        return (report.ok, report.events)
    }

    /// User plus system time of a process, seconds (Linux /proc/PID/stat).
    func processorSeconds(_ pid: Int32) -> Double {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = text.lastIndex(of: ")") else { return 0 }
        let fields = text[text.index(after: close)...].split(separator: " ")
        // After the command name: state is field 3, utime 14 and stime 15.
        guard fields.count > 13, let u = Double(fields[11]), let s = Double(fields[12]) else { return 0 }
        return (u + s) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }
}
