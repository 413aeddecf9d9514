import Foundation
import Testing
@testable import TesseraEngine
import TesseraCore

/// Products with adapted weights (W = W₀ + B·A, W never written) against products with W
/// written out: whole weights, weights made of two adapted parts (gate and up rows),
/// row and column windows of them, transposed or not on either side, with alpha and beta.
@Suite struct AdaptedWeightsTests {
    /// W [12, 5]: rows 0..<6 adapted at rank 2, rows 6..<12 at rank 1.
    final class Fixture {
        let rows = 12, columns = 5
        let w0: FloatBuffer, factors: FloatBuffer
        var rng = SplitMix64(seed: 3)
        init() {
            w0 = FloatBuffer(count: 12 * 5)
            factors = FloatBuffer(count: 6 * 2 + 2 * 5 + 6 * 1 + 1 * 5)
            for i in 0..<w0.count { w0.pointer[i] = Self.value(&rng) }
            for i in 0..<factors.count { factors.pointer[i] = Self.value(&rng) }
            let f = factors.pointer
            AdaptedWeights.register(w0.pointer, rows: 6, columns: 5, rank: 2, b: f, a: f + 12)
            AdaptedWeights.register(w0.pointer + 30, rows: 6, columns: 5, rank: 1, b: f + 22, a: f + 28)
        }
        deinit {
            AdaptedWeights.unregister(w0.pointer)
            AdaptedWeights.unregister(w0.pointer + 30)
        }
        static func value(_ rng: inout SplitMix64) -> Float { Float(rng.next() >> 40) / Float(1 << 24) - 0.5 }

        /// W₀ + B·A, summed in doubles.
        var written: [Double] {
            let f = factors.pointer
            return (0..<(rows * columns)).map { index in
                let i = index / columns, j = index % columns
                let (b, a, r, row) = i < 6 ? (f, f + 12, 2, i) : (f + 22, f + 28, 1, i - 6)
                return Double(w0.pointer[index]) + (0..<r).reduce(0.0) { $0 + Double(b[row * r + $1]) * Double(a[$1 * columns + j]) }
            }
        }
    }

    @Test func productsAndReadsSeeW0PlusBA() {
        let fx = Fixture()
        let w = fx.written
        var rng = SplitMix64(seed: 11)
        // (first row, rows, first column, columns) of W as the weight operand.
        let windows = [(0, 12, 0, 5), (0, 6, 0, 5), (3, 6, 0, 5), (4, 7, 1, 3), (7, 5, 2, 2)]
        for (r0, nr, c0, nc) in windows {
            for transB in [false, true] {
                for transA in [false, true] {
                    let m = 3
                    // op(B) is [k, n]: W's window as [nr, nc] when not transposed, its transpose otherwise.
                    let (k, n) = transB ? (nc, nr) : (nr, nc)
                    let a = (0..<(m * k)).map { _ in Fixture.value(&rng) }
                    var c = (0..<(m * n)).map { _ in Fixture.value(&rng) }
                    let c0Values = c
                    let alpha: Float = 0.75, beta: Float = 0.5
                    func opA(_ i: Int, _ p: Int) -> Double { Double(transA ? a[p * m + i] : a[i * k + p]) }
                    func opB(_ p: Int, _ j: Int) -> Double {
                        transB ? w[(r0 + j) * 5 + c0 + p] : w[(r0 + p) * 5 + c0 + j]
                    }
                    a.withUnsafeBufferPointer { ap in
                        c.withUnsafeMutableBufferPointer { cp in
                            gemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: ap.baseAddress!, lda: transA ? m : k,
                                 b: fx.w0.pointer + r0 * 5 + c0, ldb: 5, beta: beta, c: cp.baseAddress!, ldc: n, parallel: false, precision: .fp32Fixed)
                        }
                    }
                    for i in 0..<m {
                        for j in 0..<n {
                            let expected = Double(alpha) * (0..<k).reduce(0.0) { $0 + opA(i, $1) * opB($1, j) } + Double(beta) * Double(c0Values[i * n + j])
                            #expect(abs(Double(c[i * n + j]) - expected) <= 1e-5, "window \((r0, nr, c0, nc)) transA \(transA) transB \(transB) [\(i), \(j)]")
                        }
                    }
                }
            }
        }
        // Reads of any range, across the two parts and from inside a row.
        for (start, count) in [(0, 60), (7, 31), (33, 4)] {
            let read = FrozenWeights.array(fx.w0.pointer + start, count: count)
            for (i, v) in read.enumerated() { #expect(abs(Double(v) - w[start + i]) <= 1e-6) }
        }
    }

    @Test func unregisteredWeightsAreW0Again() {
        var fx: Fixture? = Fixture()
        let w0 = fx!.w0, stored = w0.array
        #expect(FrozenWeights.array(w0.pointer, count: w0.count) != stored)
        fx = nil
        #expect(FrozenWeights.array(w0.pointer, count: w0.count) == stored)
    }
}
