import Foundation
import TesseraCore
import TesseraEngine

/// The body of POST /v1/completions, OpenAI's fields: prompt (a string, or an array of
/// one), max_tokens (16), temperature (1), top_p (1), seed (0), stop (a string or up to
/// four), stream (false), n (1 only), and Tessera's tessera_versions (expert versions to
/// serve instead of the current ones, "LAYER:EXPERT=HASH" items); fields it does not use
/// (model, user, ...) are ignored.
public struct CompletionRequest: Sendable {
    public var prompt: String
    public var versions: [String]
    public var maxTokens: Int
    public var sampling: SamplingParameters
    public var stop: [String]
    public var stream: Bool

    /// A field the request got wrong, named as OpenAI's error object names it.
    public struct Invalid: Error, CustomStringConvertible {
        public var param: String
        public var message: String
        public var description: String { message }
    }

    public static func parse(_ data: Data, maxTokens cap: Int) throws -> CompletionRequest {
        func bad(_ param: String, _ message: String) -> Invalid { Invalid(param: param, message: message) }
        guard case .object(let fields)? = try? JSONValue.parse(data) else { throw bad("body", "the body is not a JSON object") }
        func field(_ name: String) -> JSONValue? { fields.first(where: { $0.0 == name }).flatMap { $0.1 == .null ? nil : $0.1 } }
        func integer(_ name: String, _ d: Int64, _ range: ClosedRange<Int64>) throws -> Int64 {
            guard let v = field(name) else { return d }
            guard case .integer(let i) = v, range.contains(i) else { throw bad(name, "\(name) must be an integer in \(range.lowerBound)...\(range.upperBound)") }
            return i
        }
        func number(_ name: String, _ d: Double, _ range: ClosedRange<Double>) throws -> Double {
            guard let v = field(name) else { return d }
            let x: Double
            switch v {
            case .integer(let i): x = Double(i)
            case .number(let n): x = n
            default: throw bad(name, "\(name) must be a number")
            }
            guard range.contains(x) else { throw bad(name, "\(name) must be between \(range.lowerBound) and \(range.upperBound)") }
            return x
        }
        let prompt: String
        switch field("prompt") {
        case .string(let s)?: prompt = s
        case .array(let items)? where items.count == 1: guard case .string(let s) = items[0] else { throw bad("prompt", "prompt must be a string") }; prompt = s
        default: throw bad("prompt", "prompt must be a string (or an array of one string)")
        }
        var stop: [String] = []
        switch field("stop") {
        case nil: break
        case .string(let s)?: stop = [s]
        case .array(let items)? where items.count <= 4:
            for item in items { guard case .string(let s) = item else { throw bad("stop", "stop must hold strings") }; stop.append(s) }
        default: throw bad("stop", "stop must be a string or an array of at most 4 strings")
        }
        var versions: [String] = []
        switch field("tessera_versions") {
        case nil: break
        case .array(let items)? where items.count <= 1 << 16:
            for item in items { guard case .string(let v) = item else { throw bad("tessera_versions", "tessera_versions must hold LAYER:EXPERT=HASH strings") }; versions.append(v) }
        default: throw bad("tessera_versions", "tessera_versions must be an array of LAYER:EXPERT=HASH strings")
        }
        guard try integer("n", 1, 1...1) == 1 else { throw bad("n", "n must be 1") }
        var stream = false
        if let v = field("stream") { guard case .bool(let b) = v else { throw bad("stream", "stream must be true or false") }; stream = b }
        let seed = try integer("seed", 0, Int64.min...Int64.max)
        let sampling = SamplingParameters(temperature: try number("temperature", 1, 0...2), topP: try number("top_p", 1, 0.000_001...1),
                                          topK: 0, seed: UInt64(bitPattern: seed))
        return CompletionRequest(prompt: prompt, versions: versions, maxTokens: Int(try integer("max_tokens", 16, 1...Int64(max(cap, 1)))),
                                 sampling: sampling, stop: stop, stream: stream)
    }
}

