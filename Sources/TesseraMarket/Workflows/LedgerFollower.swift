import Foundation
import TesseraCore
import TesseraLedger

/// A participant's own copy of the ledger's state, kept up to date from the market's
/// events: each event's hash, its link to the one before and its signature are checked
/// and the rules replayed, so a follower trusts the chain, not the server that sent it.
public struct LedgerFollower: Sendable {
    public private(set) var state: LedgerState
    /// Submission hashes in the order the ledger recorded them (the order validators judge in).
    public private(set) var submissionOrder: [String] = []

    public init(policy: MarketPolicy) { state = LedgerState(policy: policy) }

    /// A follower for a market, starting from its policy.
    public static func start(_ market: any MarketConnection) async throws -> LedgerFollower {
        let text = String(decoding: try await market.policyText(), as: UTF8.self)
        return LedgerFollower(policy: try MarketPolicy.parse(text, file: market.location + " policy"))
    }

    /// Applies every event the market has past our state; with `wait` > 0 and nothing
    /// new, waits up to that long for one. Returns how many events were applied.
    @discardableResult
    public mutating func update(_ market: any MarketConnection, wait: Double = 0) async throws -> Int {
        var applied = 0
        var waitNow = wait
        while true {
            let page = try await market.events(since: state.seq, limit: 10_000, wait: waitNow)
            if page.isEmpty { return applied }
            for e in page { try apply(e) }
            applied += page.count
            waitNow = 0
        }
    }

    mutating func apply(_ e: StoredEvent) throws {
        guard e.seq == state.seq + 1, e.prevHash == state.headHash,
              e.hash == Ledger.eventHash(seq: e.seq, kind: e.kind, payload: e.payload, actor: e.actor, signature: e.signature, prev: e.prevHash) else {
            throw LedgerError.corrupt("event \(e.seq) does not link to the chain this follower holds (at event \(state.seq))")
        }
        let action = try LedgerAction.decode(kind: e.kind, payload: e.payload)
        _ = try state.apply(try SignedAction(action: action, actor: e.actor, signature: e.signature), seq: e.seq, hash: e.hash, checkSignature: true)
        if case let .submit(x) = action { submissionOrder.append(x.bundle) }
    }

    /// Submissions of a round in the order the ledger recorded them.
    public func submissions(ofRound round: String) -> [String] {
        submissionOrder.filter { state.submissions[$0]?.round == round }
    }
}
