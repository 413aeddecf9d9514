import Foundation
import Testing
@testable import TesseraEngine
import TesseraCore
import TesseraTestSupport

/// Logits, loss, router counts and every gradient against what transformers computed, in
/// every matrix-product precision this machine runs.
@Suite struct ReferenceTests {
    static let precisions = MatmulPrecision.allCases.filter(\.isUsable)

    static func tokens(_ expected: SafetensorsFile) throws -> TokenBatch {
        let info = expected.tensors["input_ids"]!
        return try TokenBatch(batch: info.shape[0], seq: info.shape[1], ids: try expected.int64s("input_ids").map { Int32($0) })
    }

    @Test(arguments: ReferenceFixtures.names + ReferenceFixtures.mxfp4, precisions)
    func forwardMatchesTransformers(_ name: String, _ precision: MatmulPrecision) throws {
        let model = try MoEModel(directory: ReferenceFixtures.path(name))
        let expected = try ReferenceFixtures.expected(name)
        let tokens = try Self.tokens(expected)
        let run = ModelRun(model: model, batch: tokens.batch, seq: tokens.seq, training: false)
        run.matmul = precision
        let loss = try run.forward(tokens)
        let refLoss = Double(try expected.floats("loss")[0])
        #expect(abs(loss - refLoss) / refLoss < 1e-5, "loss \(loss) vs \(refLoss)")
        let ref = try expected.floats("logits")
        var worst: Float = 0
        for i in 0..<ref.count { worst = max(worst, abs(run.logits.pointer[i] - ref[i])) }
        #expect(worst < 1e-4, "max logit difference \(worst)")
        print("reference \(name) \(precision): loss rel diff \(abs(loss - refLoss) / refLoss), max logit diff \(worst)")
        for l in 0..<model.config.layers where model.config.sparseLayers[l] {
            let counts = try expected.int64s("router_counts.\(l)").map(Int.init)
            #expect(run.routerStats.counts[l] == counts, "layer \(l) router counts")
        }
    }

    @Test(arguments: ReferenceFixtures.names + ReferenceFixtures.mxfp4, precisions)
    func gradientsMatchTransformers(_ name: String, _ precision: MatmulPrecision) throws {
        let model = try MoEModel(directory: ReferenceFixtures.path(name))
        let expected = try ReferenceFixtures.expected(name)
        let tokens = try Self.tokens(expected)
        let run = ModelRun(model: model, batch: tokens.batch, seq: tokens.seq, training: true)
        run.matmul = precision
        let grads = FloatBuffer(count: model.parameters.count)
        let loss = try run.lossAndGradients(tokens, trainable: .all(model.layout), grads: grads)
        let refLoss = Double(try expected.floats("loss")[0])
        #expect(abs(loss - refLoss) / refLoss < 1e-5)
        // Buffers (DeepSeek-V3's e_score_correction_bias) have no gradient in transformers.
        for slot in model.layout.tensors where expected.tensors["grad." + slot.name] != nil || !slot.name.hasSuffix("e_score_correction_bias") {
            let ref = try expected.floats("grad." + slot.name)
            let scale = ref.map { abs($0) }.max() ?? 0
            var worst: Float = 0
            for i in 0..<slot.count { worst = max(worst, abs(grads.pointer[slot.offset + i] - ref[i])) }
            #expect(worst <= 1e-3 * max(scale, 1e-12), "\(slot.name): max diff \(worst), largest magnitude \(scale)")
        }
    }
}
