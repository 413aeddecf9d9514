import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import TesseraCore
import TesseraLedger
import TesseraLibrary
import TesseraMarket

/// A market reached over HTTP (`tessera serve` on some machine): the same operations as a
/// market directory, with the same answers. Requests that failed to reach the server (it
/// restarted, say) are tried again for up to `retryFor` seconds: every write is safe to
/// repeat (an action recorded twice is recorded once; uploads are content-addressed).
public final class RemoteMarket: MarketConnection, @unchecked Sendable {
    public let base: String
    public var location: String { base }
    public var retryFor: Double = 60
    let client: HTTPClient

    public init(url: String, client: HTTPClient = .shared) throws {
        var u = url
        while u.hasSuffix("/") { u.removeLast() }
        guard let parsed = URL(string: u), ["http", "https"].contains(parsed.scheme ?? ""), parsed.host != nil else {
            throw CoreError("\(url) is not an http(s) URL of a market")
        }
        base = u
        self.client = client
    }

    // MARK: requests

    struct Reply {
        var status: Int
        var headers: HTTPHeaders
        var body: ByteBuffer
    }

    /// Sends a request, retrying while the server cannot be reached; an HTTP answer
    /// (whatever its status) ends the attempts.
    func send(_ method: HTTPMethod, _ path: String, body: [UInt8]? = nil, headers: [(String, String)] = [],
              timeout: Double = 120, maxBytes: Int = 512 << 20) async throws -> Reply {
        let deadline = Date().addingTimeInterval(retryFor)
        var delay = 0.1
        while true {
            var request = HTTPClientRequest(url: base + path)
            request.method = method
            for (k, v) in headers { request.headers.add(name: k, value: v) }
            if let body {
                request.body = .bytes(ByteBuffer(bytes: body))
                request.headers.add(name: "Content-Type", value: "application/octet-stream")
            }
            do {
                let response = try await client.execute(request, timeout: .seconds(Int64(timeout.rounded(.up))))
                let data = try await response.body.collect(upTo: maxBytes)
                return Reply(status: Int(response.status.code), headers: response.headers, body: data)
            } catch let error where Self.isTransient(error) && Date() < deadline {
                try await Task.sleep(nanoseconds: UInt64(delay * 1e9))
                delay = min(delay * 2, 2)
            }
        }
    }

    static func isTransient(_ error: Error) -> Bool {
        if error is NIOConnectionError { return true }
        if let e = error as? HTTPClientError {
            return [HTTPClientError.remoteConnectionClosed, .connectTimeout, .readTimeout, .deadlineExceeded].contains(e)
        }
        if let e = error as? IOError { return [ECONNREFUSED, ECONNRESET, EPIPE].contains(e.errnoCode) }
        let text = "\(error)"
        return text.contains("connectionRefused") || text.contains("Connection refused") || text.contains("connect(descriptor")
    }

    /// The body of a 2xx answer, or the server's refusal as the error a local market throws.
    func ok(_ reply: Reply, _ what: String) throws -> ByteBuffer {
        guard (200..<300).contains(reply.status) else { throw Self.error(reply, what) }
        return reply.body
    }

    static func error(_ reply: Reply, _ what: String) -> Error {
        struct Body: Decodable { struct E: Decodable { var code: String; var message: String }; var error: E }
        let parsed = try? StrictJSON.decode(Body.self, from: Data(reply.body.readableBytesView), file: "error")
        let message = parsed?.error.message ?? String(decoding: reply.body.readableBytesView.prefix(300), as: UTF8.self)
        switch (reply.status, parsed?.error.code) {
        case (409, _), (401, "bad_signature"), (403, "not_allowed"): return LedgerError.refused(message)
        case (400, _): return MarketError.badRequest(message)
        case (401, _): return MarketError.unauthorized(message)
        case (403, _): return MarketError.forbidden(message)
        case (404, _): return MarketError.notFound(message)
        case (413, _): return MarketError.tooLarge(message)
        case (425, _): return MarketError.tooEarly(message)
        default: return MarketError.corrupt("\(what): HTTP \(reply.status): \(message)")
        }
    }

    func get<T: Decodable>(_ type: T.Type, _ path: String) async throws -> T {
        let body = try ok(try await send(.GET, path), "GET \(path)")
        return try StrictJSON.decode(type, from: Data(body.readableBytesView), file: base + path)
    }

    func getBytes(_ path: String) async throws -> Data {
        Data(try ok(try await send(.GET, path), "GET \(path)").readableBytesView)
    }

