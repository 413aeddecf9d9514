import Foundation
import TesseraCore
import TesseraEngine

/// The Proof-of-Loss rules a validator applies: the [proof_of_loss] table of a market's
/// market.toml, read here and nowhere else.
public struct ProofPolicy: Codable, Sendable, Equatable {
    /// Confidence level of the bounds (lower bound of the held-out gain, upper bound of
    /// the background regression).
    public var confidence: Double
    /// Least held-out gain lower bound, micro-nats per token, for a validator to accept.
    public var minGainMicronats: Int64
    /// Largest background regression upper bound tolerated, micro-nats per token.
    public var backgroundToleranceMicronats: Int64
    /// Largest ‖Δ‖ / ‖expert‖ a delta may have.
    public var deltaNormBound: Double
    /// A delta whose cosine with an earlier one in the round exceeds this is a copy.
    public var copyThreshold: Double
    /// Bootstrap resamples (not a policy key; recorded in verdicts).
    public var resamples: Int
    /// The matrix-product precision the market's verdicts use, so that any validator can
    /// re-check any other's (`proof_of_loss.matmul`, default fp32-fixed: the same bits on
    /// every processor). Verdicts record it themselves, so it is not part of this
    /// structure's JSON.
    public var matmul: MatmulPrecision = .fp32Fixed

    public init(confidence: Double, minGainMicronats: Int64, backgroundToleranceMicronats: Int64, deltaNormBound: Double,
                copyThreshold: Double, resamples: Int = 2000) {
        self.confidence = confidence
        self.minGainMicronats = minGainMicronats
        self.backgroundToleranceMicronats = backgroundToleranceMicronats
        self.deltaNormBound = deltaNormBound
        self.copyThreshold = copyThreshold
        self.resamples = resamples
    }

    enum CodingKeys: String, CodingKey {
        case confidence, resamples
        case minGainMicronats = "min_gain_micronats"
        case backgroundToleranceMicronats = "background_tolerance_micronats"
        case deltaNormBound = "delta_norm_bound"
        case copyThreshold = "copy_threshold"
    }

    /// The table of market.toml this policy is read from.
    public static let tables = ["proof_of_loss"]

    struct File: Decodable {
        struct Table: Decodable {
            var confidence: Double
            var minGainMicronats: Int64
            var backgroundToleranceMicronats: Int64
            var deltaNormBound: Double
            var copyThreshold: Double
            var matmul: String?
            enum CodingKeys: String, CodingKey {
                case confidence, matmul
                case minGainMicronats = "min_gain_micronats"
                case backgroundToleranceMicronats = "background_tolerance_micronats"
                case deltaNormBound = "delta_norm_bound"
                case copyThreshold = "copy_threshold"
            }
        }
        var proofOfLoss: Table
        enum CodingKeys: String, CodingKey { case proofOfLoss = "proof_of_loss" }
    }

    /// Refuses to start a validator whose processor cannot compute in the market's
    /// precision: its verdicts could not be re-checked by the others.
    public func requireUsablePrecision(file: String) throws {
        guard matmul.isUsable else {
            throw CoreError("\(file): this market's verdicts use \(matmul.rawValue) matrix products (proof_of_loss.matmul), which this processor cannot compute (available: \(MatmulPrecision.allCases.filter(\.isUsable).map(\.rawValue).joined(separator: ", "))); a validator here could not produce verdicts the others re-check")
        }
    }

    /// Reads [proof_of_loss] from a market.toml (a market's `policy/market.toml` or
    /// `Market/market.toml`).
    public static func load(_ path: String) throws -> ProofPolicy {
        try read(try PolicyFile.read(path), file: path)
    }

    public static func read(_ document: JSONValue, file: String) throws -> ProofPolicy {
        // The first layout of market.toml kept the ledger's quorum in this table (markets
        // made then still have it); it is the ledger's key, not a validator's.
        let firstLayout = document["consensus"] == nil && document["proof_of_loss"]?["quorum"] != nil
        let own = firstLayout ? PolicyFile.restricting(document, table: "proof_of_loss", drop: ["quorum"]) : document
        let t = try PolicyFile.decode(File.self, tables: tables, of: own, file: file).proofOfLoss
        let c = PolicyChecker(file: file)
        try c.require(t.confidence, in: 0.5...0.9999, "proof_of_loss.confidence")
        try c.require(t.minGainMicronats, in: 0...1_000_000_000_000, "proof_of_loss.min_gain_micronats")
        try c.require(t.backgroundToleranceMicronats, in: 0...1_000_000_000_000, "proof_of_loss.background_tolerance_micronats")
        try c.require(t.deltaNormBound, in: 1e-9...100, "proof_of_loss.delta_norm_bound")
        try c.require(t.copyThreshold, in: 0...1, "proof_of_loss.copy_threshold")
        var policy = ProofPolicy(confidence: t.confidence, minGainMicronats: t.minGainMicronats,
                                 backgroundToleranceMicronats: t.backgroundToleranceMicronats, deltaNormBound: t.deltaNormBound,
                                 copyThreshold: t.copyThreshold)
        if let name = t.matmul {
            guard let m = MatmulPrecision(rawValue: name) else {
                throw CoreError("\(file): proof_of_loss.matmul = \"\(name)\" is not one of \(MatmulPrecision.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            policy.matmul = m
        }
        return policy
    }
}
