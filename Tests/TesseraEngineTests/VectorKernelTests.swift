import Foundation
import Testing
@testable import TesseraEngine
import CVectorMath
import TesseraCore

/// The C vector kernels: the AVX2 and portable paths give identical bits, and both give
/// the bits of the Swift SIMD8 code they replaced (kept here as the reference), so moving
/// the loops to C changed no figure.
@Suite(.serialized) struct VectorKernelTests {
    static func inputs(_ n: Int, seed: UInt64, scale: Double) -> [Float] {
        var rng = SplitMix64(seed: seed)
        return (0..<n).map { i in
            switch rng.next() % 50 {
            case 0: return 95          // past exp's clamp
            case 1: return -120
            case 2: return -0.0
            default: return Float(rng.normal() * scale) + (i % 7 == 0 ? 3 : 0)
            }
        }
    }

    static let lengths = [0, 1, 3, 7, 8, 9, 15, 16, 17, 31, 64, 100, 257]

    @Test func pathsAgreeBitForBitAndMatchTheSwiftReference() throws {
        for n in Self.lengths {
            for (k, scale) in [0.5, 4, 40].enumerated() {
                let a = Self.inputs(n, seed: UInt64(n * 10 + k), scale: scale)
                let b = Self.inputs(n, seed: UInt64(n * 10 + k + 5), scale: scale)
                var results: [[UInt32]] = []
                for path in VectorPath.available {
                    results.append(VectorPath.with(path) {
                        var out: [UInt32] = []
                        var x = a
                        x.withUnsafeMutableBufferPointer { softmaxRow($0.baseAddress!, n) }
                        out += x.map(\.bitPattern)
                        out.append(a.withUnsafeBufferPointer { pa in b.withUnsafeBufferPointer { dot(pa.baseAddress!, $0.baseAddress!, n) } }.bitPattern)
                        var y = b
                        y.withUnsafeMutableBufferPointer { py in a.withUnsafeBufferPointer { axpy(0.37, $0.baseAddress!, py.baseAddress!, n) } }
                        out += y.map(\.bitPattern)
                        return out
                    })
                }
                // The Swift SIMD8 code the kernels replaced.
                var x = a
                x.withUnsafeMutableBufferPointer { referenceSoftmaxRow($0.baseAddress!, n) }
                var reference = x.map(\.bitPattern)
                reference.append(a.withUnsafeBufferPointer { pa in b.withUnsafeBufferPointer { referenceDot(pa.baseAddress!, $0.baseAddress!, n) } }.bitPattern)
                var y = b
                for i in 0..<n { y[i] += 0.37 * a[i] }
                reference += y.map(\.bitPattern)
                for r in results { #expect(r == reference, "n = \(n), scale \(scale)") }
            }
        }
    }

    @Test func swigluPathsAgreeBitForBit() throws {
        for width in [1, 5, 8, 13, 24, 40] {
            let rows = 3
            let gu = Self.inputs(rows * 2 * width, seed: UInt64(width), scale: 3)
            let da = Self.inputs(rows * width, seed: UInt64(width + 100), scale: 1)
            var outputs: [[UInt32]] = []
            for path in VectorPath.available {
                outputs.append(VectorPath.with(path) {
                    var a = [Float](repeating: 0, count: rows * width)
                    var dgu = [Float](repeating: 0, count: rows * 2 * width)
                    gu.withUnsafeBufferPointer { g in
                        a.withUnsafeMutableBufferPointer { tsr_swiglu_forward(g.baseAddress!, $0.baseAddress!, rows, width) }
                        da.withUnsafeBufferPointer { d in dgu.withUnsafeMutableBufferPointer { tsr_swiglu_backward(g.baseAddress!, d.baseAddress!, $0.baseAddress!, rows, width) } }
                    }
                    return (a + dgu).map(\.bitPattern)
                })
            }
            #expect(Set(outputs).count == 1, "width \(width)")
            // silu(g)·u within float rounding of the formula.
            let r = outputs[0].prefix(rows * width).map { Float(bitPattern: $0) }
            for i in 0..<width {
                let g = Double(gu[i]), u = Double(gu[width + i])
                #expect(abs(Double(r[i]) - g / (1 + exp(-g)) * u) <= 1e-5 * max(1, abs(g * u)), "width \(width) element \(i)")
            }
        }
    }

    /// A whole model pass gives the same loss on both paths.
    @Test func modelLossIsTheSameOnBothPaths() throws {
        let config = ModelConfig(family: .qwen3MoE, vocabSize: 64, hiddenSize: 24, layers: 2, heads: 3, kvHeads: 1, headDim: 8,
                                 experts: 5, topK: 2, expertWidth: 20, normTopKProb: true)
        let model = MoEModel(config: config)
        model.initializeRandomly(seed: 4, std: 0.2)
        var rng = SplitMix64(seed: 9)
        let tokens = try TokenBatch(batch: 2, seq: 13, ids: (0..<26).map { _ in Int32(rng.next() % 64) })
        let losses = try VectorPath.available.map { path in
            try VectorPath.with(path) { try ModelRun(model: model, batch: 2, seq: 13, training: false).forward(tokens).bitPattern }
        }
        #expect(Set(losses).count == 1)
    }
}

// The Swift SIMD8 kernels as they were before they moved to C.

@inline(__always) private func exp8(_ x: SIMD8<Float>) -> SIMD8<Float> {
    let magic = SIMD8<Float>(repeating: 12_582_912)
    var xc = x.replacing(with: 88.37626, where: x .> 88.37626)
    xc = xc.replacing(with: -87.33654, where: xc .< -87.33654)
    let shifted = xc * 1.44269504088896341 + magic
    let n = shifted - magic
    var r = xc - n * 0.693359375
    r = r + n * 2.12194440e-4
    let r2 = r * r
    var p = SIMD8<Float>(repeating: 1.9875691500e-4)
    p = p * r + 1.3981999507e-3
    p = p * r + 8.3334519073e-3
    p = p * r + 4.1665795894e-2
    p = p * r + 1.6666665459e-1
    p = p * r + 5.0000001201e-1
    p = p * r2 + r + 1
    let k = unsafeBitCast(shifted, to: SIMD8<Int32>.self) &- 0x4B40_0000
    let scale = unsafeBitCast((k &+ 127) &<< 23, to: SIMD8<Float>.self)
    return p * scale
}

@inline(__always) private func load8(_ p: UnsafePointer<Float>, _ count: Int, fill: Float) -> SIMD8<Float> {
    if count >= 8 { return UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self) }
    var v = SIMD8<Float>(repeating: fill)
    for i in 0..<count { v[i] = p[i] }
    return v
}

