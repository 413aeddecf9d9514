import Foundation
import Testing
@testable import TesseraEngine
import TesseraCore
import TesseraTestSupport

@Suite struct OptimizerTests {
    /// Two AdamW steps on two scalars, computed by hand from torch's update rule:
    /// θ ← θ(1 − lr·λ); m ← β₁m + (1−β₁)g; v ← β₂v + (1−β₂)g²;
    /// θ ← θ − lr/(1−β₁ᵗ) · m / (√v/√(1−β₂ᵗ) + ε).
    @Test func adamWMatchesHandComputedSteps() {
        let params = FloatBuffer([1.0, -2.0])
        let grads = FloatBuffer([0.5, -0.25])
        let opt = AdamW(views: [ParamView(offset: 0, count: 2, tensor: 0)],
                        hyper: .init(learningRate: 0.1, beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0.1))
        opt.update(params: params, grads: grads)
        // Step 1: m = 0.1g, v = 0.001g², m̂ = g, v̂ = g² → step = lr·sign(g) (up to ε).
        // θ₀ = 1·(1 − 0.01) − 0.1 = 0.89;  θ₁ = −2·0.99 + 0.1 = −1.88.
        #expect(abs(params[0] - 0.89) < 1e-6)
        #expect(abs(params[1] - (-1.88)) < 1e-6)
        grads[0] = -0.5
        grads[1] = 1.0
        opt.update(params: params, grads: grads)
        // Step 2 for θ₀: m = 0.9·0.05 + 0.1·(−0.5) = −0.005; v = 0.999·0.00025 + 0.001·0.25 = 0.00049975
        // m̂ = −0.005/0.19 = −0.0263158; √v̂ = √(0.00049975/0.001999) = 0.5000000
        // θ₀ = 0.89·0.99 + 0.1·0.0263158/0.5 = 0.8811 + 0.00526316 = 0.88636316
        let m0 = 0.9 * 0.05 - 0.05, v0 = 0.999 * 0.00025 + 0.001 * 0.25
        let expected0 = 0.89 * 0.99 - 0.1 / (1 - 0.81) * m0 / ((v0).squareRoot() / (1 - 0.998001).squareRoot() + 1e-8)
        #expect(abs(Double(params[0]) - expected0) < 1e-6)
        #expect(abs(Double(params[0]) - 0.88636316) < 1e-6)
        let m1 = 0.9 * -0.025 + 0.1 * 1.0, v1 = 0.999 * 0.0000625 + 0.001 * 1.0
        let expected1 = -1.88 * 0.99 - 0.1 / (1 - 0.81) * m1 / ((v1).squareRoot() / (1 - 0.998001).squareRoot() + 1e-8)
        #expect(abs(Double(params[1]) - expected1) < 1e-6)
        #expect(opt.step == 2)
    }

    @Test func clippingScalesToTheGlobalNorm() {
        let grads = FloatBuffer([3, 0, 0, 4, 100])
        let views = [ParamView(offset: 0, count: 2, tensor: 0), ParamView(offset: 2, count: 2, tensor: 1)]
        let norm = clipGradientNorm(grads, views: views, maxNorm: 1)
        #expect(norm == 5)
        #expect(abs(grads[0] - 0.6) < 1e-6 && abs(grads[3] - 0.8) < 1e-6)
        #expect(grads[4] == 100, "a view not listed is not touched")
        let small = FloatBuffer([0.3, 0.4])
        clipGradientNorm(small, views: [ParamView(offset: 0, count: 2, tensor: 0)], maxNorm: 1)
        #expect(small.array == [0.3, 0.4])
    }

    /// A few sparse AdamW steps on a fixture lower the loss, and change only the chosen experts.
    @Test func sparseStepsLowerTheLossAndTouchOnlyChosenExperts() throws {
        let model = try MoEModel(directory: ReferenceFixtures.path("qwen2moe-tiny"))
        let expected = try ReferenceFixtures.expected("qwen2moe-tiny")
        let tokens = try ReferenceTests.tokens(expected)
        let before = model.parameterValues
        let trainable = try TrainableSet.experts([ExpertID(layer: 0, expert: 0), ExpertID(layer: 1, expert: 2), ExpertID(layer: 1, expert: 4)], in: model.layout)
        let views = trainable.views(in: model.layout)
        let opt = AdamW(views: views, hyper: .init(learningRate: 3e-3, weightDecay: 0))
        let run = ModelRun(model: model, batch: tokens.batch, seq: tokens.seq, training: true)
        let grads = FloatBuffer(count: model.parameters.count)
        var losses: [Double] = []
        for _ in 0..<5 {
            for v in views { grads.zero(v) }
            losses.append(try run.lossAndGradients(tokens, trainable: trainable, grads: grads))
            clipGradientNorm(grads, views: views, maxNorm: 1)
            opt.update(params: model.parameters, grads: grads)
        }
        #expect(losses.last! < losses.first!)
        var allowed = [Bool](repeating: false, count: before.count)
        for v in views { for i in v.offset..<(v.offset + v.count) { allowed[i] = true } }
        let after = model.parameterValues
        #expect(!(0..<before.count).contains { !allowed[$0] && before[$0] != after[$0] })
    }
}
