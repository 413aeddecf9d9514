import Foundation
import Testing
@testable import TesseraEngine
import TesseraCore
import TesseraTestSupport

/// The load-balancing loss used in pretraining: its value against a direct computation
/// from the router probabilities, and its gradient against finite differences.
@Suite struct AuxLossTests {
    static func model() -> MoEModel {
        let c = ModelConfig(family: .qwen3MoE, vocabSize: 20, hiddenSize: 16, layers: 2, heads: 4, kvHeads: 2,
                            headDim: 4, experts: 6, topK: 2, expertWidth: 8, normTopKProb: true, tieWordEmbeddings: true)
        let m = MoEModel(config: c)
        m.initializeRandomly(seed: 5, std: 0.3)
        return m
    }

    @Test func valueMatchesDefinition() throws {
        let m = Self.model()
        let tokens = try GradientCheckTests.randomTokens(vocab: 20, batch: 2, seq: 5, seed: 1)
        let run = ModelRun(model: m, batch: 2, seq: 5, training: true)
        try run.forward(tokens)
        let E = 6, T = 10
        var expected = 0.0
        for e in 0..<E {
            var f = 0.0, p = 0.0
            for l in 0..<2 {
                f += Double(run.routerStats.counts[l][e]) / Double(2 * T)
                for t in 0..<T { p += Double(run.acts[l].routerProbs!.pointer[t * E + e]) / Double(2 * T) }
            }
            expected += f * p
        }
        expected *= Double(E)
        #expect(abs(run.routerAuxLoss - expected) < 1e-9)
        // A perfectly balanced router gives exactly top-k; any router gives at least about that.
        #expect(run.routerAuxLoss > 1.5)
    }

    /// (grads with coef c − grads without) / c is ∂aux/∂θ with the routing counts held
    /// fixed, as transformers computes it; small steps do not change the routing.
    @Test func gradientMatchesFiniteDifferences() throws {
        let m = Self.model()
        let tokens = try GradientCheckTests.randomTokens(vocab: 20, batch: 2, seq: 5, seed: 2)
        let run = ModelRun(model: m, batch: 2, seq: 5, training: true)
        let base = FloatBuffer(count: m.parameters.count), withAux = FloatBuffer(count: m.parameters.count)
        try run.lossAndGradients(tokens, trainable: .all(m.layout), grads: base)
        let coef: Float = 0.5
        run.routerAuxLossCoefficient = coef
        try run.lossAndGradients(tokens, trainable: .all(m.layout), grads: withAux)
        m.thawAll()
        let P = m.parameters.pointer
        var rng = SplitMix64(seed: 3)
        let eps: Float = 1e-3
        var checked = 0
        for slot in m.layout.tensors where slot.name.hasSuffix("mlp.gate.weight") || slot.name.hasSuffix("q_proj.weight") {
            let u = (0..<slot.count).map { _ in Float(rng.normal()) }
            var analytic = 0.0
            for i in 0..<slot.count {
                analytic += Double(withAux.pointer[slot.offset + i] - base.pointer[slot.offset + i]) / Double(coef) * Double(u[i])
            }
            let saved = Array(UnsafeBufferPointer(start: P + slot.offset, count: slot.count))
            let countsBefore = run.routerStats.counts
            for i in 0..<slot.count { P[slot.offset + i] = saved[i] + eps * u[i] }
            try run.forward(tokens)
            let plus = run.routerAuxLoss
            let countsPlus = run.routerStats.counts
            for i in 0..<slot.count { P[slot.offset + i] = saved[i] - eps * u[i] }
            try run.forward(tokens)
            let minus = run.routerAuxLoss
            for i in 0..<slot.count { P[slot.offset + i] = saved[i] }
            guard countsPlus == countsBefore, run.routerStats.counts == countsBefore else { continue }
            let numeric = (plus - minus) / Double(2 * eps)
            #expect(abs(numeric - analytic) <= 2e-2 * abs(analytic) + 1e-5, "\(slot.name): finite difference \(numeric), backward \(analytic)")
            checked += 1
        }
        #expect(checked >= 3)
    }
}
