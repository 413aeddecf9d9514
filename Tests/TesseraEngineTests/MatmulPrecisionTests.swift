import Foundation
import Testing
@testable import TesseraEngine
import TesseraCore
import TesseraTestSupport

/// The AMX split-bf16 products against a double-precision reference, and the rules that
/// keep results independent of how rows are batched.
@Suite struct MatmulPrecisionTests {
    static let amxPrecisions = MatmulPrecision.allCases.filter { $0 != .fp32 && $0.isUsable }

    struct Shape: Sendable, CustomStringConvertible {
        var m: Int, n: Int, k: Int, transA: Bool, transB: Bool, accumulate: Bool
        var description: String { "\(m)×\(n)×\(k) tA\(transA ? 1 : 0) tB\(transB ? 1 : 0)\(accumulate ? " +=" : "")" }
    }

    /// Edges in every dimension (partial tiles, k not a multiple of 32, one row), both
    /// operand layouts, overwrite and accumulate.
    static let shapes: [Shape] = [(1, 32, 32), (17, 33, 45), (40, 70, 100), (64, 64, 64), (100, 48, 257), (33, 129, 600)]
        .flatMap { s in [false, true].flatMap { ta in [false, true].flatMap { tb in [false, true].map { acc in
            Shape(m: s.0, n: s.1, k: s.2, transA: ta, transB: tb, accumulate: acc) } } } }

    /// Worst error of C relative to Σ|a·b| (+|C₀|) per element, the scale the rounding
    /// of any float product algorithm is proportional to; padding columns must be untouched.
    static func worstError(_ s: Shape, _ precision: MatmulPrecision, seed: UInt64) -> Double {
        var rng = SplitMix64(seed: seed)
        let lda = (s.transA ? s.m : s.k) + 3, ldb = (s.transB ? s.k : s.n) + 2, ldc = s.n + 5
        let a = (0..<((s.transA ? s.k : s.m) * lda)).map { _ in Float(rng.uniform() - 0.5) * 4 }
        let b = (0..<((s.transB ? s.n : s.k) * ldb)).map { _ in Float(rng.uniform() - 0.5) / 8 }
        let c0 = (0..<(s.m * ldc)).map { _ in Float(rng.uniform() - 0.5) }
        var c = c0
        a.withUnsafeBufferPointer { ap in b.withUnsafeBufferPointer { bp in c.withUnsafeMutableBufferPointer { cp in
            gemm(transA: s.transA, transB: s.transB, m: s.m, n: s.n, k: s.k, a: ap.baseAddress!, lda: lda,
                 b: bp.baseAddress!, ldb: ldb, beta: s.accumulate ? 1 : 0, c: cp.baseAddress!, ldc: ldc, precision: precision)
        } } }
        var worst = 0.0
        for i in 0..<s.m {
            for j in 0..<ldc {
                if j >= s.n {
                    if c[i * ldc + j] != c0[i * ldc + j] { return .infinity }
                    continue
                }
                var exact = s.accumulate ? Double(c0[i * ldc + j]) : 0
                var scale = abs(exact)
                for p in 0..<s.k {
                    let x = Double(s.transA ? a[p * lda + i] : a[i * lda + p])
                    let y = Double(s.transB ? b[j * ldb + p] : b[p * ldb + j])
                    exact += x * y
                    scale += abs(x * y)
                }
                worst = max(worst, abs(Double(c[i * ldc + j]) - exact) / scale)
            }
        }
        return worst
    }

    @Test(.enabled(if: MatmulPrecision.amxAvailable), arguments: amxPrecisions, shapes)
    func amxProductsMatchDoubleReference(_ precision: MatmulPrecision, _ shape: Shape) {
        // 16 significant bits per operand leave about 2⁻¹⁶ per product; 24 bits are float's own.
        let bound = precision == .bf16x3 ? 2e-5 : 1e-6
        let worst = Self.worstError(shape, precision, seed: UInt64(shape.m * 1000 + shape.k))
        #expect(worst <= bound, "\(precision) \(shape): worst relative error \(worst)")
    }

    /// fp32 is held to the same yardstick, so the bounds above are not loose by accident.
    @Test func openBLASMeetsTheTightBound() {
        for shape in Self.shapes.prefix(8) {
            #expect(Self.worstError(shape, .fp32, seed: 5) <= 1e-6, "\(shape)")
        }
    }

