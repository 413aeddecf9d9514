import Foundation
import TesseraCore
import TesseraMarket
import TesseraProof

/// A completion (or one streamed chunk of it) in OpenAI's shape, with Tessera's receipt
/// and metered usage under "tessera".
struct CompletionChunk: Encodable {
    struct Choice: Encodable {
        var text: String
        var index = 0
        var logprobs: String? = nil
        var finishReason: String?
        enum CodingKeys: String, CodingKey { case text, index, logprobs, finishReason = "finish_reason" }
        func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(text, forKey: .text); try c.encode(index, forKey: .index)
            try c.encodeNil(forKey: .logprobs); try c.encode(finishReason, forKey: .finishReason)
        }
    }
    struct Usage: Encodable {
        var promptTokens: Int, completionTokens: Int, totalTokens: Int
        enum CodingKeys: String, CodingKey { case promptTokens = "prompt_tokens", completionTokens = "completion_tokens", totalTokens = "total_tokens" }
        init(_ c: TextCompletion) {
            promptTokens = c.promptTokens; completionTokens = c.tokens.count; totalTokens = c.promptTokens + c.tokens.count
        }
    }
    var id: String
    var object = "text_completion"
    var created: Int64
    var model: String
    var choices: [Choice]
    var usage: Usage?
    var tessera: TesseraExtras?

    init(id: String, created: Int64, model: String, text: String, finishReason: String? = nil) {
        self.id = id; self.created = created; self.model = model
        choices = [Choice(text: text, finishReason: finishReason)]
    }
}

struct TesseraExtras: Encodable {
    var receipt: RoutingReceipt
    var price: Int64
    var period: String
    var expertUsage: [ExpertUsage]
    enum CodingKeys: String, CodingKey { case receipt, price, period, expertUsage = "expert_usage" }
    init(_ r: MeterRecord) { receipt = r.receipt; price = r.price; period = r.period; expertUsage = r.usage }
}
