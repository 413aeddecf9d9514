import ArgumentParser
import TesseraEngine

/// `--matmul`, taken by every command that runs a model. Parsing it sets the process-wide
/// default that new model runs use, so a command needs no further call to honour it.
struct MatmulOption: ParsableArguments {
    @Option(name: .customLong("matmul"),
            help: "Matrix products: fp32 (OpenBLAS), bf16x3 or bf16x6 (AMX split-bf16; bf16x6 carries float's full precision). Default: bf16x3 where AMX exists, else fp32; TESSERA_MATMUL sets it too.")
    var name: String?

    mutating func validate() throws {
        if let name {
            MatmulPrecision.processDefault = try MatmulPrecision.parse(name)
        } else if let env = try MatmulPrecision.fromEnvironment() {
            MatmulPrecision.processDefault = env
        }
    }
}
