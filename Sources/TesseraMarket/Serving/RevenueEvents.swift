import TesseraLedger

extension LocalMarket {
    /// Every revenue event with its number, in ledger order: the ledger's revenue table
    /// names them, so only those events are read (not the whole chain).
    public func revenueEvents() throws -> [(seq: Int64, revenue: LedgerAction.Revenue)] {
        try ledger.revenues().sorted { $0.event < $1.event }.compactMap { row in
            guard let e = try ledger.events(since: row.event - 1, limit: 1).first, e.seq == row.event,
                  case .revenue(let r) = try LedgerAction.decode(kind: e.kind, payload: e.payload) else { return nil }
            return (e.seq, r)
        }
    }
}
