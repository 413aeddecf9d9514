import Foundation
import TesseraCore
import TesseraLedger

/// A period's metered requests as the ledger's revenue events, one per domain: the amount
/// is the sum of the requests' prices, the usage the sum of the gate mass each expert
/// version served, and the receipts root commits to every request's receipt. Payouts
/// then follow the ledger's existing rule (exact to the unit).
public enum Settlement {
    public static func revenues(records: [MeterRecord], period: String, at: Int64) throws -> [LedgerAction.Revenue] {
        let mine = records.filter { $0.period == period }
        var out: [LedgerAction.Revenue] = []
        for domain in Set(mine.map(\.domain)).sorted() {
            let rows = mine.filter { $0.domain == domain }.sorted { $0.id < $1.id }
            var amount: Int64 = 0
            var usage: [String: LedgerAction.Usage] = [:]
            for r in rows {
                let (sum, overflow) = amount.addingReportingOverflow(r.price)
                guard !overflow, r.price >= 0 else { throw CoreError("meter: the prices of period \(period) in domain \(domain) overflow at request \(r.id)") }
                amount = sum
                for u in r.usage where !u.version.isEmpty {
                    let key = "\(u.layer):\(u.expert)=\(u.version)"
                    var entry = usage[key] ?? LedgerAction.Usage(layer: u.layer, expert: u.expert, version: u.version, usage: 0)
                    let (total, over) = entry.usage.addingReportingOverflow(u.usage)
                    guard !over else { throw CoreError("meter: usage of expert \(key) overflows in period \(period)") }
                    entry.usage = total
                    usage[key] = entry
                }
            }
            guard amount > 0 else { continue }
            let items = usage.values.sorted { ($0.layer, $0.expert, $0.version) < ($1.layer, $1.expert, $1.version) }
            out.append(LedgerAction.Revenue(at: at, domain: domain, period: period, amount: amount, usage: items,
                                            receiptsRoot: RoutingReceipt.merkleRoot(rows.map(\.receipt.hash))))
        }
        return out
    }

    /// Records the revenue of `period` for each domain not settled for it yet. Only an
    /// ended period is settled: a request metered into a period after its settlement would
    /// never be paid (nor be in the receipts root its client checks).
    public static func settle(market: LocalMarket, period: String, key: ParticipantKey, at: Int64) async throws -> [LedgerAction.Revenue] {
        let seconds = market.rules.serving.periodSeconds
        guard let start = UTCTime.seconds(period) else { throw CoreError("period \(period.prefix(80)) is not a period start such as 2026-12-01T00:00:00Z") }
        guard start + seconds <= at else {
            throw CoreError("period \(period) ends at \(UTCTime.string(start + seconds)); it can be settled from then on")
        }
        let state = try await market.state()
        let pending = try revenues(records: try UsageMeter.records(market: market.directory.path), period: period, at: at)
            .filter { !state.revenuePeriods.contains($0.domain + "\u{0}" + $0.period) }
        for revenue in pending { _ = try await market.post(try SignedAction(.revenue(revenue), key: key)) }
        return pending
    }

    /// Periods with metered requests that ended before `now` and are not settled yet.
    public static func closedPeriods(market: LocalMarket, seconds: Int64, now: Int64) async throws -> [String] {
        let current = MeterRecord.period(at: now, seconds: seconds)
        let state = try await market.state()
        let records = try UsageMeter.records(market: market.directory.path)
        return Set(records.filter { $0.period != current && !state.revenuePeriods.contains($0.domain + "\u{0}" + $0.period) }.map(\.period)).sorted()
    }
}

