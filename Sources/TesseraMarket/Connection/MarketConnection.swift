import Foundation
import TesseraCore
import TesseraLedger
import TesseraLibrary

/// What a participant does with a market, wherever the market is: read its library and
/// rules, post signed actions, upload and download bundles, ask the ledger. `LocalMarket`
/// works on a market directory; `RemoteMarket` (TesseraClient) on a server's URL. Every
/// command and workflow is written once against this protocol, and the server is a thin
/// HTTP face over `LocalMarket`.
public protocol MarketConnection: Sendable {
    /// The market's location as the user gave it.
    var location: String { get }

    /// Head of the ledger, the library's identity and the domains: a quick look.
    func summary() async throws -> MarketSummary
    /// market.toml, byte for byte (its hash is in the genesis event).
    func policyText() async throws -> Data
    /// A domain's file from domains/.
    func domainText(_ name: String) async throws -> Data
    /// The library's manifest.json and config.json, byte for byte.
    func libraryManifest() async throws -> Data
    func libraryConfig() async throws -> Data
    /// Writes the shard named by `hash` to `path` (checked against the hash), resuming a
    /// partial file already there.
    func downloadShard(_ hash: String, to path: String) async throws

    /// Posts a signed action; the ledger checks it against its rules.
    func post(_ action: SignedAction) async throws -> Ledger.Outcome
    /// Events after `since`, at most `limit`; with `wait` > 0 and nothing new, waits up to
    /// that many seconds for the next event.
    func events(since: Int64, limit: Int, wait: Double) async throws -> [StoredEvent]

    func shares(owner: String) async throws -> SharesReport
    func expert(_ id: ExpertID) async throws -> Ledger.ExpertReport?
    func rounds() async throws -> [String]
    func round(_ id: String) async throws -> Ledger.RoundReport?
    func payouts(event: Int64?) async throws -> [Ledger.Payout]
    func verify() async throws -> VerifyReport
    /// The ledger state as of now (replayed from the events where the market is remote).
    func state() async throws -> LedgerState

    /// Uploads the bundle in `dir` after the round's submission window has closed; returns
    /// its submission hash. Only a bundle whose hash was submitted in time is taken.
    func uploadBundle(_ dir: String) async throws -> String
    /// Writes the bundle of a submission into `dir` (checked).
    func downloadBundle(_ submission: String, to dir: String) async throws
    /// Stores an expert shard the operator made (a merge's new version) ahead of the
    /// `new_version` action that names it.
    func uploadShard(_ path: String, signedBy key: ParticipantKey) async throws -> String
}

/// `GET /v1/market`: where the market stands.
public struct MarketSummary: Codable, Sendable, Equatable {
    /// The market's identity: the hash of its first (genesis) event. Bundles are signed for it.
    public var marketID: String
    public var events: Int64
    public var headHash: String
    public var policySHA256: String
    public var domains: [String]
    public var rounds: [String]
    public var trunk: String
    public var modelType: String
    public var experts: Int
    enum CodingKeys: String, CodingKey {
        case events, domains, rounds, trunk, experts
        case marketID = "market_id"
        case headHash = "head_hash"
        case policySHA256 = "policy_sha256"
        case modelType = "model_type"
    }
}

/// An owner's holdings and fees, as `ledger shares` prints them.
public struct SharesReport: Codable, Sendable, Equatable {
    public var owner: String
    public var holdings: [Ledger.Holding]
    public var fees: Int64
    enum CodingKeys: String, CodingKey { case owner, holdings; case fees = "fees_minor_units" }
    public init(owner: String, holdings: [Ledger.Holding], fees: Int64) { self.owner = owner; self.holdings = holdings; self.fees = fees }
}

/// A signed action as it travels: the kind, the payload, who signed it and the signature.
/// The signature covers the canonical `{"kind":K,"payload":P}`, however the payload was
/// formatted on the way.
public struct ActionEnvelope: Codable, Sendable {
    public var kind: String
    public var payload: JSONValue
    public var actor: String
    public var signature: String

    public init(_ s: SignedAction) throws {
        kind = s.action.kind
        payload = try JSONValue.parse(s.payload)
        actor = s.actor
        signature = s.signature
    }

    public func signedAction() throws -> SignedAction {
        let action = try LedgerAction.decode(kind: kind, payload: payload.canonicalText)
        return try SignedAction(action: action, actor: actor, signature: signature)
    }
}

/// What `POST /v1/actions` answers.
public struct ActionReceipt: Codable, Sendable, Equatable {
    public var seq: Int64
    /// False when the same action had been recorded before (nothing new was written).
    public var recorded: Bool
    public init(_ o: Ledger.Outcome) {
        switch o {
        case let .appended(s): seq = s; recorded = true
        case let .duplicate(s): seq = s; recorded = false
        }
    }
    public var outcome: Ledger.Outcome { recorded ? .appended(seq: seq) : .duplicate(seq: seq) }
}
