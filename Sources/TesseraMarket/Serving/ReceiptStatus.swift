import Foundation
import TesseraCore
import TesseraLedger
import TesseraProof

/// Where a receipt stands: its request's period and domain, the price and usage metered,
/// and once the period is settled, the revenue event and the path from the receipt to the
/// event's receipts root. A client holding the receipt checks it against the ledger itself.
public struct ReceiptStatus: Codable, Sendable, Equatable {
    public var receipt: RoutingReceipt
    public var period: String
    public var domain: String
    public var price: Int64
    public var usage: [ExpertUsage]
    /// The settled revenue event (nil until the period is settled).
    public var event: Int64?
    public var receiptsRoot: String?
    public var proof: [RoutingReceipt.ProofStep]?
    enum CodingKeys: String, CodingKey { case receipt, period, domain, price, usage, event, proof, receiptsRoot = "receipts_root" }

    /// The status of the receipt whose hash is `hash` (nil: no metered request has it).
    public static func find(_ hash: String, market: LocalMarket) async throws -> ReceiptStatus? {
        let records = try UsageMeter.records(market: market.directory.path)
        guard let record = records.first(where: { $0.receipt.hash == hash }) else { return nil }
        var status = ReceiptStatus(receipt: record.receipt, period: record.period, domain: record.domain, price: record.price, usage: record.usage)
        var since: Int64 = 0
        while true {
            let page = try await market.events(since: since, limit: 1000, wait: 0)
            for e in page where e.kind == LedgerAction.Kind.revenue.rawValue {
                if case .revenue(let r) = try LedgerAction.decode(kind: e.kind, payload: e.payload),
                   r.domain == record.domain, r.period == record.period, let root = r.receiptsRoot {
                    let leaves = records.filter { $0.domain == record.domain && $0.period == record.period }.sorted { $0.id < $1.id }
                    status.event = e.seq
                    status.receiptsRoot = root
                    status.proof = leaves.firstIndex(where: { $0.id == record.id }).flatMap { RoutingReceipt.inclusionProof(leaves.map(\.receipt.hash), index: $0) }
                }
            }
            guard let last = page.last, page.count == 1000 else { break }
            since = last.seq
        }
        return status
    }
}
