import Foundation
import Testing
@testable import TesseraEngine
@testable import TesseraProof
import TesseraCore
import TesseraTestSupport
import TesseraTokenizers

/// Generation above the decoder: batching leaves every sequence's tokens unchanged,
/// seeds reproduce samples, stop strings and tokens end texts, streams equal completions,
/// and the metered gate mass is what a full forward pass over the same tokens routes.
@Suite struct GenerationTests {
    static func served(family: ModelFamily = .qwen3MoE) -> ServedModel {
        let config = ModelConfig(family: family, vocabSize: 256, hiddenSize: 32, layers: 2, heads: 4, kvHeads: 2, headDim: 8,
                                 experts: 6, topK: 2, expertWidth: 24, normTopKProb: true)
        let model = MoEModel(config: config)
        model.initializeRandomly(seed: 11, std: 0.25)
        return ServedModel(model: model, versions: nil, vocabulary: .bytes)
    }

    static let prompts = ["The market", "Expert shards", "x", "Proof-of-Loss bounds the gain", "ñandú 🐦"]

    @Test func batchedSequencesGetTheTokensTheyGetAlone() throws {
        let generator = TextGenerator(served: Self.served(), maxBatch: 3)
        let samplings = [SamplingParameters(), SamplingParameters(temperature: 0.9, topP: 0.9, seed: 7),
                         SamplingParameters(temperature: 1.3, topK: 5, seed: 8)]
        let requests = Self.prompts.enumerated().map { i, p in
            try! generator.tokenRequest(TextRequest(prompt: p, maxTokens: 6 + 3 * i, sampling: samplings[i % 3]))
        }
        let alone = try requests.map { try generator.batcher.generate($0).tokens }
        var together = [[GeneratedToken]](repeating: [], count: requests.count)
        generator.batcher.run(requests.enumerated().map { i, r in GenerationJob(r) { together[i] = (try? $0.get())?.tokens ?? [] } })
        #expect(together == alone)
        #expect(alone.map(\.count) == requests.map(\.maxTokens))
    }

    @Test func theSameSeedGivesTheSameText() throws {
        let generator = TextGenerator(served: Self.served())
        func text(_ seed: UInt64) throws -> [Int32] {
            try generator.complete(TextRequest(prompt: "seed", maxTokens: 24, sampling: SamplingParameters(temperature: 1, seed: seed))).tokens
        }
        #expect(try text(5) == text(5))
        #expect(try text(5) != text(6))
        let greedy = try generator.complete(TextRequest(prompt: "seed", maxTokens: 24))
        // Greedy picks the most likely token: its log-probability is the largest.
        #expect(greedy.logprobs.allSatisfy { $0 <= 0 && $0 > -Double(256).squareRoot() * 10 })
    }

    @Test func stopStringsEndTheTextWhereTheyBegin() throws {
        let generator = TextGenerator(served: Self.served())
        let free = try generator.complete(TextRequest(prompt: "The market", maxTokens: 40))
        let bytes = Array(free.text.utf8)
        try #require(bytes.count > 12)
        let stop = String(decoding: bytes[8..<10], as: UTF8.self)
        let cut = try generator.complete(TextRequest(prompt: "The market", maxTokens: 40, stop: [stop, "never appears \u{1}"]))
        let expected = String(free.text[..<free.text.range(of: stop)!.lowerBound])
        #expect(cut.text == expected)
        #expect(cut.finishReason == .stop)
        #expect(cut.tokens.count < 40)
        #expect(StopStrings(["abc"]).settled("xxab") == "xx")
        #expect(StopStrings(["abc", "b"]).cut("xxabc") == "xx")
        #expect(StopStrings(["bc"]).cut("xxab") == nil)
    }

    @Test func anEndOfTextTokenEndsTheSequence() throws {
        let served = Self.served()
        let free = try TextGenerator(served: served).complete(TextRequest(prompt: "end", maxTokens: 12))
        let eot = free.tokens[4]
        let vocabulary = TextVocabulary(tokenizer: nil, endOfText: eot)
        let stopped = try TextGenerator(served: ServedModel(model: served.model, versions: nil, vocabulary: vocabulary))
            .complete(TextRequest(prompt: "end", maxTokens: 12))
        #expect(stopped.tokens == Array(free.tokens.prefix(while: { $0 != eot })))
        #expect(stopped.finishReason == .stop)
    }

    @Test func aStreamSaysWhatTheCompletionSays() async throws {
        let generator = TextGenerator(served: Self.served())
        let metered = LockedValue(0)
        generator.onCompletion = { c in metered.withLock { $0 += c.tokens.count } }
        for (prompt, stop) in [("The market", [String]()), ("ñandú 🐦", ["zz"]), ("Expert shards", ["e"])] {
            let whole = try generator.complete(TextRequest(prompt: prompt, maxTokens: 30, stop: stop))
            var text = "", finished: TextCompletion?
            for try await event in try generator.stream(TextRequest(prompt: prompt, maxTokens: 30, stop: stop)) {
                switch event {
                case .text(let t): text += t
                case .finished(let c): finished = c
                }
            }
            #expect(text == whole.text)
            #expect(finished?.tokens == whole.tokens)
        }
        #expect(metered.withLock { $0 } > 0)
    }