    static func escape(_ s: String) -> String {
        s.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed.subtracting(CharacterSet(charactersIn: "/?#"))) ?? s
    }

    // MARK: MarketConnection

    public func summary() async throws -> MarketSummary { try await get(MarketSummary.self, "/v1/market") }
    public func policyText() async throws -> Data { try await getBytes("/v1/policy") }
    public func domainText(_ name: String) async throws -> Data { try await getBytes("/v1/domains/\(Self.escape(name))") }
    public func libraryManifest() async throws -> Data { try await getBytes("/v1/library/manifest") }
    public func libraryConfig() async throws -> Data { try await getBytes("/v1/library/config") }

    /// Streams the shard into `PATH.partial`, resuming from what is there (a `Range`
    /// request) after a kill or a dropped connection, and moves it into place once its
    /// hash is right. Memory stays at one network buffer whatever the shard's size.
    public func downloadShard(_ hash: String, to path: String) async throws {
        guard ContentHash.isValid(hash) else { throw MarketError.badRequest("\(hash.prefix(80)) is not a shard hash") }
        let partial = path + ".partial"
        let fm = FileManager.default
        let deadline = Date().addingTimeInterval(retryFor)
        var restarted = false
        while true {
            let have = fm.fileExists(atPath: partial) ? ((try? fm.attributesOfItem(atPath: partial)[.size] as? Int) ?? 0) : 0
            var request = HTTPClientRequest(url: base + "/v1/shards/\(hash)")
            if have > 0 { request.headers.add(name: "Range", value: "bytes=\(have)-") }
            do {
                let response = try await client.execute(request, timeout: .seconds(600))
                let status = Int(response.status.code)
                if status == 416 && !restarted {
                    // The partial file is as long as the shard or longer: start again.
                    try? fm.removeItem(atPath: partial)
                    restarted = true
                    continue
                }
                guard status == 200 || status == 206 else {
                    throw Self.error(Reply(status: status, headers: response.headers, body: try await response.body.collect(upTo: 1 << 20)),
                                     "shard \(hash.prefix(12))")
                }
                if status == 200 || !fm.fileExists(atPath: partial) { _ = fm.createFile(atPath: partial, contents: nil) }
                guard let handle = FileHandle(forWritingAtPath: partial) else { throw CoreError("\(partial): cannot write") }
                defer { try? handle.close() }
                try handle.seekToEnd()
                for try await buffer in response.body { try handle.write(contentsOf: Data(buffer.readableBytesView)) }
                try handle.synchronize()
                break
            } catch let error where Self.isTransient(error) && Date() < deadline {
                try await Task.sleep(nanoseconds: 200_000_000)
            }
        }
        guard try ContentHash.sha256(file: partial) == hash else {
            try? fm.removeItem(atPath: partial)
            throw MarketError.corrupt("shard \(hash.prefix(12)) from \(base) does not hash to its name")
        }
        guard rename(partial, path) == 0 else { throw CoreError("\(path): cannot move the shard into place") }
    }

    public func post(_ action: SignedAction) async throws -> Ledger.Outcome {
        let body = Array(try JSONOutput.compact(try ActionEnvelope(action)).utf8)
        let reply = try await send(.POST, "/v1/actions", body: body, headers: [("Content-Type", "application/json")])
        return try StrictJSON.decode(ActionReceipt.self, from: Data(try ok(reply, "action").readableBytesView), file: "receipt").outcome
    }

    public func events(since: Int64, limit: Int, wait: Double) async throws -> [StoredEvent] {
        let body = try ok(try await send(.GET, "/v1/events?since=\(since)&limit=\(limit)&wait=\(wait)", timeout: wait + 30), "events")
        return try StrictJSON.decode([StoredEvent].self, from: Data(body.readableBytesView), file: "events")
    }

    public func shares(owner: String) async throws -> SharesReport { try await get(SharesReport.self, "/v1/shares/\(Self.escape(owner))") }

    public func expert(_ id: ExpertID) async throws -> Ledger.ExpertReport? {
        let reply = try await send(.GET, "/v1/experts/\(id.layer):\(id.expert)")
        if reply.status == 404 { return nil }
        return try StrictJSON.decode(Ledger.ExpertReport.self, from: Data(try ok(reply, "expert").readableBytesView), file: "expert")
    }

    public func rounds() async throws -> [String] { try await get([String].self, "/v1/rounds") }

    public func round(_ id: String) async throws -> Ledger.RoundReport? {
        let reply = try await send(.GET, "/v1/rounds/\(Self.escape(id))")
        if reply.status == 404 { return nil }
        return try StrictJSON.decode(Ledger.RoundReport.self, from: Data(try ok(reply, "round").readableBytesView), file: "round")
    }

    public func payouts(event: Int64?) async throws -> [Ledger.Payout] {
        try await get([Ledger.Payout].self, "/v1/payouts" + (event.map { "?event=\($0)" } ?? ""))
    }

    public func verify() async throws -> VerifyReport { try await get(VerifyReport.self, "/v1/verify") }

    /// Replays every event under the market's policy, checking each signature, each
    /// event's hash and its link to the one before: a client trusts the chain, not the server.
    public func state() async throws -> LedgerState {
        let policy = try MarketPolicy.parse(String(decoding: try await policyText(), as: UTF8.self), file: base + "/v1/policy")
        var state = LedgerState(policy: policy)
        while true {
            let page = try await events(since: state.seq, limit: 10_000, wait: 0)
            if page.isEmpty { return state }
            for e in page {
                guard e.seq == state.seq + 1, e.prevHash == state.headHash,
                      e.hash == Ledger.eventHash(seq: e.seq, kind: e.kind, payload: e.payload, actor: e.actor, signature: e.signature, prev: e.prevHash) else {
                    throw LedgerError.corrupt("event \(e.seq) from \(base) does not link to the chain")
                }
                let action = try LedgerAction.decode(kind: e.kind, payload: e.payload)
                _ = try state.apply(try SignedAction(action: action, actor: e.actor, signature: e.signature), seq: e.seq, hash: e.hash, checkSignature: true)
            }
        }
    }

    public func uploadBundle(_ dir: String) async throws -> String {
        let archive = try BundleArchive.pack(dir)
        let reply = try await send(.PUT, "/v1/bundles", body: archive, timeout: 600)
        struct Stored: Decodable { var submission: String }
        return try StrictJSON.decode(Stored.self, from: Data(try ok(reply, "bundle upload").readableBytesView), file: "upload").submission
    }

    public func downloadBundle(_ submission: String, to dir: String) async throws {
        guard ContentHash.isValid(submission) else { throw MarketError.badRequest("\(submission.prefix(80)) is not a submission hash") }
        let body = try ok(try await send(.GET, "/v1/bundles/\(submission)", timeout: 600), "bundle \(submission.prefix(12))")
        let tmp = NSTemporaryDirectory() + "tessera-bundle-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: tmp) }
        try AtomicFile.write(Array(body.readableBytesView), to: tmp)
        try BundleArchive.unpack(tmp, into: dir, maxBytes: 16 << 30)
        guard try SubmissionBundle.submissionRecord(dir).hash == submission else {
            throw MarketError.corrupt("the bundle \(base) sent for \(submission.prefix(12)) is another one")
        }
    }

    /// A seeded sample of the server's meter, read as `key` (a registered participant).
    public func meterSample(_ sample: Int, seed: UInt64, signedBy key: ParticipantKey) async throws -> [MeterRecord] {
        let sig = Hex.encode(try key.sign(Audit.sampleRequestBytes(sample: sample, seed: seed)))
        let reply = try await send(.GET, "/v1/meter/sample?n=\(sample)&seed=\(seed)", headers: [("Tessera-Key", key.publicHex), ("Tessera-Signature", sig)],
                                   maxBytes: 1 << 30)
        return try StrictJSON.decode([MeterRecord].self, from: Data(try ok(reply, "meter sample").readableBytesView), file: base + "/v1/meter/sample",
                                     rejectUnknownKeys: true)
    }

    /// A receipt's status (nil: the server metered no request with it).
    public func receiptStatus(_ hash: String) async throws -> ReceiptStatus? {
        let reply = try await send(.GET, "/v1/receipts/\(hash)")
        if reply.status == 404 { return nil }
        return try StrictJSON.decode(ReceiptStatus.self, from: Data(try ok(reply, "receipt status").readableBytesView), file: base + "/v1/receipts/\(hash.prefix(12))", rejectUnknownKeys: true)
    }

    /// Registers an API key's hash for `domain` (operator).
    public func registerAPIKey(hash: String, domain: String, signedBy key: ParticipantKey) async throws {
        let sig = Hex.encode(try key.sign(APIKeys.signedBytes(domain: domain, hash: hash)))
        let reply = try await send(.PUT, "/v1/api-keys/\(hash)?domain=\(Self.escape(domain))", headers: [("Tessera-Key", key.publicHex), ("Tessera-Signature", sig)])
        _ = try ok(reply, "API key registration")
    }

    public func uploadShard(_ path: String, signedBy key: ParticipantKey) async throws -> String {
        guard let data = FileManager.default.contents(atPath: path) else { throw CoreError("\(path): cannot read") }
        let hash = ContentHash.sha256(Array(data))
        let sig = Hex.encode(try key.sign(Array("tessera-upload-shard/1|\(hash)".utf8)))
        let reply = try await send(.PUT, "/v1/shards/\(hash)", body: Array(data), headers: [("Tessera-Key", key.publicHex), ("Tessera-Signature", sig)],
                                   timeout: 600)
        _ = try ok(reply, "shard upload")
        return hash
    }
}

/// Opens a market by what the user typed: an http(s) URL, or a market directory.
public enum Markets {
    public static func open(_ location: String) throws -> any MarketConnection { try open(location, database: nil) }

    /// `database`: the directory's ledger in this PostgreSQL database (see `MarketDirectory`).
    public static func open(_ location: String, database: String?) throws -> any MarketConnection {
        if location.hasPrefix("http://") || location.hasPrefix("https://") { return try RemoteMarket(url: location) }
        return try LocalMarket(directory: MarketDirectory(path: location, database: database))
    }
}
