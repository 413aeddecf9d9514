import Foundation
import TesseraCore
import TesseraLedger
import TesseraProof

/// What `tessera demo` reports. Every figure names its unit: losses and gains in nats per
/// token (micro-nats per token where the ledger keeps integers), money in minor units,
/// sizes in bytes, time in seconds. The bundled model's tokens are bytes, so its nats per
/// token are nats per byte.
public struct DemoReport: Codable, Sendable {
    public struct Judgement: Codable, Sendable {
        public var validator: String
        public var accept: Bool
        public var gainLCBMicronatsPerToken: Int64
        public var regressionUCBMicronatsPerToken: Int64
        public var maxCosine: Double?
        public var reason: String
        enum CodingKeys: String, CodingKey {
            case validator, accept, reason
            case maxCosine = "max_cosine"
            case gainLCBMicronatsPerToken = "gain_lcb_micronats"
            case regressionUCBMicronatsPerToken = "regression_ucb_micronats"
        }
    }

    public struct Submission: Codable, Sendable {
        public var contributor: String
        public var behaviour: String
        public var bundle: String
        public var experts: [String]
        public var deltaBytes: Int
        public var trainLossNatsPerToken: Double?
        public var verdicts: [Judgement]
        /// The ledger's state of the submission: pending, accepted, rejected or merged.
        public var state: String
        public var consensusGainMicronatsPerToken: Int64?
        /// Units minted to its contributor, and why an accepted update earned nothing.
        public var unitsEarned: Int64
        public var outcome: String
        enum CodingKeys: String, CodingKey {
            case contributor, behaviour, bundle, experts, verdicts, state, outcome
            case deltaBytes = "delta_bytes"
            case trainLossNatsPerToken = "train_loss_nats_per_token"
            case consensusGainMicronatsPerToken = "consensus_gain_micronats"
            case unitsEarned = "units_earned"
        }
    }

    public struct Holding: Codable, Sendable { public var owner: String; public var units: Int64; public var fraction: Double }
    public struct ExpertShares: Codable, Sendable {
        public var expert: String
        public var version: String
        public var totalUnits: Int64
        public var holders: [Holding]
        enum CodingKeys: String, CodingKey { case expert, version, holders; case totalUnits = "total_units" }
    }
    public struct Payout: Codable, Sendable {
        public var recipient: String
        public var kind: String
        public var expert: String?
        public var amountMinorUnits: Int64
        enum CodingKeys: String, CodingKey { case recipient, kind, expert; case amountMinorUnits = "amount_minor_units" }
    }

    public var market: String
    public var domain: String
    public var language: String
    public var round: String
    public var heldOutLossBeforeNatsPerToken: Double
    public var heldOutLossAfterNatsPerToken: Double
    public var backgroundLossBeforeNatsPerToken: Double
    public var backgroundLossAfterNatsPerToken: Double
    public var commitments: [String: String]
    public var submissions: [Submission]
    public var merge: RoundMerge.Outcome?
    public var shares: [ExpertShares]
    public var revenueMinorUnits: Int64
    public var payouts: [Payout]
    public var payoutSumMinorUnits: Int64
    public var verify: VerifyReport
    public var seconds: Double

    enum CodingKeys: String, CodingKey {
        case market, domain, language, round, commitments, submissions, merge, shares, payouts, verify, seconds
        case heldOutLossBeforeNatsPerToken = "held_out_loss_before_nats_per_token"
        case heldOutLossAfterNatsPerToken = "held_out_loss_after_nats_per_token"
        case backgroundLossBeforeNatsPerToken = "background_loss_before_nats_per_token"
        case backgroundLossAfterNatsPerToken = "background_loss_after_nats_per_token"
        case revenueMinorUnits = "revenue_minor_units"
        case payoutSumMinorUnits = "payout_sum_minor_units"
    }
}
