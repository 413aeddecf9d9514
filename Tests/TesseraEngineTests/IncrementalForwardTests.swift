import Foundation
import Testing
@testable import TesseraEngine
import TesseraCore
import TesseraTestSupport

/// A candidate that changes routed experts, evaluated from the cache of the base model's
/// pass, gives bit-identical losses to a full forward pass of the candidate.
@Suite struct IncrementalForwardTests {
    static let configs: [ModelConfig] = [
        ModelConfig(family: .qwen3MoE, vocabSize: 30, hiddenSize: 16, layers: 4, heads: 4, kvHeads: 2, headDim: 4,
                    experts: 6, topK: 2, expertWidth: 8, normTopKProb: true, tieWordEmbeddings: true),
        ModelConfig(family: .qwen2MoE, vocabSize: 30, hiddenSize: 16, layers: 4, heads: 4, kvHeads: 2,
                    experts: 4, topK: 2, expertWidth: 8, denseWidth: 12, sharedExpertWidth: 10,
                    sparseLayers: [true, false, true, true]),
    ]

    @Test(arguments: configs.indices)
    func incrementalEqualsFull(_ which: Int) throws {
        let c = Self.configs[which]
        let model = MoEModel(config: c)
        model.initializeRandomly(seed: 21, std: 0.3)
        let tokens = try GradientCheckTests.randomTokens(vocab: c.vocabSize, batch: 3, seq: 9, seed: 4)
        let run = ModelRun(model: model, batch: 3, seq: 9, training: false)
        let cache = ForwardCache(batch: 3, seq: 9, config: c)
        let base = try run.forward(tokens, capture: cache)
        let baseRows = run.positionLosses
        // The cache alone reproduces the base model.
        #expect(try run.forwardIncremental(tokens, cache: cache, changed: [ExpertID(layer: 2, expert: 1)]) == base)
        #expect(run.positionLosses == baseRows)
        var rng = SplitMix64(seed: 8)
        for changed in [[ExpertID(layer: 2, expert: 1)], [ExpertID(layer: 2, expert: 0), ExpertID(layer: 3, expert: 3)]] {
            let saved = model.parameterValues
            model.thawAll()
            for id in changed {
                let w = model.layout.layers[id.layer].experts[id.expert]
                for v in [w.gate, w.up, w.down] {
                    for i in 0..<v.count { model.parameters.pointer[v.offset + i] += Float(rng.normal() * 0.2) }
                }
            }
            let incremental = try run.forwardIncremental(tokens, cache: cache, changed: Set(changed))
            let incRows = run.positionLosses
            let full = try run.forward(tokens)
            #expect(incremental == full)
            #expect(incRows == run.positionLosses)
            #expect(full != base)
            for i in 0..<saved.count { model.parameters.pointer[i] = saved[i] }
        }
    }

    @Test func refusesAnotherShape() throws {
        let c = Self.configs[0]
        let model = MoEModel(config: c)
        model.initializeRandomly(seed: 1)
        let run = ModelRun(model: model, batch: 2, seq: 9, training: false)
        let tokens = try GradientCheckTests.randomTokens(vocab: c.vocabSize, batch: 2, seq: 9, seed: 4)
        #expect(throws: EngineError.self) { try run.forwardIncremental(tokens, cache: ForwardCache(batch: 3, seq: 9, config: c), changed: [ExpertID(layer: 1, expert: 0)]) }
        #expect(throws: EngineError.self) { try run.forwardIncremental(tokens, cache: ForwardCache(batch: 2, seq: 9, config: c), changed: [ExpertID(layer: 1, expert: 0)]) }
    }
}
