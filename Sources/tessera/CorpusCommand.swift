import ArgumentParser
import Foundation
import TesseraLibrary
import TesseraProof
import TesseraTokenizers
import TesseraCore

struct CorpusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "corpus",
        abstract: "Turn text into byte-token windows, split into training and held-out parts by a keyed hash of each document.")
    @Argument(help: "Text files or directories of them.") var inputs: [String] = []
    @Option(name: .customLong("token-windows"), help: "Instead of text: already-tokenized windows (int64 input_ids [n, seq]) to split, for models with their own tokenizer.") var tokenWindows: String?
    @Option(help: "Output directory (train.safetensors, heldout.safetensors, corpus.json).") var out: String
    @Option(help: "Tokens per window.") var seq = 256
    @Option(name: .customLong("held-out-bps"), help: "Share of documents held out, basis points.") var heldOutBps = 2000
    @Option(name: .customLong("key-hex"), help: "Secret key of the held-out split, hex (at least 16 bytes).") var keyHex: String
    @Option(help: "fortune (\"%\" lines) or paragraph (blank lines).") var separator = "fortune"
    @Option(help: "Tokenize with this Hugging Face tokenizer.json (or a directory holding one) instead of using bytes as tokens.") var tokenizer: String?
    @Option(name: .customLong("end-of-text"), help: "With --tokenizer: the token between documents.") var endOfText = "<|endoftext|>"
    @Flag var json = false

    func run() throws {
        guard let key = Hex.decode(keyHex) else { throw ValidationError("--key-hex is not hex") }
        guard let sep = Corpus.Separator(rawValue: separator) else { throw ValidationError("--separator \(separator): use fortune or paragraph") }
        guard (tokenWindows == nil) != inputs.isEmpty else { throw ValidationError("give text inputs or --token-windows FILE, not both") }
        let tok = try tokenizer.map { try Tokenizer(path: $0) }
        var eot: Int?
        if let tok {
            guard let id = tok.id(of: endOfText) else { throw ValidationError("--end-of-text \(endOfText) is not a token of \(tokenizer ?? "")") }
            eot = id
        }
        let r = try tokenWindows.map { try Corpus.splitTokenWindows($0, heldOutBps: heldOutBps, key: key, out: out) }
            ?? Corpus.build(inputs: inputs, options: .init(seq: seq, heldOutBps: heldOutBps, key: key, separator: sep, tokenizer: tok, endOfText: eot), out: out)
        if json { print(try jsonString(r)); return }
        print("\(r.documents) documents: \(r.trainDocuments) for training (\(r.trainWindows) windows of \(r.seq)), \(r.heldOutDocuments) held out (\(r.heldOutWindows) windows); held-out file \(r.heldOutSHA256)")
    }
}
