import ArgumentParser
import TesseraEngine
import TesseraCore

struct Grad: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Gradients of the mean next-token loss, one float32 tensor per checkpoint tensor.")

    @OptionGroup var input: ModelInput
    @Option(help: "Output safetensors file.")
    var out: String
    @Option(help: "Only these routed experts, as LAYER:EXPERT,LAYER:EXPERT.")
    var experts: String?

    func run() throws {
        let summary = try GradientExport.run(model: try input.load(), tokensPath: input.tokens, outPath: out, experts: experts, matmul: input.precision)
        print("loss \(summary.loss) nats/token; wrote \(summary.tensors) gradient tensors to \(out)")
    }
}
