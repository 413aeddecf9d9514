import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import TesseraCore
import TesseraEngine
import TesseraLibrary
import TesseraMarket
import TesseraProof

/// POST /v1/completions in the shape of OpenAI's API, on the market's current expert
/// versions: authenticated by API key, metered durably per request (price, gate mass per
/// expert version, tokens) before the response ends, each response carrying a signed
/// routing receipt.
public final class CompletionService: Sendable {
    let marketPath: String
    let libraryPath: String
    let policy: ServingPolicy
    let meter: UsageMeter
    let serverKey: ParticipantKey
    let generator: LockedValue<TextGenerator>
    /// Generators on version sets named by requests, by their sorted choices (a few at most:
    /// each holds a model).
    let named = LockedValue<[String: TextGenerator]>([:])
    static let maxNamedVersionSets = 4
    let keys: LockedValue<APIKeys>
    /// The stamps of the library manifest and the key file when last read: a request reads
    /// either again only when it changed.
    let manifestStamp: LockedValue<FileStamp?>
    let keysStamp: LockedValue<FileStamp?>
    let now: @Sendable () -> Int64

    public init(market: LocalMarket, serverKey: ParticipantKey, maxBatch: Int = 16, matmul: MatmulPrecision = .machineDefault,
                now: @escaping @Sendable () -> Int64 = { Int64(Date().timeIntervalSince1970) }) throws {
        marketPath = market.directory.path
        libraryPath = market.library.directory
        policy = market.rules.serving
        meter = try UsageMeter(market: marketPath)
        self.serverKey = serverKey
        self.now = now
        let served = try ServedModel.load(libraryPath)
        generator = LockedValue(TextGenerator(served: served, maxBatch: maxBatch, maxContext: policy.maxTokens + 4096, matmul: matmul))
        manifestStamp = LockedValue(FileStamp(path: ExpertLibrary.manifestPath(libraryPath)))
        keysStamp = LockedValue(FileStamp(path: APIKeys.path(market: marketPath)))
        keys = LockedValue(try APIKeys.load(market: marketPath))
    }

    /// The generator on the library's current versions, reloaded after a merge changed them.
    func currentGenerator() throws -> TextGenerator {
        let stamp = FileStamp(path: ExpertLibrary.manifestPath(libraryPath))
        guard manifestStamp.withLock({ $0 }) != stamp || stamp == nil else { return generator.withLock { $0 } }
        let current = try ExpertLibrary(directory: libraryPath).versions()
        manifestStamp.withLock { $0 = stamp }
        return try generator.withLock { g in
            if g.served.versions != current {
                let d = g.batcher.decoder
                let old = g
                g = TextGenerator(served: try ServedModel.load(libraryPath), maxBatch: g.batcher.maxBatch, maxContext: d.maxContext, matmul: d.matmul)
                // Its streams finish on the old versions; then its thread and model go.
                old.batcher.retire()
            }
            return g
        }
    }

    /// The generator for a request: the current versions, or those it names.
    func generator(for choices: [String]) throws -> TextGenerator {
        guard !choices.isEmpty else { return try currentGenerator() }
        let key = choices.sorted().joined(separator: ",")
        if let g = named.withLock({ $0[key] }) { return g }
        let served: ServedModel
        do { served = try ServedModel.load(libraryPath, versions: choices) } catch {
            throw OpenAIError(status: 400, type: "invalid_request_error", code: nil, param: "tessera_versions", message: "\(error)")
        }
        let base = try currentGenerator()
        return try named.withLock { table in
            if let g = table[key] { return g }
            guard table.count < Self.maxNamedVersionSets else {
                throw OpenAIError(status: 503, type: "server_error", code: "too_many_version_sets",
                                  message: "this server already holds \(Self.maxNamedVersionSets) named version sets; ask for the current versions or one of those")
            }
            let d = base.batcher.decoder
            let g = TextGenerator(served: served, maxBatch: base.batcher.maxBatch, maxContext: d.maxContext, matmul: d.matmul)
            table[key] = g
            return g
        }
    }

    /// The key's record; keys issued while the server runs are found by reading the file
    /// again when it changed.
    func authorize(_ header: String?) throws -> APIKeyRecord {
        guard let header, header.hasPrefix("Bearer ") else {
            throw OpenAIError(status: 401, type: "invalid_request_error", code: "invalid_api_key",
                              message: "no API key: send Authorization: Bearer tsk-... (issued by `tessera market api-key`)")
        }
        let secret = String(header.dropFirst("Bearer ".count)).trimmingCharacters(in: .whitespaces)
        if let r = keys.withLock({ $0.record(forSecret: secret) }) { return r }
        let stamp = FileStamp(path: APIKeys.path(market: marketPath))
        if keysStamp.withLock({ $0 }) != stamp {
            let reloaded = try APIKeys.load(market: marketPath)
            keys.withLock { $0 = reloaded }
            keysStamp.withLock { $0 = stamp }
        }
        guard let r = keys.withLock({ $0.record(forSecret: secret) }) else {
            throw OpenAIError(status: 401, type: "invalid_request_error", code: "invalid_api_key", message: "the API key is not valid for this market")
        }
        return r
    }

