import Foundation
import Testing
@testable import TesseraEngine
@testable import TesseraLibrary
@testable import TesseraLedger
import TesseraCore
import TesseraTestSupport

@Suite struct PropertyTests {
    /// Random sequences of actions, valid and invalid, against the invariants: the chain
    /// verifies, no holding is negative, every expert's units are the sum of its holdings,
    /// payouts add up to the revenue distributed, and a fresh replay reproduces the state.
    @Test(arguments: StoreKind.tested, [1, 2, 3] as [UInt64])
    func randomOperationSequencesKeepTheInvariants(_ store: StoreKind, _ seed: UInt64) throws {
        let m = try MarketFixture(store: store)
        var rng = SplitMix64(seed: seed)
        var bundles: [String] = []
        var revenueTotal: Int64 = 0
        var period = 0
        for step in 0..<250 {
            guard let (action, revenue, bundle) = try m.randomAction(&rng, tag: "\(seed)-\(step)", bundles: bundles, period: &period) else { continue }
            do {
                try m.ledger.append(action)
                revenueTotal += revenue ?? 0
                bundles += bundle.map { [$0] } ?? []
            } catch LedgerError.refused {
                continue
            }
        }
        let state = try m.ledger.currentState()
        // The sequence reached every stage: merges minted units, revenue was paid out.
        #expect(state.experts.values.contains { $0.versions.count > 1 && $0.holdings.count > 1 })
        #expect(revenueTotal > 0)
        try m.checkBalances(revenueTotal: revenueTotal)
        let v = try m.verify()
        #expect(v.ok, "\(v.problem ?? "")")
        let reopened = try m.reopen()
        #expect(try reopened.currentState() == state)
    }

    /// Two handles on one database (as two processes would have), each on its own thread,
    /// both appending and re-sending each other's actions: nothing lost, nothing twice.
    @Test(arguments: StoreKind.tested) func concurrentWritersLoseNothingAndDuplicateNothing(_ store: StoreKind) throws {
        let m = try MarketFixture(store: store)
        let start = try m.eventCount()
        let keys = (0..<120).map { _ in ParticipantKey.generate().publicHex }
        let actions = try keys.enumerated().map { i, k in
            try SignedAction(.register(.init(at: 5_000 + Int64(i), key: k, roles: [.contributor], stake: 0)), key: m.op)
        }
        let handles = try (0..<2).map { _ in try m.reopen() }
        let errors = ErrorBox()
        DispatchQueue.concurrentPerform(iterations: 2) { w in
            do {
                // Each writer sends every action, in its own order and batch sizes.
                let order = w == 0 ? actions : actions.reversed()
                var i = 0
                while i < order.count {
                    let n = w == 0 ? 7 : 3
                    try handles[w].append(Array(order[i..<min(order.count, i + n)]))
                    i += n
                }
            } catch {
                errors.add("\(error)")
            }
        }
        #expect(errors.all.isEmpty, "\(errors.all)")
        #expect(try m.eventCount() == start + Int64(keys.count))
        let state = try m.ledger.currentState()
        #expect(keys.allSatisfy { state.participants[$0] != nil })
        #expect(try m.verify().ok)
    }
}

final class ErrorBox: @unchecked Sendable {
    private let lock = NSLock()
    private var items: [String] = []
    func add(_ s: String) { lock.lock(); items.append(s); lock.unlock() }
    var all: [String] { lock.lock(); defer { lock.unlock() }; return items }
}
