import Foundation
import Testing
@testable import TesseraEngine
import TesseraCore
import TesseraTestSupport

/// Frozen weights kept in bf16 (`FrozenWeights`): every product with them gives the bits
/// the same weights give as floats, for every family, forward, backward and decoding.
@Suite(.serialized) struct FrozenWeightsTests {
    /// A bf16-exact random matrix as floats and as bf16 bits.
    static func matrix(_ count: Int, seed: UInt64) -> (floats: FloatBuffer, bits: BF16Buffer) {
        var rng = SplitMix64(seed: seed)
        let f = FloatBuffer(count: count), b = BF16Buffer(count: count)
        for i in 0..<count {
            let x = Float(rng.normal())
            let bits = UInt16(truncatingIfNeeded: x.bitPattern >> 16)
            b.pointer[i] = bits
            f[i] = Float(bitPattern: UInt32(bits) << 16)
        }
        return (f, b)
    }

    @Test(arguments: [1, 3, 8, 37], [false, true])
    func productsWithBackedWeightsAreTheFloatProducts(_ m: Int, _ transB: Bool) throws {
        let n = 70, k = 45
        let (a, _) = Self.matrix(m * k, seed: 1)
        let (floats, bits) = Self.matrix(n * k, seed: 2)
        let backed = FloatBuffer(count: n * k)
        FrozenWeights.register(backed.pointer, count: n * k, source: bits.pointer, owner: bits)
        defer { FrozenWeights.thaw(backed.pointer, count: n * k, keep: false) }
        let ldb = transB ? k : n
        for precision in [MatmulPrecision.fp32Fixed, .fp32] {
            for packed in [false, true] where !packed || precision == .fp32Fixed {
                if packed { PackedWeights.register(backed); PackedWeights.register(floats) }
                defer { if packed { PackedWeights.unregister(backed); PackedWeights.unregister(floats) } }
                for beta: Float in [0, 1] {
                    let want = FloatBuffer(count: m * n), got = FloatBuffer(count: m * n)
                    for i in 0..<(m * n) { want[i] = Float(i % 7); got[i] = Float(i % 7) }
                    gemm(transB: transB, m: m, n: n, k: k, alpha: 0.5, a: a.pointer, lda: k, b: floats.pointer, ldb: ldb,
                         beta: beta, c: want.pointer, ldc: n, precision: precision)
                    gemm(transB: transB, m: m, n: n, k: k, alpha: 0.5, a: a.pointer, lda: k, b: backed.pointer, ldb: ldb,
                         beta: beta, c: got.pointer, ldc: n, precision: precision)
                    if precision == .fp32Fixed {
                        #expect(got.array == want.array, "m \(m) transB \(transB) packed \(packed) beta \(beta)")
                    } else {
                        let worst = zip(got.array, want.array).map { abs($0 - $1) }.max() ?? 0
                        #expect(worst < 1e-4, "fp32 m \(m) transB \(transB) beta \(beta): \(worst)")
                    }
                }
            }
        }
        // A sub-matrix view (rows 5..<15 of op(B)) is found inside the backed range too.
        let want = FloatBuffer(count: m * 10), got = FloatBuffer(count: m * 10)
        let offset = transB ? 5 * k : 5
        gemm(transB: transB, m: m, n: 10, k: k, a: a.pointer, lda: k, b: floats.pointer + offset, ldb: ldb, c: want.pointer, ldc: 10,
             precision: .fp32Fixed)
        gemm(transB: transB, m: m, n: 10, k: k, a: a.pointer, lda: k, b: backed.pointer + offset, ldb: ldb, c: got.pointer, ldc: 10,
             precision: .fp32Fixed)
        #expect(got.array == want.array)
    }

