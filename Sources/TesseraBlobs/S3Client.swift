import AsyncHTTPClient
import Crypto
import Foundation
import NIOCore
import NIOHTTP1
import TesseraCore

/// GET, PUT and HEAD of single objects in an S3-compatible store, signed with SigV4,
/// streamed to and from files, every object's SHA-256 checked on the way in (S3 itself
/// refuses a PUT whose body does not match the signed `x-amz-content-sha256`) and on the
/// way out.
public final class S3Client: Sendable {
    public let location: S3Location
    let signer: SigV4
    let http: HTTPClient

    public init(location: S3Location, environment: [String: String] = ProcessInfo.processInfo.environment, http: HTTPClient = .shared) throws {
        guard let id = environment["AWS_ACCESS_KEY_ID"], let secret = environment["AWS_SECRET_ACCESS_KEY"] else {
            throw CoreError("blob store \(location): AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must be set")
        }
        self.location = location
        signer = SigV4(accessKey: id, secretKey: secret, sessionToken: environment["AWS_SESSION_TOKEN"], region: location.region)
        self.http = http
    }

    var host: String {
        let u = URLComponents(string: location.endpoint)
        return (u?.host ?? "") + (u?.port.map { ":\($0)" } ?? "")
    }

    func path(_ key: String) -> String { "/\(location.bucket)" + (key.isEmpty ? "" : "/\(key)") }

    private func request(_ method: HTTPMethod, key: String, payloadHash: String, extra: [(String, String)] = []) -> HTTPClientRequest {
        let p = path(key)
        var r = HTTPClientRequest(url: location.endpoint + SigV4.encode(p, keepSlash: true))
        r.method = method
        for (k, v) in extra { r.headers.add(name: k, value: v) }
        for (k, v) in signer.sign(method: method.rawValue, path: p, headers: [("host", host)] + extra, payloadHash: payloadHash) {
            r.headers.add(name: k, value: v)
        }
        return r
    }

    private func failure(_ what: String, _ key: String, _ response: HTTPClientResponse) async -> CoreError {
        let body = (try? await response.body.collect(upTo: 64 << 10)).map { String(buffer: $0) } ?? ""
        let code = body.range(of: "<Code>").flatMap { a in body.range(of: "</Code>").map { String(body[a.upperBound..<$0.lowerBound]) } }
        return CoreError("blob store \(location): \(what) \(key): HTTP \(response.status.code)\(code.map { " \($0)" } ?? "")")
    }

    /// Creates the bucket when it does not exist (for tests and first runs).
    public func createBucketIfMissing() async throws {
        let r = request(.PUT, key: "", payloadHash: SigV4.emptyPayloadHash)
        let response = try await http.execute(r, timeout: .seconds(60))
        guard response.status == .ok || response.status == .conflict else { throw await failure("create bucket", location.bucket, response) }
        _ = try await response.body.collect(upTo: 1 << 20)
    }

    /// The object's size, or nil when there is none.
    public func size(_ key: String) async throws -> Int64? {
        let response = try await http.execute(request(.HEAD, key: key, payloadHash: SigV4.emptyPayloadHash), timeout: .seconds(60))
        if response.status == .notFound { return nil }
        guard response.status == .ok else { throw await failure("HEAD", key, response) }
        return response.headers.first(name: "content-length").flatMap { Int64($0) }
    }

    /// Uploads a file whose SHA-256 (hex) is `sha256`; the store checks the body against it.
    public func put(_ key: String, file: String, sha256: String) async throws {
        let size = try (FileManager.default.attributesOfItem(atPath: file)[.size] as? NSNumber)?.int64Value ?? 0
        var r = request(.PUT, key: key, payloadHash: sha256, extra: [("content-length", String(size))])
        r.headers.remove(name: "content-length")
        r.body = .stream(try FileChunks(path: file), length: .known(size))
        let response = try await http.execute(r, timeout: .seconds(3600))
        guard response.status == .ok else { throw await failure("PUT", key, response) }
        _ = try await response.body.collect(upTo: 1 << 20)
    }

    /// Downloads an object into `file` (written beside it and renamed when whole), checking
    /// its SHA-256 against `sha256` when given (otherwise the caller checks what it holds).
    /// False when there is no such object.
    public func get(_ key: String, to file: String, sha256: String?) async throws -> Bool {
        let response = try await http.execute(request(.GET, key: key, payloadHash: SigV4.emptyPayloadHash), timeout: .seconds(3600))
        if response.status == .notFound { return false }
        guard response.status == .ok else { throw await failure("GET", key, response) }
        let partial = file + ".partial-\(getpid())"
        guard FileManager.default.createFile(atPath: partial, contents: nil), let out = FileHandle(forWritingAtPath: partial) else {
            throw CoreError("cannot write \(partial)")
        }
        var hasher = SHA256()
        do {
            for try await buffer in response.body {
                buffer.withUnsafeReadableBytes { hasher.update(bufferPointer: $0) }
                try out.write(contentsOf: Data(buffer.readableBytesView))
            }
            try out.synchronize()
            try out.close()
            let got = SigV4.hex(hasher.finalize())
            guard sha256 == nil || got == sha256 else {
                throw CoreError("blob store \(location): \(key) has SHA-256 \(got.prefix(12)), expected \((sha256 ?? "").prefix(12)); not kept")
            }
            if FileManager.default.fileExists(atPath: file) { try FileManager.default.removeItem(atPath: file) }
            try FileManager.default.moveItem(atPath: partial, toPath: file)
            return true
        } catch {
            try? out.close()
            try? FileManager.default.removeItem(atPath: partial)
            throw error
        }
    }

    /// A URL anyone holding it can GET the object with, for `expires` seconds.
    public func presignedURL(_ key: String, expires: Int = 3600) -> String {
        let p = path(key)
        return location.endpoint + SigV4.encode(p, keepSlash: true) + "?" + signer.presignedQuery(method: "GET", path: p, host: host, expires: expires)
    }
}

/// A file read in 1 MiB buffers, for streamed uploads.
struct FileChunks: AsyncSequence, Sendable {
    typealias Element = ByteBuffer
    let handle: FileHandle
    init(path: String) throws {
        guard let h = FileHandle(forReadingAtPath: path) else { throw CoreError("cannot read \(path)") }
        handle = h
    }
    struct AsyncIterator: AsyncIteratorProtocol {
        let handle: FileHandle
        mutating func next() async throws -> ByteBuffer? {
            guard let data = try handle.read(upToCount: 1 << 20), !data.isEmpty else {
                try? handle.close()
                return nil
            }
            return ByteBuffer(bytes: data)
        }
    }
    func makeAsyncIterator() -> AsyncIterator { AsyncIterator(handle: handle) }
}