    /// A retired batcher finishes what it has, lets its thread go, and starts one again for
    /// a later request.
    @Test func aRetiredBatcherFinishesItsWorkAndCanStartAgain() async throws {
        let generator = TextGenerator(served: Self.served())
        let expected = try generator.complete(TextRequest(prompt: "retire", maxTokens: 12)).text
        func streamed() async throws -> String {
            var text = ""
            for try await event in try generator.stream(TextRequest(prompt: "retire", maxTokens: 12)) {
                if case .text(let t) = event { text += t }
            }
            return text
        }
        let first = Task { try await streamed() }
        generator.batcher.retire()
        #expect(try await first.value == expected)
        try await Task.sleep(for: .milliseconds(50))
        #expect(try await streamed() == expected)
    }

    @Test func meteredGateMassIsTheForwardPassesRouting() throws {
        let served = Self.served()
        let done = try TextGenerator(served: served).complete(TextRequest(prompt: "metering", maxTokens: 9))
        let fed = done.outcome.fedTokens
        #expect(fed.count == done.promptTokens + done.tokens.count - 1)
        let run = ModelRun(model: served.model, batch: 1, seq: fed.count, training: false)
        try run.forward(try TokenBatch(batch: 1, seq: fed.count, ids: fed))
        for l in 0..<2 {
            for e in 0..<6 {
                #expect(abs(done.outcome.cache.gateMass[l][e] - run.routerStats.gateMass[l][e]) < 1e-5)
            }
        }
        let units = done.usage.reduce(Int64(0)) { $0 + $1.usage }
        #expect(abs(Double(units) - 2 * Double(fed.count) * ExpertUsage.unitsPerGateWeight) <= Double(done.usage.count))
    }

    @Test func badRequestsAreRefusedBeforeAnythingRuns() throws {
        let generator = TextGenerator(served: Self.served(), maxContext: 32)
        for bad in [TextRequest(prompt: "", maxTokens: 4), TextRequest(prompt: "x", maxTokens: 0),
                    TextRequest(prompt: "x", maxTokens: 40), TextRequest(prompt: "x", sampling: SamplingParameters(temperature: -1)),
                    TextRequest(prompt: "x", sampling: SamplingParameters(temperature: 1, topP: 0)),
                    TextRequest(prompt: "x", sampling: SamplingParameters(temperature: .nan))] {
            #expect(throws: EngineError.self) { try generator.complete(bad) }
        }
    }

    /// A checkpoint with a tokenizer.json generates in its tokens: the prompt encoded and the
    /// text decoded by the tokenizer, its end-of-text named by tokenizer_config.json.
    @Test func tokenizerBackedModelsGenerateInTheirTokens() throws {
        let dir = TemporaryDirectory("tokenizer-generation")
        let source = (ReferenceFixtures.projectRoot as NSString).appendingPathComponent("Tests/Fixtures/tokenizers/qwen2-bpe.json")
        try FileManager.default.copyItem(atPath: source, toPath: dir.sub("tokenizer.json"))
        try #"{"eos_token": "<|im_end|>"}"#.write(toFile: dir.sub("tokenizer_config.json"), atomically: true, encoding: .utf8)
        let vocabulary = try TextVocabulary.of(directory: dir.path)
        let tokenizer = try #require(vocabulary.tokenizer)
        #expect(vocabulary.endOfText.map(Int.init) == tokenizer.id(of: "<|im_end|>"))
        let config = ModelConfig(family: .qwen3MoE, vocabSize: tokenizer.vocabularySize, hiddenSize: 32, layers: 2, heads: 4, kvHeads: 2,
                                 headDim: 8, experts: 6, topK: 2, expertWidth: 24, normTopKProb: true)
        let model = MoEModel(config: config)
        model.initializeRandomly(seed: 5, std: 0.25)
        let prompt = "Ñandú says héllo, 世界"
        let done = try TextGenerator(served: ServedModel(model: model, versions: nil, vocabulary: vocabulary))
            .complete(TextRequest(prompt: prompt, maxTokens: 10))
        #expect(done.promptTokens == (try tokenizer.encode(prompt)).count)
        #expect(Array(done.outcome.fedTokens.prefix(done.promptTokens)).map(Int.init) == (try tokenizer.encode(prompt)))
        #expect(done.text == tokenizer.decode(done.tokens.map(Int.init)))
        #expect(!done.tokens.isEmpty)
    }

    @Test func partialCharactersAreHeldBack() {
        #expect(TextVocabulary.bytes.decode(Array("añ".utf8.dropLast()).map { Int32($0) }, complete: true) == "a")
        #expect(TextVocabulary.bytes.decode(Array("a🐦".utf8.dropLast(2)).map { Int32($0) }, complete: true) == "a")
        #expect(TextVocabulary.bytes.decode(Array("a🐦".utf8).map { Int32($0) }, complete: true) == "a🐦")
    }
}
