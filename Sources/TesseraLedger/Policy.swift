import Foundation

/// Market/market.toml: the rules a market runs by. Every field is required and checked;
/// a bad value is an error naming the file, the key and the value.
public struct MarketPolicy: Sendable, Equatable, Codable {
    /// Proof-of-Loss: confidence of the bounds, the least consensus gain accepted, the
    /// largest regression on background text tolerated (both in micro-nats per token),
    /// the largest delta norm relative to its expert, the cosine above which a delta is a
    /// copy, and how many validators a verdict needs.
    public var confidence: Double
    public var minGainMicronats: Int64
    public var backgroundToleranceMicronats: Int64
    public var deltaNormBound: Double
    public var copyThreshold: Double
    public var quorum: Int
    /// Shares: units the publisher holds of every expert at genesis; the summed gain that
    /// mints as many units as exist; the cap on one version's minting, in basis points of
    /// the units outstanding.
    public var genesisUnits: Int64
    public var doublingGainMicronats: Int64
    public var maxMintBps: Int64
    /// Fees taken from revenue before it reaches owners, in basis points.
    public var validatorFeeBps: Int64
    public var operatorFeeBps: Int64
    /// Claims: concurrent claimants allowed per expert.
    public var maxClaimantsPerExpert: Int

    public static func load(_ path: String) throws -> MarketPolicy {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw PolicyError(file: path, "cannot read") }
        return try parse(text, file: path)
    }

    public static func parse(_ text: String, file: String) throws -> MarketPolicy {
        let t = try TOML.parse(text, file: file)
        let r = PolicyReader(root: t, file: file)
        let p = MarketPolicy(
            confidence: try r.float("proof_of_loss.confidence", in: 0.5...0.9999),
            minGainMicronats: try r.int("proof_of_loss.min_gain_micronats", in: 0...Int64(1e12)),
            backgroundToleranceMicronats: try r.int("proof_of_loss.background_tolerance_micronats", in: 0...Int64(1e12)),
            deltaNormBound: try r.float("proof_of_loss.delta_norm_bound", in: 1e-9...100),
            copyThreshold: try r.float("proof_of_loss.copy_threshold", in: 0...1),
            quorum: Int(try r.int("proof_of_loss.quorum", in: 1...1000)),
            genesisUnits: try r.int("shares.genesis_units", in: 1...Int64(1e15)),
            doublingGainMicronats: try r.int("shares.doubling_gain_micronats", in: 1...Int64(1e12)),
            maxMintBps: try r.int("shares.max_mint_bps", in: 0...1_000_000),
            validatorFeeBps: try r.int("fees.validator_bps", in: 0...10_000),
            operatorFeeBps: try r.int("fees.operator_bps", in: 0...10_000),
            maxClaimantsPerExpert: Int(try r.int("claims.max_claimants_per_expert", in: 1...1_000_000)))
        guard p.validatorFeeBps + p.operatorFeeBps <= 10_000 else {
            throw PolicyError(file: file, "fees.validator_bps + fees.operator_bps = \(p.validatorFeeBps + p.operatorFeeBps) exceeds 10000")
        }
        try r.rejectUnknown(["proof_of_loss": ["confidence", "min_gain_micronats", "background_tolerance_micronats", "delta_norm_bound", "copy_threshold", "quorum"],
                             "shares": ["genesis_units", "doubling_gain_micronats", "max_mint_bps"],
                             "fees": ["validator_bps", "operator_bps"], "claims": ["max_claimants_per_expert"]])
        return p
    }
}

/// Market/domains/NAME.toml: one open domain.
public struct DomainPolicy: Sendable, Equatable, Codable {
    public var name: String
    public var description: String
    public var language: String
    public var source: String
    /// Share of the domain's text held out by the validators' keyed hash, in basis points.
    public var heldOutBps: Int64

    public static func parse(_ text: String, file: String) throws -> DomainPolicy {
        let r = PolicyReader(root: try TOML.parse(text, file: file), file: file)
        let d = DomainPolicy(name: try r.string("domain.name"), description: try r.string("domain.description"),
                             language: try r.string("domain.language"), source: try r.string("domain.source"),
                             heldOutBps: try r.int("domain.held_out_bps", in: 1...9_999))
        guard TOML.isBareKey(d.name) else { throw PolicyError(file: file, "domain.name \"\(d.name)\" must be letters, digits, _ or -") }
        try r.rejectUnknown(["domain": ["name", "description", "language", "source", "held_out_bps"]])
        return d
    }

    /// Every `*.toml` in a folder, sorted by name; names must be unique.
    public static func loadAll(_ dir: String) throws -> [DomainPolicy] {
        let files = ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).filter { $0.hasSuffix(".toml") }.sorted()
        var out: [DomainPolicy] = []
        for f in files {
            let path = (dir as NSString).appendingPathComponent(f)
            guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw PolicyError(file: path, "cannot read") }
            let d = try parse(text, file: path)
            guard !out.contains(where: { $0.name == d.name }) else { throw PolicyError(file: path, "domain \(d.name) is defined twice") }
            out.append(d)
        }
        return out
    }
}

public struct PolicyError: Error, CustomStringConvertible, Sendable {
    public let file: String
    public let problem: String
    public init(file: String, _ problem: String) { self.file = file; self.problem = problem }
    public var description: String { "\(file): \(problem)" }
}

struct PolicyReader {
    let root: [String: TOMLValue]
    let file: String

    func value(_ key: String) throws -> TOMLValue {
        var t = root
        let parts = key.split(separator: ".").map(String.init)
        for p in parts.dropLast() {
            guard let sub = t[p]?.table else { throw PolicyError(file: file, "missing table [\(p)] (for \(key))") }
            t = sub
        }
        guard let v = t[parts.last!] else { throw PolicyError(file: file, "missing \(key)") }
        return v
    }

    func int(_ key: String, in range: ClosedRange<Int64>) throws -> Int64 {
        guard case let .integer(i) = try value(key) else { throw PolicyError(file: file, "\(key) must be an integer") }
        guard range.contains(i) else { throw PolicyError(file: file, "\(key) = \(i) is outside \(range.lowerBound)...\(range.upperBound)") }
        return i
    }

    func float(_ key: String, in range: ClosedRange<Double>) throws -> Double {
        let v: Double
        switch try value(key) {
        case let .float(d): v = d
        case let .integer(i): v = Double(i)
        default: throw PolicyError(file: file, "\(key) must be a number")
        }
        guard range.contains(v) else { throw PolicyError(file: file, "\(key) = \(v) is outside \(range.lowerBound)...\(range.upperBound)") }
        return v
    }

    func string(_ key: String) throws -> String {
        guard case let .string(s) = try value(key), !s.isEmpty else { throw PolicyError(file: file, "\(key) must be a non-empty string") }
        return s
    }

    func rejectUnknown(_ known: [String: [String]]) throws {
        for (table, value) in root {
            guard let keys = known[table] else { throw PolicyError(file: file, "unknown table [\(table)]; known: \(known.keys.sorted().joined(separator: ", "))") }
            for k in value.table?.keys.sorted() ?? [] where !keys.contains(k) {
                throw PolicyError(file: file, "unknown key \(table).\(k); known: \(keys.joined(separator: ", "))")
            }
        }
    }
}
