import Foundation
import Testing
@testable import TesseraEngine
import TesseraCore
import TesseraTestSupport

/// Training that recomputes each layer's forward pass in the backward pass instead of
/// keeping every layer's activations gives the same loss, gradients and routing
/// statistics, to the bit, in every family, with a fraction of the activation memory.
@Suite struct RecomputeActivationsTests {
    @Test(arguments: ReferenceFixtures.names)
    func recomputedActivationsGiveTheSameBits(_ name: String) throws {
        let model = try MoEModel(directory: ReferenceFixtures.path(name), keepBF16: false)
        let tokens = try ReferenceTests.tokens(try ReferenceFixtures.expected(name))
        let trainable = TrainableSet.all(model.layout)
        func pass(recompute: Bool) throws -> (loss: Double, aux: Double, grads: [Float], counts: [[Int]], mass: [[Double]], bytes: Int) {
            let (run, bytes) = FloatBuffer.allocatedBytes {
                ModelRun(model: model, batch: tokens.batch, seq: tokens.seq, training: true, recomputeActivations: recompute)
            }
            #expect(run.recomputesActivations == recompute)
            run.matmul = .fp32Fixed
            run.routerAuxLossCoefficient = 0.01
            let grads = FloatBuffer(count: model.parameters.count)
            let loss = try run.lossAndGradients(tokens, trainable: trainable, grads: grads)
            return (loss, run.routerAuxLoss, grads.array, run.routerStats.counts, run.routerStats.gateMass, bytes)
        }
        let kept = try pass(recompute: false), recomputed = try pass(recompute: true)
        #expect(recomputed.loss == kept.loss)
        #expect(recomputed.aux == kept.aux)
        #expect(recomputed.counts == kept.counts)
        #expect(recomputed.mass == kept.mass)
        #expect(recomputed.grads == kept.grads)
        #expect(kept.grads.contains { $0 != 0 })
        if model.config.layers > 1 { #expect(recomputed.bytes < kept.bytes, "\(recomputed.bytes) vs \(kept.bytes) bytes") }
    }
}
