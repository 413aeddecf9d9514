import Foundation
import HTTPTypes
import Hummingbird
import Logging
import Metrics
import NIOCore
import TesseraCore
import TesseraLedger
import TesseraLibrary
import TesseraMarket

/// How a market server runs.
public struct ServerConfiguration: Sendable {
    public var host = "127.0.0.1"
    public var port = 8080
    /// Writes (actions, uploads) per second each key may make, and the burst it may save up.
    public var writesPerSecondPerKey: Double = 500
    public var writeBurst: Double = 1000
    /// How far an action's time may be from the server's clock, in seconds (nil: any).
    public var clockSkew: Int64? = 600
    /// Largest action body, in bytes (a signed action is a few hundred).
    public var maxActionBytes = 64 << 10
    /// Connections with nothing to read or write for this long are closed.
    public var idleTimeout: Double = 30
    public var logLevel: Logger.Level = .info
    /// Shards and bundles also in an S3-compatible store shared with other servers.
    public var blobs: BlobMirror?
    /// Text completions on the market's model (nil: POST /v1/completions answers 404).
    public var completions: CompletionService?
    public init() {}
}

/// The request context: a small default body cap (routes that take large bodies stream
/// them to disk with caps of their own).
public struct MarketRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    public init(source: Source) { coreContext = .init(source: source) }
    public var maxUploadSize: Int { 64 << 10 }
}

/// The HTTP face of a market directory: routes read like a table, and every decision is
/// the ledger's, the library's or the market's (`LocalMarket`); the server authenticates
/// (signatures), limits (sizes, rates), batches (group commit) and serializes.
public final class MarketServer: Sendable {
    public let market: LocalMarket
    public let configuration: ServerConfiguration
    let committer: GroupCommitter
    let limiter: RateLimiter
    let metrics = ServerMetrics.shared

    public init(market: LocalMarket, configuration: ServerConfiguration = ServerConfiguration()) {
        self.market = market
        self.configuration = configuration
        market.clockSkewLimit = configuration.clockSkew
        let metrics = ServerMetrics.shared
        committer = GroupCommitter(market: market) { metrics.eventsAppended.increment(by: $0) }
        limiter = RateLimiter(perSecond: configuration.writesPerSecondPerKey, burst: configuration.writeBurst)
    }

    public func buildRouter() -> Router<MarketRequestContext> { routing().router }

    /// Every route as it is registered (method, path): `RouterTests` compares them with the
    /// OpenAPI document, both ways.
    public func registeredRoutes() -> [(method: String, path: String)] { routing().table }

