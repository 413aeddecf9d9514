import Foundation
import Synchronization
import Testing
import TesseraCore

/// `Parallel` runs through a worker pool whose helpers spin between regions, with Dispatch
/// as the fallback when the pool is busy: every index must run exactly once either way,
/// with one caller, many callers at once, and regions started from inside a region.
@Suite struct ParallelTests {
    /// Counts how often each index ran.
    final class Tally: @unchecked Sendable {
        let counts: UnsafeMutablePointer<Atomic<Int>>
        let n: Int
        init(_ n: Int) {
            self.n = n
            counts = .allocate(capacity: n)
            for i in 0..<n { (counts + i).initialize(to: Atomic(0)) }
        }
        deinit { counts.deinitialize(count: n); counts.deallocate() }
        func hit(_ i: Int) { counts[i].add(1, ordering: .relaxed) }
        var eachOnce: Bool { (0..<n).allSatisfy { counts[$0].load(ordering: .relaxed) == 1 } }
    }

    @Test func everyIndexRunsOnce() {
        for n in [1, 2, 3, 7, 64, 1000] {
            for _ in 0..<50 {
                let tally = Tally(n)
                Parallel.forEach(n) { tally.hit($0) }
                #expect(tally.eachOnce, "n \(n)")
            }
        }
    }

    @Test func manyCallersAtOnce() async {
        await withTaskGroup(of: Bool.self) { group in
            for caller in 0..<8 {
                group.addTask {
                    var ok = true
                    for round in 0..<200 {
                        let n = 1 + (caller * 31 + round) % 40
                        let tally = Tally(n)
                        Parallel.forEach(n) { tally.hit($0) }
                        ok = ok && tally.eachOnce
                    }
                    return ok
                }
            }
            for await ok in group { #expect(ok) }
        }
    }

    @Test func regionsInsideRegions() {
        let outer = 6, inner = 25
        let tally = Tally(outer * inner)
        Parallel.forEach(outer) { i in
            Parallel.forEach(inner) { j in tally.hit(i * inner + j) }
        }
        #expect(tally.eachOnce)
    }

    /// Parts cover the range in order without overlap, each part index once.
    @Test func partsCoverTheRange() {
        for total in [1, 5, 64, 1001] {
            let tally = Tally(total)
            Parallel.parts(total) { _, range in for i in range { tally.hit(i) } }
            #expect(tally.eachOnce, "total \(total)")
        }
    }
}
