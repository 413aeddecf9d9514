import ArgumentParser
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

    func load() throws -> MoEModel {
        try ModelSource.load(model, versions: versions, resident: resident)
    }
}