@inline(__always) private func store8(_ v: SIMD8<Float>, _ p: UnsafeMutablePointer<Float>, _ count: Int) {
    if count >= 8 { UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD8<Float>.self); return }
    for i in 0..<count { p[i] = v[i] }
}

private func referenceSoftmaxRow(_ x: UnsafeMutablePointer<Float>, _ n: Int) {
    if n == 0 { return }
    var m = -Float.infinity
    var i = 0
    var mv = SIMD8<Float>(repeating: -.infinity)
    while i + 8 <= n {
        let v = load8(x + i, 8, fill: 0)
        mv = mv.replacing(with: v, where: v .> mv)
        i += 8
    }
    m = mv.max()
    while i < n { m = max(m, x[i]); i += 1 }
    var sv = SIMD8<Float>()
    i = 0
    while i < n {
        let c = min(8, n - i)
        let e = exp8(load8(x + i, c, fill: -.infinity) - m)
        let masked = c == 8 ? e : e.replacing(with: 0, where: SIMD8<Int32>(0, 1, 2, 3, 4, 5, 6, 7) .>= SIMD8<Int32>(repeating: Int32(c)))
        store8(masked, x + i, c)
        sv += masked
        i += 8
    }
    let inv = 1 / sv.sum()
    i = 0
    while i + 8 <= n { store8(load8(x + i, 8, fill: 0) * inv, x + i, 8); i += 8 }
    while i < n { x[i] *= inv; i += 1 }
}

private func referenceDot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
    var acc = SIMD8<Float>()
    var i = 0
    while i + 8 <= n { acc += load8(a + i, 8, fill: 0) * load8(b + i, 8, fill: 0); i += 8 }
    var s = acc.sum()
    while i < n { s += a[i] * b[i]; i += 1 }
    return s
}

/// The fixed-order products: the AVX2+FMA path and the portable path give the same bits
/// for every shape and layout, and both are float-accurate against a double reference.
@Suite(.serialized) struct FixedGemmTests {
    static func random(_ n: Int, seed: UInt64) -> [Float] {
        var rng = SplitMix64(seed: seed)
        return (0..<n).map { _ in Float(rng.normal()) }
    }

