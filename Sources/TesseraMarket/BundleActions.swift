import Foundation
import TesseraCore
import TesseraLedger
import TesseraLibrary
import TesseraProof

extension SubmissionBundle {
    /// The `submit` action that commits to the bundle in `dir` in a round: its hash (the
    /// bundle stays hidden until the window closes), its signature, and the experts it
    /// updates with the versions they were trained from.
    /// The bundle must be signed for this market (its ID), the round's domain and the round.
    public static func submitAction(_ dir: String, market: String, domain: String, round: String, at time: Int64) throws -> LedgerAction {
        let (hash, sig) = try submissionRecord(dir)
        let manifestPath = (dir as NSString).appendingPathComponent("bundle.json")
        guard let data = FileManager.default.contents(atPath: manifestPath), let json = try? JSONValue.parse(data),
              let experts = json["experts"]?.arrayValue else {
            throw LibraryError("\(manifestPath): no experts")
        }
        try destinationMatches(signed: (json["market"]?.stringValue ?? "", json["domain"]?.stringValue ?? "", json["round"]?.stringValue ?? ""),
                               market: market, domain: domain, round: round, file: manifestPath)
        let refs = try experts.map { e -> ExpertRef in
            guard let l = e["layer"]?.intValue, let x = e["expert"]?.intValue, let base = e["base"]?.stringValue else {
                throw LibraryError("\(manifestPath): an expert lacks layer, expert or base")
            }
            return ExpertRef(layer: l, expert: x, version: base)
        }
        return .submit(.init(at: time, round: round, bundle: hash, bundleSignature: sig, experts: refs))
    }
}

extension SubmissionBundle {
    /// A bundle counts only where it was signed to go: signed for another market, domain or
    /// round, it is refused (a contributor's signature must not be replayable elsewhere).
    public func requireDestination(market: String, domain: String, round: String) throws {
        try Self.destinationMatches(signed: (self.market, self.domain, self.round), market: market, domain: domain, round: round, file: "bundle")
    }

    static func destinationMatches(signed: (market: String, domain: String, round: String), market: String, domain: String, round: String,
                                   file: String) throws {
        for (what, mine, theirs) in [("market", signed.market, market), ("domain", signed.domain, domain), ("round", signed.round, round)] where mine != theirs {
            throw LibraryError("\(file): signed for \(what) \"\(mine.prefix(64))\", not \"\(theirs.prefix(64))\"")
        }
    }
}

extension Verdict {
    /// The ledger's record of this verdict.
    public func ledgerAction(at time: Int64) -> LedgerAction.Verdict {
        .init(at: time, submission: submission, gainLCBMicronats: gainLCBMicronats, regressionUCBMicronats: regressionUCBMicronats,
              accept: accept, reason: reason)
    }
}

extension HeldOutCommitment {
    /// 32 random bytes from the system's generator.
    public static func newSalt() -> [UInt8] {
        var rng = SystemRandomNumberGenerator()
        return (0..<32).map { _ in UInt8.random(in: 0...255, using: &rng) }
    }
}
