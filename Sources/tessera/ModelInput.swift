import ArgumentParser

/// The checkpoint and token file that eval and grad both take.
struct ModelInput: ParsableArguments {
    @Option(help: "Hugging Face checkpoint directory (config.json and safetensors).")
    var model: String
    @Option(help: "safetensors file with int64 input_ids [batch, seq].")
    var tokens: String
}
