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
        adapters.materialise(into: model.parameters)
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
}
