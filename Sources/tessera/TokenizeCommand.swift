import ArgumentParser
import Dispatch
import Foundation
import TesseraCore
import TesseraTokenizers

struct TokenizeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokenize",
        abstract: "Token ids of a text under a Hugging Face tokenizer.json (byte-level or SentencePiece-style BPE), and their decoding.")
    @Option(help: "A tokenizer.json, or a directory holding one.") var tokenizer: String
    @Option(help: "File holding the text (UTF-8).") var text: String
    @Flag(help: "Print {\"ids\": [...], \"decoded\": \"...\"}.") var json = false
    @Flag(help: "Also print, to standard error, how long encoding took (one thread) and its rate.") var time = false

    func run() throws {
        let t = try Tokenizer(path: tokenizer)
        guard let data = FileManager.default.contents(atPath: text) else { throw ValidationError("\(text): cannot be read") }
        guard let string = String(data: data, encoding: .utf8) else { throw ValidationError("\(text): not UTF-8") }
        let started = DispatchTime.now().uptimeNanoseconds
        let ids = try t.encode(string)
        if time {
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9
            FileHandle.standardError.write(Data(String(format: "%d ids in %.3f s, %.2f MB/s\n", ids.count, seconds, Double(data.count) / seconds / 1e6).utf8))
        }
        let decoded = t.decode(ids)
        if json {
            print(JSONValue.object([("ids", .array(ids.map { .integer(Int64($0)) })), ("decoded", .string(decoded))]).serialized())
        } else {
            print(ids.map(String.init).joined(separator: " "))
        }
    }
}
