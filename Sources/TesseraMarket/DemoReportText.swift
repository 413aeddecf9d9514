import Foundation

/// The demo's report as a terminal reader sees it. Losses are in nats per token (the
/// bundled model's tokens are bytes); bits per byte are shown beside them for comparison
/// with the compression literature.
public enum DemoReportText {
    public static func render(_ r: DemoReport, kept: String?) -> String {
        var out = "\n=== Tessera demo report: domain \(r.domain) (\(r.language)), round \(r.round) ===\n"
        func f(_ x: Double, _ d: Int = 4) -> String { String(format: "%.\(d)f", x) }
        out += "held-out \(r.language) loss: \(f(r.heldOutLossBeforeNatsPerToken)) → \(f(r.heldOutLossAfterNatsPerToken)) nats/token ("
            + f(r.heldOutLossBeforeNatsPerToken / log(2), 3) + " → " + f(r.heldOutLossAfterNatsPerToken / log(2), 3) + " bits/byte)\n"
        out += "background loss: \(f(r.backgroundLossBeforeNatsPerToken)) → \(f(r.backgroundLossAfterNatsPerToken)) nats/token\n\n"
        out += "Submissions:\n"
        for s in r.submissions {
            out += "  \(s.contributor) (\(s.behaviour)), bundle \(s.bundle.prefix(12))…, experts \(s.experts.joined(separator: " ")), \(s.deltaBytes) bytes of deltas\n"
            for v in s.verdicts {
                out += "    \(v.validator): \(v.accept ? "ACCEPT" : "REJECT") — \(v.reason)"
                    + (v.maxCosine.map { " [largest cosine with an earlier delta " + f($0) + "]" } ?? "") + "\n"
            }
            out += "    ledger: \(s.state)" + (s.consensusGainMicronatsPerToken.map { ", consensus gain \($0) µnats/token" } ?? "") + "\n"
            out += "    outcome: \(s.outcome)\n"
        }
        if let m = r.merge {
            out += "\nMerge: kept \(m.chosen.method.rawValue) of \(m.chosen.members.count) update(s), held-out gain \(f(m.chosen.gain)) nats/token; candidates:\n"
            for c in m.candidates { out += "  \(c.method.rawValue) of \(c.members.count): gain \(f(c.gain)) nats/token, background regression bound \(c.regressionUCBMicronats) µnats/token\n" }
            out += "Credits (µnats/token): " + m.credits.sorted { $0.key < $1.key }.map { "\($0.key.prefix(12))… \($0.value)" }.joined(separator: ", ") + "\n"
        }
        out += "\nShares of the new expert versions:\n"
        for e in r.shares {
            out += "  expert \(e.expert) version \(e.version.prefix(12))…, \(e.totalUnits) units: "
                + e.holders.map { "\($0.owner) \($0.units) (" + f($0.fraction * 100, 2) + "%)" }.joined(separator: ", ") + "\n"
        }
        var byRecipient: [String: Int64] = [:]
        for p in r.payouts { byRecipient[p.recipient, default: 0] += p.amountMinorUnits }
        out += "\nRevenue \(r.revenueMinorUnits) minor units paid out:\n"
        for (k, v) in byRecipient.sorted(by: { $0.value > $1.value }) { out += "  \(k): \(v) minor units\n" }
        out += "  sum of payouts: \(r.payoutSumMinorUnits) minor units (\(r.payoutSumMinorUnits == r.revenueMinorUnits ? "equals the revenue exactly" : "MISMATCH"))\n"
        out += "\nledger verify: \(r.verify.ok ? "OK" : "FAILED") (\(r.verify.events) events)\n"
        out += "finished in " + f(r.seconds, 1) + " s" + (kept.map { "; market kept in \($0) (try: tessera ledger verify --market \($0), tessera ledger round \(r.round) --market \($0))" } ?? "") + "\n"
        return out
    }
}
