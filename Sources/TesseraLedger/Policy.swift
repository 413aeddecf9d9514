import Foundation
import TesseraCore

/// The ledger's part of a market's policy (market.toml tables [consensus], [shares],
/// [fees], [claims]): how verdicts make a consensus, how accepted gains mint units, what
/// fees come off revenue, how many may claim one expert. Proof-of-Loss reads its own
/// table, [proof_of_loss]; `market init` checks that no other table is present.
public struct MarketPolicy: Sendable, Equatable, Codable {
    /// Consensus: how many validators' verdicts decide, and the least stake-weighted
    /// median gain (micro-nats per token) the ledger accepts.
    public var quorum: Int
    public var minGainMicronats: Int64
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

    public init(quorum: Int, minGainMicronats: Int64, genesisUnits: Int64, doublingGainMicronats: Int64, maxMintBps: Int64,
                validatorFeeBps: Int64, operatorFeeBps: Int64, maxClaimantsPerExpert: Int) {
        self.quorum = quorum; self.minGainMicronats = minGainMicronats; self.genesisUnits = genesisUnits
        self.doublingGainMicronats = doublingGainMicronats; self.maxMintBps = maxMintBps
        self.validatorFeeBps = validatorFeeBps; self.operatorFeeBps = operatorFeeBps; self.maxClaimantsPerExpert = maxClaimantsPerExpert
    }

    enum CodingKeys: String, CodingKey {
        case quorum
        case minGainMicronats = "min_gain_micronats"
        case genesisUnits = "genesis_units"
        case doublingGainMicronats = "doubling_gain_micronats"
        case maxMintBps = "max_mint_bps"
        case validatorFeeBps = "validator_fee_bps"
        case operatorFeeBps = "operator_fee_bps"
        case maxClaimantsPerExpert = "max_claimants_per_expert"
    }

    /// The tables of market.toml this policy is read from.
    public static let tables = ["consensus", "shares", "fees", "claims"]

    /// The file's layout, table by table.
    struct File: Decodable {
        struct Consensus: Decodable {
            var quorum: Int
            var minGainMicronats: Int64
            enum CodingKeys: String, CodingKey { case quorum; case minGainMicronats = "min_gain_micronats" }
        }
        struct Shares: Decodable {
            var genesisUnits: Int64
            var doublingGainMicronats: Int64
            var maxMintBps: Int64
            enum CodingKeys: String, CodingKey {
                case genesisUnits = "genesis_units"
                case doublingGainMicronats = "doubling_gain_micronats"
                case maxMintBps = "max_mint_bps"
            }
        }
        struct Fees: Decodable {
            var validatorBps: Int64
            var operatorBps: Int64
            enum CodingKeys: String, CodingKey { case validatorBps = "validator_bps"; case operatorBps = "operator_bps" }
        }
        struct Claims: Decodable {
            var maxClaimantsPerExpert: Int
            enum CodingKeys: String, CodingKey { case maxClaimantsPerExpert = "max_claimants_per_expert" }
        }
        var consensus: Consensus
        var shares: Shares
        var fees: Fees
        var claims: Claims
    }

    public static func load(_ path: String) throws -> MarketPolicy {
        try read(try PolicyFile.read(path), file: path)
    }

    public static func parse(_ text: String, file: String) throws -> MarketPolicy {
        try read(try PolicyFile.parse(text, file: file), file: file)
    }

    /// Whether a market.toml has the first layout, where [proof_of_loss] also held the
    /// consensus keys (quorum, min_gain_micronats). Markets created then keep their file
    /// (its hash is in their genesis event), so it is still read.
    public static func isFirstLayout(_ document: JSONValue) -> Bool {
        document["consensus"] == nil && document["proof_of_loss"]?["quorum"] != nil
    }

    /// Decodes and range-checks the ledger's tables of a parsed market.toml.
    public static func read(_ document: JSONValue, file: String) throws -> MarketPolicy {
        var document = document
        if isFirstLayout(document), case let .object(members) = document {
            // The consensus keys lived in [proof_of_loss]: read them from there.
            let consensus = JSONValue.object((document["proof_of_loss"]?.objectMembers ?? []).filter { ["quorum", "min_gain_micronats"].contains($0.0) })
            document = .object(members.filter { $0.0 != "proof_of_loss" } + [("consensus", consensus)])
        }
        let f = try PolicyFile.decode(File.self, tables: tables, of: document, file: file)
        let c = PolicyChecker(file: file)
        try c.require(f.consensus.quorum, in: 1...1000, "consensus.quorum")
        try c.require(f.consensus.minGainMicronats, in: 0...1_000_000_000_000, "consensus.min_gain_micronats")
        try c.require(f.shares.genesisUnits, in: 1...1_000_000_000_000_000, "shares.genesis_units")
        try c.require(f.shares.doublingGainMicronats, in: 1...1_000_000_000_000, "shares.doubling_gain_micronats")
        try c.require(f.shares.maxMintBps, in: 0...1_000_000, "shares.max_mint_bps")
        try c.require(f.fees.validatorBps, in: 0...10_000, "fees.validator_bps")
        try c.require(f.fees.operatorBps, in: 0...10_000, "fees.operator_bps")
        try c.require(f.fees.validatorBps + f.fees.operatorBps <= 10_000,
                      "fees.validator_bps + fees.operator_bps = \(f.fees.validatorBps + f.fees.operatorBps) exceeds 10000")
        try c.require(f.claims.maxClaimantsPerExpert, in: 1...1_000_000, "claims.max_claimants_per_expert")
        return MarketPolicy(quorum: f.consensus.quorum, minGainMicronats: f.consensus.minGainMicronats,
                            genesisUnits: f.shares.genesisUnits, doublingGainMicronats: f.shares.doublingGainMicronats,
                            maxMintBps: f.shares.maxMintBps, validatorFeeBps: f.fees.validatorBps, operatorFeeBps: f.fees.operatorBps,
                            maxClaimantsPerExpert: f.claims.maxClaimantsPerExpert)
    }
}
