import ArgumentParser
import Foundation
import TesseraEngine
import TesseraCore

struct Eval: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Mean next-token loss of a model on a token file.")

    @OptionGroup var input: ModelInput
    @Option(name: .customLong("logits-out"), help: "Write float32 logits [batch, seq, vocab] to this safetensors file.")
    var logitsOut: String?
    @Flag(help: "Print one JSON object.")
    var json = false

    func run() throws {
        let report = try Evaluation.run(model: try input.load(), tokensPath: input.tokens, logitsOut: logitsOut, matmul: input.precision)
        if json {
            print(try JSONOutput.compact(report))
        } else {
            print(String(format: "loss %.6f nats/token over %d predicted tokens (%@, %d layers, %d experts, top-%d)",
                         report.loss, report.tokens, report.modelType, report.routerCounts.count,
                         report.experts, report.topK))
        }
    }
}
