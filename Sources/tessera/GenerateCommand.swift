import ArgumentParser
import Foundation
import TesseraCore
import TesseraEngine
import TesseraProof

struct GenerateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Continue a prompt with a model, decoding incrementally with a key/value cache.")
    @Option(help: "A Hugging Face checkpoint directory or an expert library.") var model: String
    @Option(name: .customLong("version"), help: "With a library: serve this version of an expert, LAYER:EXPERT=HASH (repeatable).")
    var versions: [String] = []
    @Option(help: "The text to continue.") var prompt: String
    @Option(name: .customLong("max-tokens"), help: "New tokens at most.") var maxTokens = Count(64)
    @Option(help: "0 is greedy; above 0, sampled at this temperature.") var temperature = 0.0
    @Option(name: .customLong("top-p"), help: "Sample from the smallest set of tokens whose probability reaches this.") var topP = 1.0
    @Option(name: .customLong("top-k"), help: "Sample from this many most likely tokens (0: all).") var topK = 0
    @Option(help: "Seed of the sampler: the same seed gives the same text.") var seed: UInt64 = 0
    @Option(help: "End the text where this string begins (repeatable).") var stop: [String] = []
    @Flag(help: "Print {\"text\", \"tokens\", \"logprobs\", \"usage\", ...} as one JSON object.") var json = false
    @OptionGroup var matmul: MatmulOption

    func run() throws {
        let served = try ServedModel.load(model, versions: versions)
        let sampling = SamplingParameters(temperature: temperature, topP: topP, topK: topK, seed: seed)
        let generator = TextGenerator(served: served, maxBatch: 1, maxContext: 4096, matmul: matmul.precision)
        let done = try generator.complete(TextRequest(prompt: prompt, maxTokens: maxTokens.value, sampling: sampling, stop: stop))
        guard json else {
            print(done.text)
            return
        }
        print(try JSONOutput.compact(CompletionJSON(done, versionSet: served.versionSetHash)))
    }
}

/// `tessera generate --json`: the text, its tokens with their log-probabilities, and the
/// routed gate mass each expert version served (prompt and completion).
struct CompletionJSON: Encodable {
    struct Usage: Encodable {
        let promptTokens: Int, completionTokens: Int
        let experts: [ExpertUsage]
        enum CodingKeys: String, CodingKey { case promptTokens = "prompt_tokens", completionTokens = "completion_tokens", experts }
    }
    let text: String
    let tokens: [Int32]
    let logprobs: [Double]
    let finishReason: String
    let versionSet: String
    let usage: Usage
    enum CodingKeys: String, CodingKey {
        case text, tokens, logprobs, usage, finishReason = "finish_reason", versionSet = "version_set"
    }
    init(_ c: TextCompletion, versionSet: String) {
        text = c.text; tokens = c.tokens; logprobs = c.logprobs; finishReason = c.finishReason.rawValue
        self.versionSet = versionSet
        usage = Usage(promptTokens: c.promptTokens, completionTokens: c.tokens.count, experts: c.usage)
    }
}
