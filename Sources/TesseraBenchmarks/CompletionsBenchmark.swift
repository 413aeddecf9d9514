import AsyncHTTPClient
import Foundation
import NIOCore
import TesseraCore
import TesseraEngine
import TesseraLibrary
import TesseraMarket

/// `POST /v1/completions` under load: `tessera serve --serve-model` (a separate process) on
/// a market whose library is the generation benchmark's reference shape in bf16, and
/// `clients` clients in this process, each streaming `requests` completions one after the
/// other (64-byte prompts, 128 new tokens, greedy). The server batches whatever requests
/// are running at each step. Time to first token is measured to the first streamed chunk
/// that carries text; tokens are the completions' own `usage`. Clients and server share the
/// machine's cores, so the figures are a floor.
public struct CompletionsBenchmark: Encodable, Sendable {
    public var clients: Int
    public var maxBatch: Int
    public var requests: Int
    public var completionTokens: Int
    public var seconds: Double
    public var tokensPerSecond: Double
    public var ttftP50Ms: Double
    public var ttftP99Ms: Double
    public var requestP50Ms: Double
    public var shape: String
    enum CodingKeys: String, CodingKey {
        case clients, requests, seconds, shape
        case maxBatch = "max_batch"
        case completionTokens = "completion_tokens", tokensPerSecond = "tokens_per_s"
        case ttftP50Ms = "ttft_p50_ms", ttftP99Ms = "ttft_p99_ms", requestP50Ms = "request_p50_ms"
    }

    public var text: String {
        [shape,
         String(format: "%d clients × %d streamed requests, the server batching %d at most: %d completion tokens in %.1f s, %.1f tokens/s served",
                clients, requests / max(clients, 1), maxBatch, completionTokens, seconds, tokensPerSecond),
         String(format: "time to first token p50 %.1f ms, p99 %.1f ms; whole request p50 %.1f ms", ttftP50Ms, ttftP99Ms, requestP50Ms)]
            .joined(separator: "\n")
    }

    public static let promptBytes = 64
    public static let newTokens = 128

    public static func run(binary: String, policy: String = "Market", clients: Int = 16, perClient: Int = 4, maxBatch: Int = 16,
                           log: @escaping @Sendable (String) -> Void) async throws -> CompletionsBenchmark {
        guard clients > 0, perClient > 0 else { throw CoreError("completions bench: clients and requests per client must be positive") }
        let root = NSTemporaryDirectory() + "tessera-completions-bench-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: root) }
        let fm = FileManager.default
        try fm.createDirectory(atPath: root, withIntermediateDirectories: true)
        let config = EngineBenchmark.referenceConfig
        log("setup: the reference shape in bf16, split into a market's library, in \(root)")
        let model = MoEModel(config: config)
        model.initializeRandomly(seed: 0)
        let local = try benchmarkMarket(model, root: root, policy: policy, operatorKey: ParticipantKey.generate())
        let market = local.directory.path, now = Int64(Date().timeIntervalSince1970)
        let domain = local.rules.domains[0].name
        _ = try APIKeys.issue(market: market, domain: domain, pricePer1kTokens: 1000, at: now, out: root + "/api-key")
        let secret = try String(contentsOfFile: root + "/api-key", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)

        let server = try await ServerProcess.start(binary: binary, market: market, logPath: root + "/server.log", arguments: ["--serve-model", "--max-batch", String(maxBatch)])
        let http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: .init(
            connectionPool: .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: clients + 2)))
        do {
            // One request first, so that loading the model and packing its weights is not timed.
            _ = try await stream(http, url: server.url, secret: secret, seed: 0)
            log("load: \(clients) clients × \(perClient) streamed completions")
            let start = DispatchTime.now().uptimeNanoseconds
            let results = try await withThrowingTaskGroup(of: [Outcome].self) { group in
                for c in 0..<clients {
                    group.addTask {
                        var out: [Outcome] = []
                        for r in 0..<perClient { out.append(try await stream(http, url: server.url, secret: secret, seed: 1 + c * perClient + r)) }
                        return out
                    }
                }
                var all: [Outcome] = []
                for try await r in group { all += r }
                return all
            }
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            try await http.shutdown()
            await server.stop()
            let tokens = results.reduce(0) { $0 + $1.tokens }
            let ttft = results.map(\.firstTokenMs).sorted(), whole = results.map(\.totalMs).sorted()
            let shape = "\(config.family.rawValue) V=\(config.vocabSize) H=\(config.hiddenSize) I=\(config.expertWidth) L=\(config.layers) "
                + "E=\(config.experts) top-\(config.topK), bf16 weights; \(promptBytes)-byte prompts, \(newTokens) new tokens, greedy, streamed"
            return CompletionsBenchmark(clients: clients, maxBatch: maxBatch, requests: results.count, completionTokens: tokens, seconds: seconds,
                                        tokensPerSecond: Double(tokens) / seconds, ttftP50Ms: percentile(ttft, 0.5),
                                        ttftP99Ms: percentile(ttft, 0.99), requestP50Ms: percentile(whole, 0.5), shape: shape)
        } catch {
            try? await http.shutdown()
            await server.stop()
            throw error
        }
    }

    struct Outcome: Sendable { let firstTokenMs: Double; let totalMs: Double; let tokens: Int }

    /// The nearest-rank percentile of sorted values.
    static func percentile(_ sorted: [Double], _ p: Double) -> Double {
        guard !sorted.isEmpty else { return 0 }
        return sorted[min(sorted.count - 1, max(0, Int((p * Double(sorted.count)).rounded(.up)) - 1))]
    }

    /// One streamed completion: a prompt of printable bytes chosen by `seed`.
    static func stream(_ http: HTTPClient, url: String, secret: String, seed: Int) async throws -> Outcome {
        var rng = SplitMix64(seed: UInt64(seed))
        let prompt = String((0..<promptBytes).map { _ in Character(UnicodeScalar(UInt8(97 + rng.next() % 26))) })
        var request = HTTPClientRequest(url: url + "/v1/completions")
        request.method = .POST
        request.headers.add(name: "Authorization", value: "Bearer \(secret)")
        request.headers.add(name: "Content-Type", value: "application/json")
        request.body = .bytes(ByteBuffer(string: #"{"prompt":"\#(prompt)","max_tokens":\#(newTokens),"temperature":0,"stream":true}"#))
        let t0 = DispatchTime.now().uptimeNanoseconds
        let response = try await http.execute(request, timeout: .seconds(600))
        guard response.status == .ok else { throw CoreError("completions bench: the server answered \(response.status.code)") }
        var first: UInt64?, body = ""
        for try await chunk in response.body {
            let text = String(buffer: chunk)
            if first == nil, text.contains("\"text\":\""), !text.contains("\"text\":\"\"") { first = DispatchTime.now().uptimeNanoseconds }
            body += text
        }
        let t1 = DispatchTime.now().uptimeNanoseconds
        // The last event before [DONE] carries the usage.
        guard let range = body.range(of: "\"completion_tokens\":"),
              let tokens = Int(body[range.upperBound...].prefix { $0.isNumber }) else {
            throw CoreError("completions bench: the stream carried no usage")
        }
        return Outcome(firstTokenMs: Double((first ?? t1) - t0) / 1e6, totalMs: Double(t1 - t0) / 1e6, tokens: tokens)
    }
}
