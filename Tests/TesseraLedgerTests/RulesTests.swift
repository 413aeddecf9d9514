import Foundation
import Testing
@testable import TesseraEngine
@testable import TesseraLibrary
@testable import TesseraLedger
import TesseraCore
import TesseraTestSupport

@Suite struct AllocationTests {
    @Test func largestRemainderIsExactAndDeterministic() throws {
        var rng = SplitMix64(seed: 42)
        for _ in 0..<2_000 {
            let n = Int(rng.next() % 9) + 1
            let total = Int64(rng.next() % 10_000_000)
            let weights = (0..<n).map { (key: "k\($0)", weight: Int64(rng.next() % 1_000)) }
            let out = try Allocation.largestRemainder(total, weights)
            let W = weights.reduce(0) { $0 + $1.weight }
            #expect(out.reduce(0) { $0 + $1.amount } == (W > 0 ? total : 0))
            for (o, w) in zip(out, weights) {
                // Each share is its exact quota rounded down or up.
                let quota = Double(total) * Double(w.weight) / Double(max(W, 1))
                #expect(Double(o.amount) >= quota.rounded(.down) && Double(o.amount) <= quota.rounded(.up))
            }
            #expect(out.map(\.amount) == (try Allocation.largestRemainder(total, weights)).map(\.amount))
        }
        // Ties go to the smaller key.
        #expect((try Allocation.largestRemainder(1, [("b", 1), ("a", 1)])).map(\.amount) == [0, 1])
        // No overflow near the top of Int64.
        let big = try Allocation.largestRemainder(Int64.max / 2, [("a", Int64.max / 3), ("b", Int64.max / 3)])
        #expect(big.reduce(0) { $0 + $1.amount } == Int64.max / 2)
        // Weights that sum past Int64.max are refused, not trapped on.
        #expect(throws: LedgerError.self) { try Allocation.largestRemainder(10, [("a", Int64.max), ("b", 1)]) }
    }

    @Test func weightedMedianFollowsStake() throws {
        #expect(try Allocation.weightedMedian([("a", 10, 1), ("b", 20, 1), ("c", 1_000_000, 1)]) == 20)
        #expect(try Allocation.weightedMedian([("a", 10, 5), ("b", 20, 1), ("c", 30, 1)]) == 10)
        #expect(try Allocation.weightedMedian([]) == nil)
        // Half of the stake near Int64.max: no doubling that overflows.
        #expect(try Allocation.weightedMedian([("a", 10, Int64.max / 2), ("b", 20, Int64.max / 2)]) == 10)
        #expect(throws: LedgerError.self) { try Allocation.weightedMedian([("a", 10, Int64.max), ("b", 20, 1)]) }
    }

    @Test func mulDivIsExactOrSaysItDoesNotFit() {
        #expect(CheckedMath.mulDiv(Int64.max, 5_000, 10_000) == Int64.max / 2)
        #expect(CheckedMath.mulDiv(Int64.max, Int64.max, Int64.max) == Int64.max)
        #expect(CheckedMath.mulDiv(Int64.max, 2, 1) == nil)
        #expect(CheckedMath.mulDiv(Int64.max, Int64.max, 1) == nil)
        #expect(CheckedMath.mulDiv(3, 7, 2) == 10)
        #expect(CheckedMath.mulDiv(-1, 7, 2) == nil)
        var rng = SplitMix64(seed: 9)
        for _ in 0..<10_000 {
            let a = Int64(rng.next() >> 1), b = Int64(rng.next() % 100_000), d = Int64(rng.next() % 1_000_000) + 1
            let exact = a.multipliedFullWidth(by: b)
            // The reference: 128-bit quotient via Double only to decide fitting, then exact.
            let q = Double(a) * Double(b) / Double(d)
            if q < 9e18 { #expect(CheckedMath.mulDiv(a, b, d) == d.dividingFullWidth(exact).quotient) }
            if q > 9.3e18 { #expect(CheckedMath.mulDiv(a, b, d) == nil) }
        }
    }
}

