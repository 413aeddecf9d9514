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
        let leaves = records.filter { $0.domain == record.domain && $0.period == record.period }.sorted { $0.id < $1.id }
        for (seq, r) in try market.revenueEvents() where r.domain == record.domain && r.period == record.period {
            guard let root = r.receiptsRoot else { continue }
            status.event = seq
            status.receiptsRoot = root
            status.proof = leaves.firstIndex(where: { $0.id == record.id }).flatMap { RoutingReceipt.inclusionProof(leaves.map(\.receipt.hash), index: $0) }
        }
        return status
    }
}