    static func paths() -> [Int32] { tsr_fixed_gemm_fma_available() == 1 ? [1, 0] : [0] }

    @Test func pathsAgreeBitForBitOnEveryShape() throws {
        var checked = 0
        for (m, n, k) in [(1, 1, 1), (5, 7, 3), (6, 16, 8), (7, 17, 33), (13, 40, 64), (100, 33, 129), (97, 16, 1), (1, 37, 45), (4, 9, 8), (3, 24, 17), (8, 19, 40)] {
            for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
                for (alpha, accumulate) in [(Float(1), false), (Float(0.125), true)] {
                    let a = Self.random(m * k, seed: UInt64(m * 7 + k)), b = Self.random(k * n, seed: UInt64(n * 11 + k))
                    let c0 = Self.random(m * n, seed: 3)
                    var outs: [[UInt32]] = []
                    for path in Self.paths() {
                        let previous = tsr_fixed_gemm_force(path)
                        defer { _ = tsr_fixed_gemm_force(previous) }
                        var c = c0
                        let status = a.withUnsafeBufferPointer { pa in b.withUnsafeBufferPointer { pb in c.withUnsafeMutableBufferPointer { pc in
                            tsr_sgemm_fixed(ta ? 1 : 0, tb ? 1 : 0, m, n, k, alpha, pa.baseAddress!, ta ? m : k, pb.baseAddress!, tb ? k : n,
                                            accumulate ? 1 : 0, pc.baseAddress!, n)
                        } } }
                        #expect(status == 0)
                        outs.append(c.map(\.bitPattern))
                    }
                    #expect(Set(outs).count == 1, "\(m)×\(n)×\(k) transA \(ta) transB \(tb)")
                    // Against a double reference.
                    let c = outs[0].map { Float(bitPattern: $0) }
                    for i in 0..<m { for j in 0..<n {
                        var s = 0.0, mag = 0.0
                        for p in 0..<k {
                            let x = Double(ta ? a[p * m + i] : a[i * k + p]), y = Double(tb ? b[j * k + p] : b[p * n + j])
                            s += x * y; mag += abs(x * y)
                        }
                        let expected = Double(alpha) * s + (accumulate ? Double(c0[i * n + j]) : 0)
                        #expect(abs(Double(c[i * n + j]) - expected) <= 1e-6 * (mag + 1) * Double(k + 1), "\(i),\(j)")
                    } }
                    checked += 1
                }
            }
        }
        #expect(checked == 88)
    }

    /// A row's bits do not depend on how many rows were computed with it (decoding batches
    /// one to a few rows per expert; the same tokens must come out alone or batched).
    @Test func aRowsResultDoesNotDependOnItsBatchMates() throws {
        let n = 37, k = 70
        let b = Self.random(n * k, seed: 5), a = Self.random(13 * k, seed: 6)
        func product(rows m: Int) -> [UInt32] {
            var c = [Float](repeating: 0, count: m * n)
            _ = a.withUnsafeBufferPointer { pa in b.withUnsafeBufferPointer { pb in c.withUnsafeMutableBufferPointer { pc in
                tsr_sgemm_fixed(0, 1, m, n, k, 1, pa.baseAddress!, k, pb.baseAddress!, k, 0, pc.baseAddress!, n)
            } } }
            return Array(c.prefix(n)).map(\.bitPattern)
        }
        let alone = product(rows: 1)
        for m in 2...13 { #expect(product(rows: m) == alone, "first row of \(m)") }
    }

    /// Weights packed for decoding give the bits of the ordinary fixed-order product, for
    /// row counts up to and past a pass of eight, either layout of B, odd widths, float and
    /// bf16 panels, on every path this processor has (portable, AVX2, AVX-512).
    @Test func packedProductsGiveTheSameBits() {
        let paths: [Int32] = [0] + (tsr_fixed_gemm_fma_available() == 1 ? [1] : []) + (tsr_fixed_gemm_avx512_available() == 1 ? [2] : [])
        for (n, k) in [(37, 70), (64, 33), (8, 5), (100, 16), (160, 9), (300, 3)] {
            for tb in [false, true] {
                // bf16-exact weights, so that float and bf16 panels hold the same values.
                let b = Self.random(n * k, seed: UInt64(n + k)).map { Float(bitPattern: $0.bitPattern & 0xFFFF_0000) }
                let halves = b.map { UInt16($0.bitPattern >> 16) }
                let a = Self.random(11 * k, seed: 6)
                var packed = [Float](repeating: 0, count: tsr_packed_panels_count(n, k))
                var packedHalves = [UInt16](repeating: 0, count: tsr_packed_panels_count(n, k))
                b.withUnsafeBufferPointer { pb in packed.withUnsafeMutableBufferPointer { pp in
                    tsr_pack_panels(tb ? 1 : 0, n, k, pb.baseAddress!, tb ? k : n, pp.baseAddress!)
                } }
                halves.withUnsafeBufferPointer { pb in packedHalves.withUnsafeMutableBufferPointer { pp in
                    tsr_pack_panels_bf16(tb ? 1 : 0, n, k, pb.baseAddress!, tb ? k : n, pp.baseAddress!)
                } }
                for m in [1, 2, 3, 5, 8, 11] {
                    for (alpha, accumulate) in [(Float(1), false), (Float(0.5), true)] {
                        var plain = Self.random(m * n, seed: 2)
                        let start = plain
                        _ = a.withUnsafeBufferPointer { pa in b.withUnsafeBufferPointer { pb in plain.withUnsafeMutableBufferPointer { pc in
                            tsr_sgemm_fixed(0, tb ? 1 : 0, m, n, k, alpha, pa.baseAddress!, k, pb.baseAddress!, tb ? k : n, accumulate ? 1 : 0, pc.baseAddress!, n)
                        } } }
                        for path in paths {
                            let previous = tsr_fixed_gemm_force(path)
                            defer { _ = tsr_fixed_gemm_force(previous) }
                            var fast = start, fastHalves = start
                            _ = a.withUnsafeBufferPointer { pa in packed.withUnsafeBufferPointer { pp in fast.withUnsafeMutableBufferPointer { pc in
                                tsr_sgemm_fixed_packed(m, n, k, alpha, pa.baseAddress!, k, pp.baseAddress!, accumulate ? 1 : 0, pc.baseAddress!, n)
                            } } }
                            _ = a.withUnsafeBufferPointer { pa in packedHalves.withUnsafeBufferPointer { pp in fastHalves.withUnsafeMutableBufferPointer { pc in
                                tsr_sgemm_fixed_packed_bf16(m, n, k, alpha, pa.baseAddress!, k, pp.baseAddress!, accumulate ? 1 : 0, pc.baseAddress!, n)
                            } } }
                            #expect(plain.map(\.bitPattern) == fast.map(\.bitPattern), "f32 path \(path) m \(m) n \(n) k \(k) transB \(tb)")
                            #expect(plain.map(\.bitPattern) == fastHalves.map(\.bitPattern), "bf16 path \(path) m \(m) n \(n) k \(k) transB \(tb)")
                        }
                    }
                }
            }
        }
    }

    /// A whole model pass in fp32-fixed gives the same loss bits on both paths (and the
    /// same routing), and stays within float rounding of OpenBLAS.
    @Test func modelPassIsTheSameOnEveryPath() throws {
        let config = ModelConfig(family: .olmoe, vocabSize: 64, hiddenSize: 32, layers: 2, heads: 4, kvHeads: 2, headDim: 8,
                                 experts: 6, topK: 2, expertWidth: 24)
        let model = MoEModel(config: config)
        model.initializeRandomly(seed: 8, std: 0.2)
        var rng = SplitMix64(seed: 2)
        let tokens = try TokenBatch(batch: 3, seq: 17, ids: (0..<51).map { _ in Int32(rng.next() % 64) })
        var losses: [UInt64] = []
        var counts: [[[Int]]] = []
        for path in Self.paths() {
            let previous = tsr_fixed_gemm_force(path)
            defer { _ = tsr_fixed_gemm_force(previous) }
            let run = ModelRun(model: model, batch: 3, seq: 17, training: false)
            run.matmul = .fp32Fixed
            losses.append(try run.forward(tokens).bitPattern)
            counts.append(run.routerStats.counts)
        }
        #expect(Set(losses).count == 1)
        #expect(counts.allSatisfy { $0 == counts[0] })
        let blas = ModelRun(model: model, batch: 3, seq: 17, training: false)
        blas.matmul = .fp32
        let reference = try blas.forward(tokens)
        #expect(abs(Double(bitPattern: losses[0]) - reference) / reference < 1e-5)
    }
}
