import Foundation
import Testing
@testable import TesseraEngine
import TesseraCore
import TesseraTestSupport

/// Adapters take their experts' gradients straight from the backward pass (no full-size
/// gradient of those experts is written): the factor gradients are the same bits as
/// projecting a full gradient buffer, in every family (gpt-oss's interleaved gate/up too).
@Suite struct AdapterGradientTests {
    @Test(arguments: ReferenceFixtures.names)
    func theSinkGivesTheFactorGradientsOfTheFullBuffer(_ name: String) throws {
        let model = try MoEModel(directory: ReferenceFixtures.path(name), keepBF16: false)
        let c = model.config
        let experts = (0..<c.layers).filter { c.sparseLayers[$0] }.flatMap { l in [0, c.experts - 1].map { ExpertID(layer: l, expert: $0) } }
        let trainable = try TrainableSet.experts(experts, in: model.layout)
        let adapters = try LowRankAdapters(model: model, experts: experts, rank: 2, seed: 5)
        adapters.fillB(seed: 9)
        let tokens = try ReferenceTests.tokens(try ReferenceFixtures.expected(name))
        let run = ModelRun(model: model, batch: tokens.batch, seq: tokens.seq, training: true)
        run.matmul = .fp32Fixed

        let grads = FloatBuffer(count: model.parameters.count)
        let viaBuffer = FloatBuffer(count: adapters.factors.count)
        let lossA = try run.lossAndGradients(tokens, trainable: trainable, grads: grads)
        adapters.factorGradients(from: grads, into: viaBuffer)

        let untouched = FloatBuffer(count: model.parameters.count)
        let viaSink = FloatBuffer(count: adapters.factors.count)
        run.expertGradients = AdapterGradients(adapters, into: viaSink)
        let lossB = try run.lossAndGradients(tokens, trainable: trainable, grads: untouched)
        #expect(lossA == lossB)
        #expect(viaSink.array == viaBuffer.array)
        #expect(viaBuffer.array.contains { $0 != 0 }, "the experts were reached")
        let expertViews = experts.flatMap { model.layout.layers[$0.layer].experts[$0.expert].all }
        #expect(expertViews.allSatisfy { v in untouched.array(v).allSatisfy { $0 == 0 } }, "no expert gradient went to the buffer")
    }

    /// Adapted matrices are never written out: W₀ stays where the model keeps it (bf16 in
    /// the mapped checkpoint, or floats), reads give W₀ + B·A to the bit of a sum over the
    /// rank, and the model's loss and gradients equal those of a model holding W₀ + B·A as
    /// floats, to rounding (the correction is summed apart from W₀'s product). Ending the
    /// adapters gives W₀ back.
    @Test(arguments: [("olmoe-bf16-clip", true), ("olmoe-bf16-clip", false), ("olmoe-tiny", true), ("gptoss-tiny", false)])
    func adaptedMatricesComputeAsW0PlusBAWithoutWritingIt(_ name: String, _ keepBF16: Bool) throws {
        let model = try MoEModel(directory: ReferenceFixtures.path(name), keepBF16: keepBF16)
        let c = model.config
        // The first and last sparse layers: the first's gradients flow back through the last's adapted products.
        let sparse = (0..<c.layers).filter { c.sparseLayers[$0] }
        let experts = [ExpertID(layer: sparse.first!, expert: 1), ExpertID(layer: sparse.first!, expert: 0),
                       ExpertID(layer: sparse.last!, expert: 2)]
        let before = model.parameterValues, bf16Before = model.bf16Bytes
        do {
            let ad = try LowRankAdapters(model: model, experts: experts, rank: 2, seed: 1)
            #expect(model.parameterValues == before, "B = 0: W = W₀ exactly")
            for i in 0..<ad.factors.count { ad.factors.pointer[i] = Float(i % 7 - 3) * 0.01 }
            #expect(model.bf16Bytes == bf16Before, "no adapted matrix was thawed")
            if name.contains("bf16") && keepBF16 { #expect(bf16Before > 0) }

            let materialised = FloatBuffer(before)
            for mat in ad.matrices {
                let b = ad.factors.array(mat.factorsB), a = ad.factors.array(mat.factorsA)
                var expected = Array(before[mat.view.offset..<(mat.view.offset + mat.view.count)])
                for i in 0..<mat.rows {
                    for j in 0..<mat.columns {
                        var sum: Float = 0
                        for q in 0..<2 { sum += b[i * 2 + q] * a[q * mat.columns + j] }
                        expected[i * mat.columns + j] += sum
                    }
                }
                #expect(model.values(mat.view) == expected)
                for (i, v) in expected.enumerated() { materialised.pointer[mat.view.offset + i] = v }
            }
            let plain = try MoEModel(directory: ReferenceFixtures.path(name), keepBF16: false)
            plain.thawAll()
            plain.parameters.pointer.update(from: materialised.pointer, count: materialised.count)

            let tokens = try ReferenceTests.tokens(try ReferenceFixtures.expected(name))
            let trainable = try TrainableSet.experts(experts, in: model.layout)
            func lossAndGradients(_ m: MoEModel) throws -> (Double, [Float]) {
                let run = ModelRun(model: m, batch: tokens.batch, seq: tokens.seq, training: true)
                run.matmul = .fp32Fixed
                let grads = FloatBuffer(count: m.parameters.count)
                let loss = try run.lossAndGradients(tokens, trainable: trainable, grads: grads)
                return (loss, ad.matrices.flatMap { grads.array($0.view) })
            }
            let (adaptedLoss, adaptedGrads) = try lossAndGradients(model)
            let (plainLoss, plainGrads) = try lossAndGradients(plain)
            #expect(abs(adaptedLoss - plainLoss) <= 1e-5 * abs(plainLoss), "\(adaptedLoss) vs \(plainLoss)")
            let scale = plainGrads.map { abs($0) }.max() ?? 0
            #expect(scale > 0)
            #expect(zip(adaptedGrads, plainGrads).allSatisfy { abs($0 - $1) <= 1e-4 * scale })
        }
        #expect(model.parameterValues == before, "without the adapters the model is W₀ again")
    }
}
