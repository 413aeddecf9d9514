import Foundation
import Testing
@testable import TesseraEngine
@testable import TesseraLibrary
@testable import TesseraLedger
import TesseraCore
import TesseraTestSupport

@Suite struct AllocationTests {
    @Test func largestRemainderIsExactAndDeterministic() {
        var rng = SplitMix64(seed: 42)
        for _ in 0..<2_000 {
            let n = Int(rng.next() % 9) + 1
            let total = Int64(rng.next() % 10_000_000)
            let weights = (0..<n).map { (key: "k\($0)", weight: Int64(rng.next() % 1_000)) }
            let out = Allocation.largestRemainder(total, weights)
            let W = weights.reduce(0) { $0 + $1.weight }
            #expect(out.reduce(0) { $0 + $1.amount } == (W > 0 ? total : 0))
            for (o, w) in zip(out, weights) {
                // Each share is its exact quota rounded down or up.
                let quota = Double(total) * Double(w.weight) / Double(max(W, 1))
                #expect(Double(o.amount) >= quota.rounded(.down) && Double(o.amount) <= quota.rounded(.up))
            }
            #expect(out.map(\.amount) == Allocation.largestRemainder(total, weights).map(\.amount))
        }
        // Ties go to the smaller key.
        #expect(Allocation.largestRemainder(1, [("b", 1), ("a", 1)]).map(\.amount) == [0, 1])
        // No overflow near the top of Int64.
        let big = Allocation.largestRemainder(Int64.max / 2, [("a", Int64.max / 3), ("b", Int64.max / 3)])
        #expect(big.reduce(0) { $0 + $1.amount } == Int64.max / 2)
    }

    @Test func weightedMedianFollowsStake() {
        #expect(Allocation.weightedMedian([("a", 10, 1), ("b", 20, 1), ("c", 1_000_000, 1)]) == 20)
        #expect(Allocation.weightedMedian([("a", 10, 5), ("b", 20, 1), ("c", 30, 1)]) == 10)
        #expect(Allocation.weightedMedian([]) == nil)
    }
}

