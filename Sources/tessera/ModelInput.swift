import ArgumentParser
import Foundation
import TesseraEngine
import TesseraLibrary
import TesseraCore

/// The model and token file that eval and grad both take. The model is a Hugging Face
/// checkpoint directory or an expert library.
struct ModelInput: ParsableArguments {
    @OptionGroup var matmul: MatmulOption
    @Option(help: "Hugging Face checkpoint directory or expert library.")
    var model: String
    @Option(help: "safetensors file with int64 input_ids [batch, seq].")
    var tokens: String
    @Option(name: .customLong("version"), help: "Library only: use this version of an expert, LAYER:EXPERT=HASH (repeatable).")
    var versions: [String] = []
    @Option(help: "Library only: load just these experts, LAYER:EXPERT,...; tokens are routed among them.")
    var resident: String?

    var precision: MatmulPrecision { matmul.precision }

    /// The model, after checking that the token file was made with its vocabulary.
    func load() throws -> MoEModel {
        let recorded = try SafetensorsFile(path: tokens).metadata["tessera.tokenizer_sha256"]
        if ExpertLibrary.isLibrary(model) {
            try ExpertLibrary(directory: model).requireVocabulary(ofTokenFile: tokens, tokenizerSHA256: recorded)
        } else if let recorded {
            // A checkpoint directory: its tokenizer.json, when it has one, must be the corpus's.
            let own = FileManager.default.contents(atPath: (model as NSString).appendingPathComponent("tokenizer.json")).map { ContentHash.sha256(Array($0)) }
            if let own, own != recorded {
                throw ValidationError("\(tokens): its tokens were made with the tokenizer \(recorded.prefix(12))…, but \(model)/tokenizer.json is \(own.prefix(12))…")
            }
        }
        return try ModelSource.load(model, versions: versions, resident: resident)
    }
}
