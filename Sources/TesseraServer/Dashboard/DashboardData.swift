import Foundation
import TesseraCore
import TesseraLedger
import TesseraMarket

/// What the dashboard's pages show, read from the ledger in one go.
struct DashboardData {
    var state: LedgerState
    var revenues: [(seq: Int64, revenue: LedgerAction.Revenue)]
    var payouts: [Ledger.Payout]

    static func load(_ market: LocalMarket) async throws -> DashboardData {
        let state = try await market.state()
        return DashboardData(state: state, revenues: try market.revenueEvents(), payouts: try await market.payouts(event: nil))
    }

    /// A validator's verdicts with the consensus outcome: agreement is accepting what the
    /// ledger accepted (or merged) and rejecting what it rejected.
    func verdicts(of validator: String) -> [(submission: String, round: String, verdict: LedgerState.VerdictRecord, outcome: String)] {
        state.submissions.compactMap { id, s in
            s.verdicts[validator].map { (id, s.round, $0, s.state.rawValue) }
        }.sorted { ($0.round, $0.submission) < ($1.round, $1.submission) }
    }

    static func agrees(_ v: LedgerState.VerdictRecord, outcome: String) -> Bool? {
        switch outcome {
        case "accepted", "merged": return v.accept
        case "rejected": return !v.accept
        default: return nil
        }
    }
}