    /// On the AMX path a row's result does not depend on which other rows were computed
    /// with it (OpenBLAS picks kernels by size and promises no such thing): rows 37..<61
    /// alone equal the same rows of the whole product bit for bit, and even a single
    /// row takes the AMX path, which is chosen without looking at m.
    @Test(.enabled(if: MatmulPrecision.amxAvailable), arguments: amxPrecisions)
    func rowsAreIndependentOfTheBatch(_ precision: MatmulPrecision) {
        var rng = SplitMix64(seed: 3)
        let m = 100, n = 96, k = 80
        let a = (0..<(m * k)).map { _ in Float(rng.uniform() - 0.5) }
        let w = (0..<(n * k)).map { _ in Float(rng.uniform() - 0.5) }
        var whole = [Float](repeating: 0, count: m * n), part = [Float](repeating: 0, count: 24 * n)
        a.withUnsafeBufferPointer { ap in w.withUnsafeBufferPointer { wp in
            whole.withUnsafeMutableBufferPointer { linearForward(ap.baseAddress!, wp.baseAddress!, $0.baseAddress!, rows: m, inDim: k, outDim: n, precision: precision) }
            part.withUnsafeMutableBufferPointer { linearForward(ap.baseAddress! + 37 * k, wp.baseAddress!, $0.baseAddress!, rows: 24, inDim: k, outDim: n, parallel: false, precision: precision) }
        } }
        let differing = (0..<(24 * n)).filter { whole[37 * n + $0] != part[$0] }.count
        #expect(differing == 0, "\(differing) of \(24 * n) values differ")
        var single = [Float](repeating: 0, count: n), fp32 = [Float](repeating: 0, count: n)
        a.withUnsafeBufferPointer { ap in w.withUnsafeBufferPointer { wp in
            single.withUnsafeMutableBufferPointer { linearForward(ap.baseAddress! + 50 * k, wp.baseAddress!, $0.baseAddress!, rows: 1, inDim: k, outDim: n, precision: precision) }
            fp32.withUnsafeMutableBufferPointer { linearForward(ap.baseAddress! + 50 * k, wp.baseAddress!, $0.baseAddress!, rows: 1, inDim: k, outDim: n, precision: .fp32) }
        } }
        #expect(Array(whole[(50 * n)..<(51 * n)]) == single)
        #expect(single != fp32, "a single row should have been computed on AMX, not by OpenBLAS")
    }

    @Test func unknownAndUnavailablePrecisionsAreRefusedByName() throws {
        #expect { try MatmulPrecision.parse("fp16") } throws: { "\($0)".contains("'fp16'") && "\($0)".contains("fp32") }
        #expect(try MatmulPrecision.parse("fp32") == .fp32)
        if !MatmulPrecision.amxAvailable {
            #expect { try MatmulPrecision.parse("bf16x3") } throws: { "\($0)".contains("AMX") }
        }
    }
}

/// Attention's two products take the AMX path when the head is at least 32 wide (the
/// fixtures' heads are narrower, so this checks it directly against fp32).
@Suite struct AttentionPrecisionTests {
    @Test(.enabled(if: MatmulPrecision.amxAvailable), arguments: [nil, 30] as [Int?])
    func amxAttentionAgreesWithFp32(_ window: Int?) {
        let shape = AttentionShape(batch: 2, seq: 100, heads: 4, kvHeads: 2, headDim: 64, window: window)
        var rng = SplitMix64(seed: 17)
        let T = shape.batch * shape.seq
        let q = (0..<(T * shape.qStride)).map { _ in Float(rng.uniform() - 0.5) * 4 }
        let k = (0..<(T * shape.kvStride)).map { _ in Float(rng.uniform() - 0.5) * 4 }
        let v = (0..<(T * shape.kvStride)).map { _ in Float(rng.uniform() - 0.5) }
        func run(_ precision: MatmulPrecision) -> [Float] {
            var out = [Float](repeating: 0, count: T * shape.qStride)
            let scratch = FloatBuffer(count: Parallel.workers * shape.seq * shape.seq)
            q.withUnsafeBufferPointer { qp in k.withUnsafeBufferPointer { kp in v.withUnsafeBufferPointer { vp in
                out.withUnsafeMutableBufferPointer { op in
                    attentionForward(qp.baseAddress!, kp.baseAddress!, vp.baseAddress!, op.baseAddress!, probs: nil,
                                     scratch: scratch.pointer, shape: shape, precision: precision)
                }
            } } }
            return out
        }
        let reference = run(.fp32)
        for precision in MatmulPrecision.allCases where precision != .fp32 {
            let got = run(precision)
            let worst = zip(got, reference).map { abs($0 - $1) }.max() ?? 0
            // Measured: 4.4e-6 (bf16x3) and 2.7e-7 (bf16x6) on outputs of size up to 0.5.
            #expect(worst <= (precision == .bf16x3 ? 2e-5 : 1e-6), "\(precision): worst difference \(worst)")
            #expect(got != reference || precision == .fp32)
        }
    }
}
