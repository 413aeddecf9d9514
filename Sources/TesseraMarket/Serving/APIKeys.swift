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

    /// Makes a key for `domain`, writes its secret to `out` (which must not exist, mode
    /// 0600) and its record to the market. Checks everything before writing either.
    public static func issue(market: String, domain: String, pricePer1kTokens: Int64, at: Int64, out: String) throws -> APIKeyRecord {
        guard !FileManager.default.fileExists(atPath: out) else { throw CoreError("\(out) exists; an API key is written to a new file") }
        let existing = try load(market: market)
        var raw = [UInt8](repeating: 0, count: 32)
        var rng = SystemRandomNumberGenerator()
        for i in raw.indices { raw[i] = UInt8.random(in: 0...255, using: &rng) }
        let secret = prefix + Hex.encode(raw)
        let record = APIKeyRecord(hash: ContentHash.sha256(Array(secret.utf8)), domain: domain, pricePer1kTokens: pricePer1kTokens, issuedAt: at)
        guard FileManager.default.createFile(atPath: out, contents: Data((secret + "\n").utf8), attributes: [.posixPermissions: 0o600]) else {
            throw CoreError("\(out): cannot be written")
        }
        let path = path(market: market)
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try AtomicFile.write(try JSONOutput.pretty(existing.records + [record]), to: path)
        return record
    }
}
