import Foundation
import Testing
@testable import TesseraEngine
import TesseraCore
import TesseraTestSupport

/// Incremental decoding against the full forward pass over the same tokens, per family:
/// prompts fed in one step or in chunks, sequences of different lengths in one step,
/// then one token per step, every row's logits compared.
@Suite struct DecoderTests {
    static let fixtures = ReferenceFixtures.names + ReferenceFixtures.mxfp4

    static func fullLogits(_ model: MoEModel, _ tokens: TokenBatch) throws -> [Float] {
        let run = ModelRun(model: model, batch: tokens.batch, seq: tokens.seq, training: false)
        try run.forward(tokens)
        return Array(UnsafeBufferPointer(start: run.logits.pointer, count: tokens.batch * tokens.seq * model.config.vocabSize))
    }

    @Test(arguments: fixtures, [128, 3])
    func decodedLogitsEqualTheFullForward(_ name: String, _ maxRows: Int) throws {
        let model = try MoEModel(directory: ReferenceFixtures.path(name))
        let tokens = try ReferenceTests.tokens(try ReferenceFixtures.expected(name))
        let V = model.config.vocabSize, S = tokens.seq, B = tokens.batch
        let full = try Self.fullLogits(model, tokens)
        let decoder = Decoder(model: model, maxRows: maxRows, maxContext: S)
        let caches = try (0..<B).map { _ in try decoder.makeCache(capacity: S) }
        func row(_ b: Int, _ t: Int) -> [Int32] { [tokens.ids[b * S + t]] }
        // Prompts of different lengths in one step (b + 1 tokens for sequence b), all rows.
        var got = [[Float]](repeating: [], count: B)
        let prompts = (0..<B).map { b in Array(tokens.ids[(b * S)..<(b * S + min(b + 1, S))]) }
        let first = try decoder.step((0..<B).map { Decoder.Feed(cache: caches[$0], tokens: prompts[$0]) }, allRows: true)
        for b in 0..<B { got[b] = first[b] }
        // Then one token per step for every sequence still short of S.
        while let _ = (0..<B).first(where: { caches[$0].length < S }) {
            let open = (0..<B).filter { caches[$0].length < S }
            let out = try decoder.step(open.map { Decoder.Feed(cache: caches[$0], tokens: row($0, caches[$0].length)) })
            for (i, b) in open.enumerated() { got[b] += out[i] }
        }
        var worst: Float = 0
        for b in 0..<B {
            #expect(got[b].count == S * V)
            for i in 0..<min(got[b].count, S * V) { worst = max(worst, abs(got[b][i] - full[b * S * V + i])) }
        }
        print("decode \(name) rows \(maxRows): \(worst)")
        #expect(worst < 1e-4, "\(name): largest logit difference \(worst) between decoding and the full forward pass")
        // Every position's routing was recorded, with the gate mass the forward pass saw.
        let sparse = model.config.sparseLayers.filter { $0 }.count
        for cache in caches { #expect(cache.choices.count == S * sparse * model.config.topK) }
    }

    @Test func refusesWhatDoesNotFitBeforeWritingAnything() throws {
        let model = try MoEModel(directory: ReferenceFixtures.path("mixtral-tiny"))
        let decoder = Decoder(model: model, maxRows: 8, maxContext: 8)
        let cache = try decoder.makeCache(capacity: 4)
        #expect(throws: EngineError.self) { try decoder.step([Decoder.Feed(cache: cache, tokens: [1, 2, 3, 4, 5])]) }
        #expect(throws: EngineError.self) { try decoder.step([Decoder.Feed(cache: cache, tokens: [1, Int32(model.config.vocabSize)])]) }
        #expect(throws: EngineError.self) { try decoder.step([Decoder.Feed(cache: cache, tokens: [1]), Decoder.Feed(cache: cache, tokens: [2])]) }
        #expect(throws: EngineError.self) { try decoder.makeCache(capacity: 9) }
        #expect(cache.length == 0)
    }

    @Test func latentCacheIsCompressed() throws {
        let model = try MoEModel(directory: ReferenceFixtures.path("deepseekv2-tiny"))
        let c = model.config
        let cache = KVCache(config: c, capacity: 16)
        let m = try #require(c.latentAttention)
        #expect(cache.bytes == c.layers * 16 * (m.kvRank + m.ropeDim) * 4)
        #expect(cache.bytes < KVCache.naiveBytes(config: c, capacity: 16))
    }
}
