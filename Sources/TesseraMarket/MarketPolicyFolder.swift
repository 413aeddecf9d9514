import Foundation
import TesseraCore
import TesseraLedger
import TesseraProof

/// Market/domains/NAME.toml: one open domain and where its text comes from.
public struct DomainPolicy: Sendable, Equatable, Codable {
    public var name: String
    public var description: String
    public var language: String
    /// The Debian package the text comes from, and where it puts the text.
    public var source: String
    public var text: String
    /// Share of the domain's text held out by the validators' keyed hash, in basis points.
    public var heldOutBps: Int64

    enum CodingKeys: String, CodingKey {
        case name, description, language, source, text
        case heldOutBps = "held_out_bps"
    }

    struct File: Decodable { var domain: DomainPolicy }

    public static func parse(_ text: String, file: String) throws -> DomainPolicy {
        try read(try PolicyFile.parse(text, file: file), file: file)
    }

    static func read(_ document: JSONValue, file: String) throws -> DomainPolicy {
        let d = try PolicyFile.decode(File.self, tables: ["domain"], of: document, file: file).domain
        try PolicyFile.requireOnly(["domain"], in: document, file: file)
        let c = PolicyChecker(file: file)
        try c.require(!d.name.isEmpty && d.name.unicodeScalars.allSatisfy { ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "_" || $0 == "-" },
                      "domain.name \"\(d.name)\" must be lower-case letters, digits, _ or -")
        try c.require(d.name == (file as NSString).lastPathComponent.replacingOccurrences(of: ".toml", with: ""),
                      "domain.name \"\(d.name)\" must match the file name")
        for (key, value) in [("description", d.description), ("language", d.language), ("source", d.source), ("text", d.text)] {
            try c.require(!value.isEmpty, "domain.\(key) must be a non-empty string")
        }
        try c.require(d.heldOutBps, in: 1...9_999, "domain.held_out_bps")
        return d
    }

    /// Every `*.toml` in a folder, sorted by name.
    public static func loadAll(_ dir: String) throws -> [DomainPolicy] {
        let files = ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).filter { $0.hasSuffix(".toml") }.sorted()
        return try files.map { f in
            let path = (dir as NSString).appendingPathComponent(f)
            return try read(try PolicyFile.read(path), file: path)
        }
    }
}

/// market.toml's [bundles] table, the market's own: how large a submission bundle may be
/// (checked before its bytes are read). Optional: markets made before it existed take the
/// default.
public struct BundlePolicy: Sendable, Equatable, Codable {
    public var maxBytes: Int
    enum CodingKeys: String, CodingKey { case maxBytes = "max_bytes" }
    public static let `default` = BundlePolicy(maxBytes: 256 << 20)
    public static let tables = ["bundles"]

    struct File: Decodable { var bundles: BundlePolicy }

    public static func read(_ document: JSONValue, file: String) throws -> BundlePolicy {
        guard document["bundles"] != nil else { return .default }
        let p = try PolicyFile.decode(File.self, tables: tables, of: document, file: file).bundles
        try PolicyChecker(file: file).require(p.maxBytes, in: 1024...(16 << 30), "bundles.max_bytes")
        return p
    }
}

/// market.toml's [serving] table: what completions cost and how they are settled.
/// Optional: markets made before serving existed take the default.
public struct ServingPolicy: Sendable, Equatable, Codable {
    /// Price of a thousand tokens (prompt and completion), in the ledger's minor units.
    public var pricePer1kTokens: Int64
    /// Length of a settlement period, seconds; periods are named by their start (UTC).
    public var periodSeconds: Int64
    /// Largest max_tokens a request may ask for.
    public var maxTokens: Int
    enum CodingKeys: String, CodingKey {
        case pricePer1kTokens = "price_per_1k_tokens", periodSeconds = "period_seconds", maxTokens = "max_tokens"
    }
    public static let `default` = ServingPolicy(pricePer1kTokens: 1000, periodSeconds: 86_400, maxTokens: 1024)
    public static let tables = ["serving"]

    struct File: Decodable { var serving: ServingPolicy }

    public static func read(_ document: JSONValue, file: String) throws -> ServingPolicy {
        guard document["serving"] != nil else { return .default }
        let p = try PolicyFile.decode(File.self, tables: tables, of: document, file: file).serving
        let c = PolicyChecker(file: file)
        try c.require(p.pricePer1kTokens, in: 1...1_000_000_000, "serving.price_per_1k_tokens")
        try c.require(p.periodSeconds, in: 60...(366 * 86_400), "serving.period_seconds")
        try c.require(Int64(p.maxTokens), in: 1...65_536, "serving.max_tokens")
        return p
    }
}

/// A folder of market rules (`Market/`, or a market's `policy/`): market.toml, whose
/// tables are read by the ledger and by Proof-of-Loss, and domains/*.toml. Loading it
/// checks all of them, so a mistake anywhere stops `market init` before anything is
/// written.
public struct MarketPolicyFolder: Sendable {
    public let path: String
    public let ledger: MarketPolicy
    public let proof: ProofPolicy
    public let bundles: BundlePolicy
    public let serving: ServingPolicy
    public let domains: [DomainPolicy]

    public var marketFile: String { (path as NSString).appendingPathComponent("market.toml") }
    public var domainsFolder: String { (path as NSString).appendingPathComponent("domains") }

    public init(path: String) throws {
        self.path = path
        let file = (path as NSString).appendingPathComponent("market.toml")
        guard FileManager.default.fileExists(atPath: file) else { throw CoreError("\(path): no market.toml (a market's rules folder holds market.toml and domains/)") }
        let document = try PolicyFile.read(file)
        try PolicyFile.requireOnly(Set(MarketPolicy.tables + ProofPolicy.tables + BundlePolicy.tables + ServingPolicy.tables), in: document, file: file)
        ledger = try MarketPolicy.read(document, file: file)
        proof = try ProofPolicy.read(document, file: file)
        bundles = try BundlePolicy.read(document, file: file)
        serving = try ServingPolicy.read(document, file: file)
        domains = try DomainPolicy.loadAll((path as NSString).appendingPathComponent("domains"))
    }

    public func domain(_ name: String) throws -> DomainPolicy {
        guard let d = domains.first(where: { $0.name == name }) else {
            throw CoreError("\(domainsFolder): no domain \"\(name)\"; domains: \(domains.map(\.name).joined(separator: ", "))")
        }
        return d
    }
}
