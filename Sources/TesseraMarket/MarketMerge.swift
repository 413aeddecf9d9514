import Foundation
import TesseraCore
import TesseraEngine
import TesseraLedger
import TesseraLibrary
import TesseraProof

/// The operator's end of a round: the submissions the ledger accepted (their bundles given
/// as directories) are merged and validated again with `validator`, the new versions are
/// stored in `library` (the market's own, or the operator's copy of it), their shards sent
/// to the market, and `new_version` events with the credits recorded.
public enum MarketMerge {
    public static func run(market: any MarketConnection, library: ExpertLibrary, bundles: [String], validator: Validator,
                           operatorKey: ParticipantKey, at time: Int64) async throws -> RoundMerge.Outcome? {
        let state = try await market.state()
        var accepted: [RoundMerge.Accepted] = []
        for dir in bundles {
            let hash = try SubmissionBundle.submissionRecord(dir).hash
            guard let sub = state.submissions[hash] else { throw LedgerError.refused("\(dir): bundle \(hash.prefix(12)) was never submitted to this market") }
            guard sub.state == .accepted, !accepted.contains(where: { $0.submission == hash }) else { continue }
            let (bundle, weights) = try SubmissionBundle.verifyDecoding(dir, library: library)
            accepted.append(.init(submission: hash, contributor: bundle.contributor, gainMicronats: sub.consensusGain ?? 0, weights: weights))
        }
        guard !accepted.isEmpty else { return nil }
        let outcome = try RoundMerge.run(accepted, validator: validator, library: library)
        for v in outcome.versions {
            _ = try await market.uploadShard(library.shardPath(v.version), signedBy: operatorKey)
            _ = try await market.post(try SignedAction(.newVersion(.init(at: time, layer: v.layer, expert: v.expert, version: v.version, parent: v.parent,
                                                                         submissions: v.submissions, credits: v.submissions.map { outcome.credits[$0] ?? 0 })),
                                                   key: operatorKey))
        }
        return outcome
    }
}