    func routing() -> RouteRecorder {
        let router = RouteRecorder()
        router.router.add(middleware: AccessLogMiddleware())
        router.router.add(middleware: MetricsMiddleware())
        router.router.add(middleware: ErrorMiddleware(routes: router.routes))
        router.get("/healthz") { _, _ in try await self.json(Health(status: "ok", events: try await self.market.summary().events)) }
        router.get("/metrics") { _, _ in
            Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4"], body: .init(byteBuffer: ByteBuffer(bytes: self.metrics.text())))
        }
        router.get("/v1/openapi.json") { _, _ in self.bytes(Array(OpenAPIDocument.json.utf8), type: "application/json") }
        router.get("/v1/market") { _, _ in try await self.json(try await self.market.summary()) }
        router.get("/v1/policy") { _, _ in self.bytes(Array(try await self.market.policyText()), type: "application/toml") }
        router.get("/v1/domains/{name}") { _, context in
            self.bytes(Array(try await self.market.domainText(try Self.parameter(context, "name"))), type: "application/toml")
        }
        router.get("/v1/library/manifest") { _, _ in
            // Versions another server of this market adopted are named here too.
            try await Blocking.run { try self.market.refreshLibrary() }
            return self.bytes(Array(try await self.market.libraryManifest()), type: "application/json")
        }
        router.get("/v1/library/config") { _, _ in self.bytes(Array(try await self.market.libraryConfig()), type: "application/json") }
        router.get("/v1/shards/{hash}") { request, context in try await self.shard(request, context) }
        router.put("/v1/shards/{hash}") { request, context in try await self.uploadShard(request, context) }
        router.post("/v1/actions") { request, context in try await self.postAction(request, context) }
        router.get("/v1/events") { request, _ in
            let q = request.uri.queryParameters
            let since = try Self.integer(q["since"].map(String.init), "since", default: 0, range: 0...Int64.max)
            let limit = try Self.integer(q["limit"].map(String.init), "limit", default: 1000, range: 1...10_000)
            let wait = try Self.number(q["wait"].map(String.init), "wait", default: 0, range: 0...60)
            return try await self.json(try await self.market.events(since: since, limit: Int(limit), wait: wait))
        }
        router.get("/v1/shares/{owner}") { _, context in
            let owner = try Self.parameter(context, "owner")
            guard ParticipantKey.isPublicKey(owner) else { throw MarketError.badRequest("owner \(owner.prefix(80)) is not a public key (64 lower-case hex digits)") }
            return try await self.json(try await self.market.shares(owner: owner))
        }
        router.get("/v1/experts/{expert}") { _, context in
            let text = try Self.parameter(context, "expert")
            let id: ExpertID
            do { id = try ExpertID(parsing: text) } catch { throw MarketError.badRequest("\(error)") }
            guard let report = try await self.market.expert(id) else { throw MarketError.notFound("expert \(id) is not in this market") }
            return try await self.json(report)
        }
        router.get("/v1/rounds") { _, _ in try await self.json(try await self.market.rounds()) }
        router.get("/v1/rounds/{round}") { _, context in
            let id = try Self.parameter(context, "round")
            guard let r = try await self.market.round(id) else {
                throw MarketError.notFound("no round \"\(id.prefix(80))\"; rounds: \(try await self.market.rounds().joined(separator: ", "))")
            }
            return try await self.json(r)
        }
        router.get("/v1/payouts") { request, _ in
            let event = try request.uri.queryParameters["event"].map { try Self.integer(String($0), "event", default: 0, range: 1...Int64.max) }
            return try await self.json(try await self.market.payouts(event: event))
        }
        router.get("/") { _, _ in self.html(DashboardPages.market(try await DashboardData.load(self.market))) }
        router.get("/experts/{expert}") { _, context in
            let id = try ExpertID(parsing: try Self.parameter(context, "expert"))
            guard let report = try await self.market.expert(id) else { throw MarketError.notFound("no expert \(id)") }
            return self.html(DashboardPages.expert(try await DashboardData.load(self.market), report))
        }
        router.get("/owners/{key}") { _, context in
            let key = try Self.parameter(context, "key")
            guard ParticipantKey.isPublicKey(key) else { throw MarketError.badRequest("\(key.prefix(80)) is not a public key") }
            return self.html(DashboardPages.owner(try await DashboardData.load(self.market), key: key, try await self.market.shares(owner: key)))
        }
        router.get("/validators/{key}") { _, context in
            let key = try Self.parameter(context, "key")
            guard ParticipantKey.isPublicKey(key) else { throw MarketError.badRequest("\(key.prefix(80)) is not a public key") }
            return self.html(DashboardPages.validator(try await DashboardData.load(self.market), key: key))
        }
        router.get("/v1/receipts/{hash}") { _, context in
            let hash = try Self.parameter(context, "hash")
            guard ContentHash.isValid(hash) else { throw MarketError.badRequest("\(hash.prefix(80)) is not a SHA-256 hex digest") }
            guard let status = try await ReceiptStatus.find(hash, market: self.market) else { throw MarketError.notFound("no metered request has receipt \(hash.prefix(12))…") }
            return try await self.json(status)
        }
        router.get("/v1/meter/sample") { request, _ in try await self.meterSample(request) }
        router.put("/v1/api-keys/{hash}") { request, context in try await self.registerAPIKey(request, context) }
        router.post("/v1/completions") { request, context in
            guard let service = self.configuration.completions else {
                return OpenAIError(status: 404, type: "invalid_request_error", code: "not_serving",
                                   message: "this server does not serve completions (start it with `tessera serve --serve-model`)").response
            }
            return try await service.handle(request, context)
        }
        router.get("/v1/verify") { _, _ in
            let market = self.market
            return try await self.json(try await Blocking.run { try market.checkLedger() })
        }
        router.put("/v1/bundles") { request, context in try await self.uploadBundle(request, context) }
        router.get("/v1/bundles/{submission}") { _, context in
            let submission = try Self.parameter(context, "submission")
            if let blobs = self.configuration.blobs, ContentHash.isValid(submission), (try? self.market.storedBundle(submission)) == nil {
                _ = try await blobs.fetchBundle(submission, into: self.market)
            }
            let dir = try self.market.storedBundle(submission)
            let archive = try BundleArchive.pack(dir)
            self.metrics.bytesServed.increment(by: archive.count)
            return self.bytes(archive, type: "application/octet-stream")
        }
        return router
    }