    @Test func readingAndThawingKeepEveryValue() throws {
        let (floats, bits) = Self.matrix(3000, seed: 5)
        let buffer = FloatBuffer(count: 5000)
        for i in 0..<5000 { buffer[i] = -Float(i) }
        // Two backed runs with float gaps around them.
        FrozenWeights.register(buffer.pointer + 100, count: 1000, source: bits.pointer, owner: bits)
        FrozenWeights.register(buffer.pointer + 1500, count: 2000, source: bits.pointer + 1000, owner: bits)
        var expected = (0..<5000).map { -Float($0) }
        for i in 0..<1000 { expected[100 + i] = floats[i] }
        for i in 0..<2000 { expected[1500 + i] = floats[1000 + i] }
        #expect(FrozenWeights.array(buffer.pointer, count: 5000) == expected)
        #expect(FrozenWeights.array(buffer.pointer + 1200, count: 400) == Array(expected[1200..<1600]))
        #expect(FrozenWeights.overlaps(buffer.pointer + 1099, count: 1) && !FrozenWeights.overlaps(buffer.pointer + 1100, count: 400))
        // Thawing part of a run without keeping it keeps the rest of the run.
        FrozenWeights.thaw(buffer.pointer + 1600, count: 10, keep: false)
        #expect(!FrozenWeights.overlaps(buffer.pointer + 1500, count: 2000))
        for i in 1600..<1610 { buffer[i] = 7 }
        for i in 1600..<1610 { expected[i] = 7 }
        #expect(buffer.array == expected.enumerated().map { i, x in (100..<1100).contains(i) ? buffer[i] : x })
        FrozenWeights.thaw(buffer.pointer, count: 5000)
        #expect(buffer.array == expected)
    }

    /// Each family's fixture saved in bf16, loaded with its matrices kept bf16 and as floats.
    static func pair(_ name: String, _ dir: TemporaryDirectory) throws -> (frozen: MoEModel, floats: MoEModel) {
        let source = try MoEModel(directory: ReferenceFixtures.path(name), keepBF16: false)
        try source.save(directory: dir.sub(name), dtype: .bf16)
        return (try MoEModel(directory: dir.sub(name), keepBF16: true), try MoEModel(directory: dir.sub(name), keepBF16: false))
    }

    @Test(arguments: ReferenceFixtures.names + ReferenceFixtures.mxfp4)
    func everyFamilyComputesTheSameBitsFromBF16Weights(_ name: String) throws {
        let dir = TemporaryDirectory("frozen")
        let (frozen, floats) = try Self.pair(name, dir)
        let matrices = frozen.layout.tensors.filter { MoEModel.mayStayBF16($0) }.reduce(0) { $0 + $1.count }
        #expect(frozen.bf16Bytes == 2 * matrices && floats.bf16Bytes == 0)
        #expect(frozen.parameterValues == floats.parameterValues)
        let tokens = try ReferenceTests.tokens(try ReferenceFixtures.expected(name))
        var results: [(Double, [Float], [Float])] = []
        for model in [frozen, floats] {
            let run = ModelRun(model: model, batch: tokens.batch, seq: tokens.seq, training: true)
            run.matmul = .fp32Fixed
            let grads = FloatBuffer(count: model.parameters.count)
            let loss = try run.lossAndGradients(tokens, trainable: .all(model.layout), grads: grads)
            let logits = Array(UnsafeBufferPointer(start: run.logits.pointer, count: tokens.batch * tokens.seq * model.config.vocabSize))
            results.append((loss, logits, grads.array))
        }
        #expect(results[0].0 == results[1].0)
        #expect(results[0].1 == results[1].1, "logits")
        #expect(results[0].2 == results[1].2, "gradients")
        // Decoding reads the weights through bf16 packed panels: the same logits again.
        var decoded: [[Float]] = []
        for model in [frozen, floats] {
            let decoder = Decoder(model: model, maxRows: 8, maxContext: tokens.seq)
            let cache = try decoder.makeCache(capacity: tokens.seq)
            var out: [Float] = []
            for t in 0..<min(tokens.seq, 6) { out += try decoder.step([Decoder.Feed(cache: cache, tokens: [tokens.ids[t]])])[0] }
            decoded.append(out)
        }
        #expect(decoded[0] == decoded[1], "decoded logits")
        // The saved checkpoint is the loaded one.
        try frozen.save(directory: dir.sub("again"))
        #expect(try MoEModel(directory: dir.sub("again"), keepBF16: false).parameterValues == floats.parameterValues)
    }

    @Test func aNonFiniteBF16WeightIsRefusedNamingTheTensor() throws {
        let dir = TemporaryDirectory("frozen-bad")
        let model = try MoEModel(directory: ReferenceFixtures.path("olmoe-tiny"), keepBF16: false)
        let e = model.layout.layers[1].experts[2]
        model.parameters[e.down.offset + 3] = .infinity
        try model.save(directory: dir.path, dtype: .bf16)
        #expect { try MoEModel(directory: dir.path, keepBF16: true) } throws: { "\($0)".contains("mlp.experts.2.down_proj") && "\($0)".contains("element 3") }
    }
}
