import Foundation
import TesseraEngine
import TesseraLedger
import TesseraLibrary
import TesseraProof
import TesseraCore

/// The operator's end of a round: the submissions the ledger accepted (their bundles given
/// as directories) are merged and validated again with `validator`, the new versions go
/// into the market's library, and `new_version` events with the credits into the ledger.
public enum MarketMerge {
    public static func run(ledger: Ledger, library: ExpertLibrary, bundles: [String], validator: Validator,
                           operatorKey: ParticipantKey, at time: Int64) throws -> RoundMerge.Outcome? {
        let state = try ledger.currentState()
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
        let actions = try outcome.versions.map { v in
            try SignedAction(.newVersion(.init(at: time, layer: v.layer, expert: v.expert, version: v.version, parent: v.parent,
                                               submissions: v.submissions, credits: v.submissions.map { outcome.credits[$0] ?? 0 })),
                             key: operatorKey)
        }
        _ = try ledger.append(actions)
        return outcome
    }
}