    /// The application: this router on HTTP/1.1 with an idle timeout, logging through
    /// swift-log. `onRunning` gets the port the server listens on once it does (the one
    /// the system chose when the configuration asks for port 0).
    public func buildApplication(onRunning: @escaping @Sendable (Int) async -> Void = { _ in }) -> some ApplicationProtocol {
        var logger = Logger(label: "tessera.server")
        logger.logLevel = configuration.logLevel
        return Application(
            router: buildRouter(),
            server: .http1(configuration: .init(idleTimeout: .nanoseconds(Int64(configuration.idleTimeout * 1e9)))),
            configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "tessera"),
            onServerRunning: { channel in await onRunning(channel.localAddress?.port ?? 0) },
            logger: logger)
    }

    // MARK: handlers

    func postAction(_ request: Request, _ context: MarketRequestContext) async throws -> Response {
        var request = request
        let body = try await Self.collect(&request, max: configuration.maxActionBytes, what: "an action")
        let envelope: ActionEnvelope
        do {
            envelope = try StrictJSON.decode(ActionEnvelope.self, from: Data(bytesOf: body), file: "request body", rejectUnknownKeys: true)
        } catch { throw MarketError.badRequest("\(error)") }
        guard ParticipantKey.isPublicKey(envelope.actor) else { throw MarketError.badRequest("actor is not a public key (64 lower-case hex digits)") }
        let action: SignedAction
        do { action = try envelope.signedAction() } catch { throw MarketError.badRequest("\(error)") }
        if let wait = limiter.take(action.actor) { throw RateLimited(seconds: wait) }
        // A new version's shard may have been uploaded to another server of this market.
        if let blobs = configuration.blobs, case let .newVersion(v) = action.action, ContentHash.isValid(v.version),
           !FileManager.default.fileExists(atPath: market.library.shardPath(v.version)) {
            _ = try await blobs.fetchShard(v.version, into: market.library)
        }
        do {
            return try await json(ActionReceipt(try await committer.append(action)))
        } catch let LedgerError.refused(why) where why.hasPrefix("bad signature") {
            limiter.refund(action.actor)
            throw LedgerError.refused(why)
        }
    }

    func shard(_ request: Request, _ context: MarketRequestContext) async throws -> Response {
        let hash = try Self.parameter(context, "hash")
        if let blobs = configuration.blobs, ContentHash.isValid(hash) {
            if blobs.redirect, try await blobs.s3.size(blobs.s3.location.key(BlobMirror.shardKey(hash))) != nil {
                return Response(status: .temporaryRedirect, headers: [.location: blobs.s3.presignedURL(blobs.s3.location.key(BlobMirror.shardKey(hash)), expires: 3600)])
            }
            if (try? market.shardFile(hash)) == nil {
                try await Blocking.run { try self.market.refreshLibrary() }
                _ = try await blobs.fetchShard(hash, into: market.library)
            }
        }
        let path = try market.shardFile(hash)
        let size = try Self.fileSize(path)
        let etag = "\"\(hash)\""
        var headers: HTTPFields = [.eTag: etag, .cacheControl: "public, max-age=31536000, immutable", .acceptRanges: "bytes",
                                   .contentType: "application/octet-stream"]
        if request.headers[.ifNoneMatch] == etag { return Response(status: .notModified, headers: headers) }
        var range = 0...max(size - 1, 0)
        var status = HTTPResponse.Status.ok
        if let text = request.headers[.range], size > 0 {
            guard let r = Self.byteRange(text, size: size) else {
                headers[.contentRange] = "bytes */\(size)"
                throw MarketError.rangeNotSatisfiable("range \(text.prefix(60)) is outside the \(size)-byte shard")
            }
            range = r
            status = .partialContent
            headers[.contentRange] = "bytes \(r.lowerBound)-\(r.upperBound)/\(size)"
        }
        headers[.contentLength] = String(size == 0 ? 0 : range.count)
        let body = size == 0 ? ResponseBody() : try await FileIO().loadFile(path: path, range: range, context: context)
        metrics.bytesServed.increment(by: size == 0 ? 0 : range.count)
        return Response(status: status, headers: headers, body: body)
    }

    func uploadShard(_ request: Request, _ context: MarketRequestContext) async throws -> Response {
        let hash = try Self.parameter(context, "hash")
        guard ContentHash.isValid(hash) else { throw MarketError.badRequest("\(hash.prefix(80)) is not a SHA-256 hex digest") }
        guard let key = request.headers[HTTPField.Name("Tessera-Key")!], let sig = request.headers[HTTPField.Name("Tessera-Signature")!],
              let sigBytes = Hex.decode(sig), sigBytes.count == 64, ParticipantKey.isPublicKey(key) else {
            throw MarketError.unauthorized("a shard upload carries Tessera-Key and Tessera-Signature (Ed25519 over tessera-upload-shard/1|HASH)")
        }
        guard ParticipantKey.verify(signature: sigBytes, of: Array("tessera-upload-shard/1|\(hash)".utf8), publicHex: key) else {
            throw MarketError.unauthorized("Tessera-Signature does not verify for key \(key.prefix(16))…")
        }
        guard key == (try await market.state().operatorKey) else { throw MarketError.forbidden("only the market operator stores new expert versions") }
        if let wait = limiter.take(key) { throw RateLimited(seconds: wait) }
        let cap = try market.library.maxExpertShardBytes()
        let tmp = try await Self.receive(request, max: cap, what: "an expert shard", context: context)
        defer { try? FileManager.default.removeItem(atPath: tmp) }
        guard try ContentHash.sha256(file: tmp) == hash else { throw MarketError.badRequest("the body does not hash to \(hash.prefix(12))") }
        let stored = try await Blocking.run { try self.market.intakeShard(tmp, uploader: key) }
        try await configuration.blobs?.putShard(stored, file: market.library.shardPath(stored))
        return try await json(Stored(hash: stored), status: .created)
    }

    /// A seeded sample of metered requests, tokens included, for an audit by a registered
    /// participant (the signature over tessera-meter-sample/1|N|SEED names who read them).
    func meterSample(_ request: Request) async throws -> Response {
        let sample = try Self.integer(request.uri.queryParameters.get("n"), "n", default: 20, range: 1...1_000)
        guard let seedText = request.uri.queryParameters.get("seed"), let seed = UInt64(seedText) else {
            throw MarketError.badRequest("seed must be an unsigned 64-bit integer")
        }
        guard let key = request.headers[HTTPField.Name("Tessera-Key")!], let sig = request.headers[HTTPField.Name("Tessera-Signature")!],
              let sigBytes = Hex.decode(sig), sigBytes.count == 64, ParticipantKey.isPublicKey(key) else {
            throw MarketError.unauthorized("reading the meter carries Tessera-Key and Tessera-Signature (Ed25519 over tessera-meter-sample/1|N|SEED)")
        }
        guard ParticipantKey.verify(signature: sigBytes, of: Audit.sampleRequestBytes(sample: Int(sample), seed: seed), publicHex: key) else {
            throw MarketError.unauthorized("Tessera-Signature does not verify for key \(key.prefix(16))…")
        }
        let state = try await market.state()
        guard key == state.operatorKey || state.participants[key] != nil else {
            throw MarketError.forbidden("only the market's registered participants read the meter")
        }
        let records = try await Blocking.run { try UsageMeter.records(market: self.market.directory.path) }
        return try await json(Audit.draw(records, sample: Int(sample), seed: seed))
    }

    /// The operator registers an API key by its hash (the secret never travels): signed
    /// over tessera-api-key/1|DOMAIN|HASH, the domain in the query.
    func registerAPIKey(_ request: Request, _ context: MarketRequestContext) async throws -> Response {
        let hash = try Self.parameter(context, "hash")
        guard ContentHash.isValid(hash) else { throw MarketError.badRequest("\(hash.prefix(80)) is not a SHA-256 hex digest") }
        guard let domain = request.uri.queryParameters.get("domain") else { throw MarketError.badRequest("the domain goes in ?domain=") }
        guard let key = request.headers[HTTPField.Name("Tessera-Key")!], let sig = request.headers[HTTPField.Name("Tessera-Signature")!],
              let sigBytes = Hex.decode(sig), sigBytes.count == 64, ParticipantKey.isPublicKey(key) else {
            throw MarketError.unauthorized("an API key registration carries Tessera-Key and Tessera-Signature (Ed25519 over tessera-api-key/1|DOMAIN|HASH)")
        }
        guard ParticipantKey.verify(signature: sigBytes, of: APIKeys.signedBytes(domain: domain, hash: hash), publicHex: key) else {
            throw MarketError.unauthorized("Tessera-Signature does not verify for key \(key.prefix(16))…")
        }
        guard key == (try await market.state().operatorKey) else { throw MarketError.forbidden("only the market operator issues API keys") }
        do { _ = try market.rules.domain(domain) } catch { throw MarketError.badRequest("\(error)") }
        let record = APIKeyRecord(hash: hash, domain: domain, pricePer1kTokens: market.rules.serving.pricePer1kTokens,
                                  issuedAt: Int64(Date().timeIntervalSince1970))
        try APIKeys.store(record, market: market.directory.path)
        return try await json(record, status: .created)
    }

    func uploadBundle(_ request: Request, _ context: MarketRequestContext) async throws -> Response {
        let cap = market.rules.bundles.maxBytes
        let tmp = try await Self.receive(request, max: cap + (1 << 20), what: "a bundle", context: context)
        let dir = tmp + ".d"
        defer {
            try? FileManager.default.removeItem(atPath: tmp)
            try? FileManager.default.removeItem(atPath: dir)
        }
        let submission = try await Blocking.run { () -> String in
            do { try BundleArchive.unpack(tmp, into: dir, maxBytes: cap) } catch { throw MarketError.badRequest("\(error)") }
            let contributor = try SubmissionBundle.contributor(of: dir)
            if let wait = self.limiter.take(contributor) { throw RateLimited(seconds: wait) }
            do { return try self.market.acceptBundle(directory: dir) } catch let e as LibraryError {
                self.limiter.refund(contributor)
                throw e
            }
        }
        // Written through before the answer: a client whose upload failed here sends it
        // again, and storing it locally again is a no-op.
        try await configuration.blobs?.putBundle(submission, archive: tmp)
        metrics.bundlesStored.increment()
        return try await json(SubmissionStored(submission: submission), status: .created)
    }

    // MARK: helpers

    func json<T: Encodable>(_ value: T, status: HTTPResponse.Status = .ok) async throws -> Response {
        bytes(Array(try JSONOutput.compact(value).utf8), type: "application/json", status: status)
    }

    func html(_ page: String) -> Response { bytes(Array(page.utf8), type: "text/html; charset=utf-8") }

    func bytes(_ b: [UInt8], type: String, status: HTTPResponse.Status = .ok) -> Response {
        Response(status: status, headers: [.contentType: type, .contentLength: String(b.count)], body: .init(byteBuffer: ByteBuffer(bytes: b)))
    }

    /// The whole body, refused with 413 past `max` (before reading when it declares its length).
    static func collect(_ request: inout Request, max: Int, what: String) async throws -> ByteBuffer {
        if let declared = request.headers[.contentLength].flatMap({ Int($0) }), declared > max {
            throw MarketError.tooLarge("\(what) of \(declared) bytes exceeds the \(max)-byte cap")
        }
        do { return try await request.body.collect(upTo: max) } catch {
            throw MarketError.tooLarge("\(what) exceeds the \(max)-byte cap")
        }
    }

    /// Streams the body to a temporary file, refusing it past `max` bytes (413 before
    /// reading when it declares its length). Returns the file's path.
    static func receive(_ request: Request, max: Int, what: String, context: MarketRequestContext) async throws -> String {
        if let declared = request.headers[.contentLength].flatMap({ Int($0) }), declared > max {
            throw MarketError.tooLarge("\(what) of \(declared) bytes exceeds the \(max)-byte cap")
        }
        let path = NSTemporaryDirectory() + "tessera-upload-\(UUID().uuidString)"
        guard FileManager.default.createFile(atPath: path, contents: nil), let handle = FileHandle(forWritingAtPath: path) else {
            throw MarketError.corrupt("cannot create a temporary file for the upload")
        }
        var received = 0
        do {
            for try await buffer in request.body {
                received += buffer.readableBytes
                guard received <= max else { throw MarketError.tooLarge("\(what) exceeds the \(max)-byte cap") }
                try handle.write(contentsOf: Data(bytesOf: buffer))
            }
            try handle.close()
        } catch {
            try? handle.close()
            try? FileManager.default.removeItem(atPath: path)
            throw error
        }
        return path
    }

    /// A path parameter, percent-decoded (`0%3A1` is `0:1`).
    static func parameter(_ context: MarketRequestContext, _ name: String) throws -> String {
        let raw = try context.parameters.require(name)
        return raw.removingPercentEncoding ?? raw
    }

    static func fileSize(_ path: String) throws -> Int {
        (try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
    }

    /// `bytes=a-b`, `bytes=a-` or `bytes=-n` within a file of `size` bytes.
    static func byteRange(_ header: String, size: Int) -> ClosedRange<Int>? {
        guard header.hasPrefix("bytes="), !header.contains(",") else { return nil }
        let spec = header.dropFirst(6).split(separator: "-", maxSplits: 1, omittingEmptySubsequences: false)
        guard spec.count == 2 else { return nil }
        let a = Int(spec[0]), b = Int(spec[1])
        switch (spec[0].isEmpty, spec[1].isEmpty) {
        case (false, false):
            guard let a, let b, a >= 0, a <= b, a < size else { return nil }
            return a...min(b, size - 1)
        case (false, true):
            guard let a, a >= 0, a < size else { return nil }
            return a...(size - 1)
        case (true, false):
            guard let b, b > 0 else { return nil }
            return max(0, size - b)...(size - 1)
        default: return nil
        }
    }

    static func integer(_ text: String?, _ name: String, default d: Int64, range: ClosedRange<Int64>) throws -> Int64 {
        guard let text else { return d }
        guard let v = Int64(text), range.contains(v) else { throw MarketError.badRequest("query \(name)=\(text.prefix(40)) is not an integer in \(range.lowerBound)...\(range.upperBound)") }
        return v
    }

    static func number(_ text: String?, _ name: String, default d: Double, range: ClosedRange<Double>) throws -> Double {
        guard let text else { return d }
        guard let v = Double(text), v.isFinite, range.contains(v) else { throw MarketError.badRequest("query \(name)=\(text.prefix(40)) is not a number in \(range.lowerBound)...\(range.upperBound)") }
        return v
    }
}

