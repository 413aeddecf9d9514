import Foundation
import TesseraCore

/// An API key for /v1/completions as the market stores it: only the SHA-256 of the secret,
/// the domain it serves and the price per thousand tokens when it was issued.
public struct APIKeyRecord: Codable, Sendable, Equatable {
    public var hash: String
    public var domain: String
    public var pricePer1kTokens: Int64
    public var issuedAt: Int64
    enum CodingKeys: String, CodingKey { case hash, domain, pricePer1kTokens = "price_per_1k_tokens", issuedAt = "issued_at" }
    public init(hash: String, domain: String, pricePer1kTokens: Int64, issuedAt: Int64) {
        self.hash = hash; self.domain = domain; self.pricePer1kTokens = pricePer1kTokens; self.issuedAt = issuedAt
    }
}

/// MARKET/serving/api-keys.json. The secret is shown once, written to the operator's
/// file; the market keeps its hash, so a copy of the market directory cannot spend it.
public struct APIKeys: Sendable {
    public let records: [APIKeyRecord]

    public static func path(market: String) -> String { (market as NSString).appendingPathComponent("serving/api-keys.json") }
    public static let prefix = "tsk-"

    public static func load(market: String) throws -> APIKeys {
        let path = path(market: market)
        guard let data = FileManager.default.contents(atPath: path) else { return APIKeys(records: []) }
        return APIKeys(records: try StrictJSON.decode([APIKeyRecord].self, from: data, file: path, rejectUnknownKeys: true))
    }

    public func record(forSecret secret: String) -> APIKeyRecord? {
        guard secret.hasPrefix(Self.prefix), secret.utf8.count == Self.prefix.utf8.count + 64 else { return nil }
        let hash = ContentHash.sha256(Array(secret.utf8))
        return records.first { $0.hash == hash }
    }

    /// A new secret and its hash (what the market stores).
    public static func makeSecret() -> (secret: String, hash: String) {
        var rng = SystemRandomNumberGenerator()
        let secret = prefix + Hex.encode((0..<32).map { _ in UInt8.random(in: 0...255, using: &rng) })
        return (secret, ContentHash.sha256(Array(secret.utf8)))
    }

    /// The bytes the operator signs to register a key's hash on a server.
    public static func signedBytes(domain: String, hash: String) -> [UInt8] { Array("tessera-api-key/1|\(domain)|\(hash)".utf8) }

    /// Writes a secret to `out`, which must not exist (mode 0600).
    public static func writeSecret(_ secret: String, to out: String) throws {
        guard !FileManager.default.fileExists(atPath: out) else { throw CoreError("\(out) exists; an API key is written to a new file") }
        guard FileManager.default.createFile(atPath: out, contents: Data((secret + "\n").utf8), attributes: [.posixPermissions: 0o600]) else {
            throw CoreError("\(out): cannot be written")
        }
    }

    private static let storeLock = NSLock()

    /// Adds a record to the market's keys (a hash stored twice is stored once).
    public static func store(_ record: APIKeyRecord, market: String) throws {
        guard ContentHash.isValid(record.hash) else { throw CoreError("API key hash \(record.hash.prefix(80)) is not a SHA-256 hex digest") }
        try storeLock.withLock {
            let existing = try load(market: market)
            guard !existing.records.contains(where: { $0.hash == record.hash }) else { return }
            let path = path(market: market)
            try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try AtomicFile.write(try JSONOutput.pretty(existing.records + [record]), to: path)
        }
    }

    /// Makes a key for `domain`, writes its secret to `out` (which must not exist, mode
    /// 0600) and its record to the market.
    public static func issue(market: String, domain: String, pricePer1kTokens: Int64, at: Int64, out: String) throws -> APIKeyRecord {
        _ = try load(market: market)
        let (secret, hash) = makeSecret()
        let record = APIKeyRecord(hash: hash, domain: domain, pricePer1kTokens: pricePer1kTokens, issuedAt: at)
        try writeSecret(secret, to: out)
        do { try store(record, market: market) } catch {
            try? FileManager.default.removeItem(atPath: out)
            throw error
        }
        return record
    }
}
