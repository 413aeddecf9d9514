import Foundation

/// The demo's report as a terminal reader sees it.
public enum DemoReportText {
    public static func render(_ r: Demo.Report, kept: String?) -> String {
        var out = "\n=== Tessera demo report ===\n"
        func f(_ x: Double, _ d: Int = 4) -> String { String(format: "%.\(d)f", x) }
        out += "Spanish held-out loss: \(f(r.heldOutLossBefore)) → \(f(r.heldOutLossAfter)) nats/byte ("
            + f(r.heldOutLossBefore / log(2), 3) + " → " + f(r.heldOutLossAfter / log(2), 3) + " bits/byte)\n"
        out += "English background loss: \(f(r.backgroundLossBefore)) → \(f(r.backgroundLossAfter)) nats/byte\n\n"
        out += "Submissions:\n"
        for s in r.submissions {
            out += "  \(s.contributor) (\(s.behaviour)), bundle \(s.bundle.prefix(12))…, experts \(s.experts.joined(separator: " ")), \(s.deltaBytes) bytes of deltas\n"
            for v in s.verdicts {
                out += "    \(v.validator): \(v.accept ? "ACCEPT" : "REJECT") — \(v.reason)"
                    + (v.maxCosine.map { " [largest cosine with an earlier delta " + f($0) + "]" } ?? "") + "\n"
            }
            out += "    ledger: \(s.state)" + (s.consensusGainMicronats.map { ", consensus gain \($0) µnats/token" } ?? "") + "\n"
        }
        if let m = r.merge {
            out += "\nMerge: kept \(m.chosen.method.rawValue) of \(m.chosen.members.count) update(s), held-out gain \(f(m.chosen.gain)) nats/token; candidates:\n"
            for c in m.candidates { out += "  \(c.method.rawValue) of \(c.members.count): gain \(f(c.gain)), background regression bound \(c.regressionUCBMicronats) µnats\n" }
            out += "Credits (µnats/token): " + m.credits.sorted { $0.key < $1.key }.map { "\($0.key.prefix(12))… \($0.value)" }.joined(separator: ", ") + "\n"
        }
        out += "\nShares of the new expert versions:\n"
        for e in r.shares {
            out += "  expert \(e.expert) version \(e.version.prefix(12))…, \(e.totalUnits) units: "
                + e.holders.map { "\($0.owner) \($0.units) (" + f($0.fraction * 100, 2) + "%)" }.joined(separator: ", ") + "\n"
        }
        var byRecipient: [String: Int64] = [:]
        for p in r.payouts { byRecipient[p.recipient, default: 0] += p.amount }
        out += "\nRevenue \(r.revenue) minor units paid out:\n"
        for (k, v) in byRecipient.sorted(by: { $0.value > $1.value }) { out += "  \(k): \(v)\n" }
        out += "  sum of payouts: \(r.payoutSum) (\(r.payoutSum == r.revenue ? "equals the revenue exactly" : "MISMATCH"))\n"
        out += "\nledger verify: \(r.verify.ok ? "OK" : "FAILED") (\(r.verify.events) events)\n"
        out += "finished in " + f(r.seconds, 1) + " s" + (kept.map { "; market kept in \($0) (try: tessera ledger verify --market \($0), tessera ledger expert 0:0 --market \($0))" } ?? "") + "\n"
        return out
    }
}