    func handle(_ request: Request, _ context: MarketRequestContext) async throws -> Response {
        do {
            let key = try authorize(request.headers[.authorization])
            var request = request
            let body: ByteBuffer
            do { body = try await request.body.collect(upTo: Self.maxBodyBytes) } catch {
                throw OpenAIError(status: 413, type: "invalid_request_error", code: "request_too_large",
                                  message: "the request body is larger than \(Self.maxBodyBytes) bytes")
            }
            let parsed: CompletionRequest
            do { parsed = try CompletionRequest.parse(Data(buffer: body), maxTokens: policy.maxTokens) } catch let e as CompletionRequest.Invalid {
                throw OpenAIError(status: 400, type: "invalid_request_error", code: nil, param: e.param, message: e.message)
            }
            let gen = try generator(for: parsed.versions)
            let text = TextRequest(prompt: parsed.prompt, maxTokens: parsed.maxTokens, sampling: parsed.sampling, stop: parsed.stop)
            let id = "cmpl-" + Hex.encode((0..<12).map { _ in UInt8.random(in: 0...255) })
            let created = now()
            let metered = LockedValue<Result<MeterRecord, Error>?>(nil)
            let events: AsyncThrowingStream<TextGenerator.Event, Error>
            do {
                events = try gen.stream(text) { [self] done in
                    metered.withLock { $0 = Result { try self.record(done, id: id, at: created, key: key, generator: gen, sampling: parsed.sampling, versions: parsed.versions) } }
                }
            } catch {
                // Only the request is checked here: the prompt's tokens, lengths, sampling.
                throw OpenAIError(status: 400, type: "invalid_request_error", code: nil, message: "\(error)")
            }
            let model = gen.served.versionSetHash
            if parsed.stream {
                let headers: HTTPFields = [.contentType: "text/event-stream", .cacheControl: "no-cache"]
                return Response(status: .ok, headers: headers, body: ResponseBody { writer in
                    for try await event in events {
                        switch event {
                        case .text(let t):
                            try await writer.write(ByteBuffer(string: Self.event(CompletionChunk(id: id, created: created, model: model, text: t))))
                        case .finished(let done):
                            let record = try metered.withLock { try $0?.get() }
                            var last = CompletionChunk(id: id, created: created, model: model, text: "", finishReason: done.finishReason.rawValue)
                            last.usage = .init(done)
                            last.tessera = record.map(TesseraExtras.init)
                            try await writer.write(ByteBuffer(string: Self.event(last)))
                        }
                    }
                    try await writer.write(ByteBuffer(string: "data: [DONE]\n\n"))
                    try await writer.finish(nil)
                })
            }
            var result: TextCompletion?
            for try await event in events { if case .finished(let done) = event { result = done } }
            guard let done = result else { throw CoreError("the completion ended without a result") }
            let record = try metered.withLock { try $0?.get() }
            var answer = CompletionChunk(id: id, created: created, model: model, text: done.text, finishReason: done.finishReason.rawValue)
            answer.usage = .init(done)
            answer.tessera = record.map(TesseraExtras.init)
            let bytes = Array(try JSONOutput.compact(answer).utf8)
            return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
        } catch let e as OpenAIError {
            return e.response
        } catch {
            return OpenAIError(status: 500, type: "server_error", code: nil, message: "\(error)").response
        }
    }

    /// The request's meter record, appended (and flushed) before the response ends.
    func record(_ done: TextCompletion, id: String, at: Int64, key: APIKeyRecord, generator gen: TextGenerator,
                sampling: SamplingParameters, versions: [String]) throws -> MeterRecord {
        let tokens = done.outcome.fedTokens.prefix(done.promptTokens) + done.tokens
        guard let price = MeterRecord.price(tokens: done.promptTokens + done.tokens.count, pricePer1k: key.pricePer1kTokens) else {
            throw CoreError("the price of \(done.promptTokens + done.tokens.count) tokens overflows")
        }
        let versionSet = gen.served.versionSetHash
        let receipt = try RoutingReceipt.make(versionSet: versionSet, tokens: Array(tokens), choices: done.outcome.cache.choices, key: serverKey)
        let record = MeterRecord(id: id, at: at, period: MeterRecord.period(at: at, seconds: policy.periodSeconds), domain: key.domain,
                                 apiKey: String(key.hash.prefix(16)), promptTokens: done.promptTokens, completionTokens: done.tokens.count,
                                 price: price, pricePer1kTokens: key.pricePer1kTokens, versionSet: versionSet, versionChoices: versions, usage: done.usage, receipt: receipt, tokens: Array(tokens), sampling: sampling)
        try meter.append(record)
        CrashPoint.reach("serving.metered")
        return record
    }

    static let maxBodyBytes = 1 << 20

    static func event<T: Encodable>(_ value: T) throws -> String { "data: " + (try JSONOutput.compact(value)) + "\n\n" }
}

/// OpenAI's error object: {"error": {"message", "type", "param", "code"}}.
struct OpenAIError: Error {
    var status: Int
    var type: String
    var code: String?
    var param: String? = nil
    var message: String

    var response: Response {
        struct Body: Encodable {
            struct E: Encodable { var message: String; var type: String; var param: String?; var code: String?
                func encode(to encoder: Encoder) throws {
                    var c = encoder.container(keyedBy: CodingKeys.self)
                    try c.encode(message, forKey: .message); try c.encode(type, forKey: .type)
                    try c.encode(param, forKey: .param); try c.encode(code, forKey: .code)
                }
                enum CodingKeys: String, CodingKey { case message, type, param, code }
            }
            var error: E
        }
        let bytes = Array(((try? JSONOutput.compact(Body(error: .init(message: message, type: type, param: param, code: code)))) ?? "{}").utf8)
        return Response(status: .init(code: status), headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
    }
}