/// Registers routes on a router and keeps their list.
final class RouteRecorder: @unchecked Sendable {
    let router = Router(context: MarketRequestContext.self)
    /// Kept apart from the router: the error middleware inside the router reads it, and a
    /// middleware holding the recorder (and so the router) was a reference cycle that kept
    /// every server, and its market, alive after use.
    let routes = RouteTable()
    var table: [(method: String, path: String)] { routes.entries }

    func get<R: ResponseGenerator>(_ path: String, _ handler: @escaping @Sendable (Request, MarketRequestContext) async throws -> R) {
        routes.entries.append(("GET", path))
        router.get(RouterPath(path), use: handler)
    }
    func put<R: ResponseGenerator>(_ path: String, _ handler: @escaping @Sendable (Request, MarketRequestContext) async throws -> R) {
        routes.entries.append(("PUT", path))
        router.put(RouterPath(path), use: handler)
    }
    func post<R: ResponseGenerator>(_ path: String, _ handler: @escaping @Sendable (Request, MarketRequestContext) async throws -> R) {
        routes.entries.append(("POST", path))
        router.post(RouterPath(path), use: handler)
    }
}

/// The registered routes (method, path pattern); filled while the router is built, read-only after.
final class RouteTable: @unchecked Sendable {
    fileprivate(set) var entries: [(method: String, path: String)] = []

    /// The methods of the routes whose path pattern matches `path` (`{name}` matches one segment).
    func methods(matching path: String) -> [String] {
        let parts = path.split(separator: "/", omittingEmptySubsequences: false)
        return entries.filter { route in
            let pattern = route.path.split(separator: "/", omittingEmptySubsequences: false)
            return pattern.count == parts.count && zip(pattern, parts).allSatisfy { $0.hasPrefix("{") || $0 == $1 }
        }.map(\.method)
    }
}

struct Health: Codable { var status: String; var events: Int64 }
struct Stored: Codable { var hash: String }
struct SubmissionStored: Codable { var submission: String }
struct RateLimited: Error { var seconds: Double }

extension Data {
    init(bytesOf buffer: ByteBuffer) { self = buffer.getData(at: buffer.readerIndex, length: buffer.readableBytes) ?? Data() }
}
