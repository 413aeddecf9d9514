import Foundation
import TesseraCore

/// How the next token is chosen: temperature 0 is greedy (the lowest id among equal
/// largest logits); otherwise the logits are divided by the temperature, cut to the
/// `topK` most likely (0: all) and to the smallest set whose probability reaches `topP`,
/// and drawn with a SplitMix64 seeded by `seed`, so the same seed gives the same tokens.
public struct SamplingParameters: Sendable, Equatable, Codable {
    public var temperature: Double
    public var topP: Double
    public var topK: Int
    public var seed: UInt64
    enum CodingKeys: String, CodingKey { case temperature, topP = "top_p", topK = "top_k", seed }
    public init(temperature: Double = 0, topP: Double = 1, topK: Int = 0, seed: UInt64 = 0) {
        self.temperature = temperature; self.topP = topP; self.topK = topK; self.seed = seed
    }

    /// Refuses values no sampler can honour, naming the field.
    public func check() throws {
        guard temperature.isFinite, temperature >= 0, temperature <= 100 else {
            throw EngineError.invalidInput("temperature \(temperature) must be between 0 and 100")
        }
        guard topP.isFinite, topP > 0, topP <= 1 else { throw EngineError.invalidInput("top_p \(topP) must be in (0, 1]") }
        guard topK >= 0 else { throw EngineError.invalidInput("top_k \(topK) must be 0 (no cut) or positive") }
    }
}

/// One sequence's sampler: its parameters and its own generator.
public struct TokenSampler: Sendable {
    public let parameters: SamplingParameters
    private var generator: SplitMix64

    public init(_ parameters: SamplingParameters) {
        self.parameters = parameters
        generator = SplitMix64(seed: parameters.seed)
    }

    /// The chosen token and its log-probability under the model (temperature 1, no cuts),
    /// which is what `logprobs` report whatever the sampling.
    public mutating func next(_ logits: ArraySlice<Float>) -> (token: Int32, logprob: Double) {
        let values = Array(logits)
        var best = 0
        for i in values.indices where values[i] > values[best] { best = i }
        let top = Double(values[best])
        let logTotal = Foundation.log(values.reduce(0.0) { $0 + Foundation.exp(Double($1) - top) }) + top
        func logprob(_ i: Int) -> Double { Double(values[i]) - logTotal }
        let p = parameters
        guard p.temperature > 0 else { return (Int32(best), logprob(best)) }
        // Candidates by descending logit (ties by id), cut by top-k, weighted at the temperature.
        var order = Array(values.indices).sorted { values[$0] != values[$1] ? values[$0] > values[$1] : $0 < $1 }
        if p.topK > 0 && p.topK < order.count { order.removeLast(order.count - p.topK) }
        var weights = order.map { Foundation.exp((Double(values[$0]) - top) / p.temperature) }
        let total = weights.reduce(0, +)
        if p.topP < 1 {
            var kept = 0, mass = 0.0
            while kept < weights.count {
                mass += weights[kept] / total
                kept += 1
                if mass >= p.topP { break }
            }
            order.removeLast(order.count - kept)
            weights.removeLast(weights.count - kept)
        }
        let draw = generator.uniform() * weights.reduce(0, +)
        var acc = 0.0
        for (i, w) in weights.enumerated() {
            acc += w
            if draw < acc { return (Int32(order[i]), logprob(order[i])) }
        }
        return (Int32(order[order.count - 1]), logprob(order[order.count - 1]))
    }
}
