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

    /// The logits file must not be one of the inputs (it used to overwrite the model).
    func validate() throws {
        guard let logitsOut else { return }
        func identity(_ path: String) -> (UInt64, UInt64)? {
            var st = stat()
            return stat(path, &st) == 0 ? (UInt64(st.st_dev), UInt64(st.st_ino)) : nil
        }
        guard let out = identity(logitsOut) else { return }
        var inputs = [input.tokens, input.model]
        if let names = try? FileManager.default.contentsOfDirectory(atPath: input.model) {
            inputs += names.map { (input.model as NSString).appendingPathComponent($0) }
            let shards = (input.model as NSString).appendingPathComponent("shards")
            inputs += ((try? FileManager.default.contentsOfDirectory(atPath: shards)) ?? []).map { (shards as NSString).appendingPathComponent($0) }
        }
        for path in inputs where identity(path).map({ $0 == out }) == true {
            throw ValidationError("--logits-out \(logitsOut) is \(path), an input of this evaluation; write the logits elsewhere")
        }
    }

    func run() throws {
        let started = DispatchTime.now().uptimeNanoseconds
        let model = try input.load()
        let loaded = Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9
        var report = try Evaluation.run(model: model, tokensPath: input.tokens, logitsOut: logitsOut, matmul: input.precision)
        report.loadSeconds = loaded
        if json {
            print(try JSONOutput.compact(report))
        } else {
            print(String(format: "loss %.6f nats/token over %d predicted tokens (%@, %d layers, %d experts, top-%d); %.0f tokens/s, peak RSS %.2f GB",
                         report.loss, report.tokens, report.modelType, report.routerCounts.count,
                         report.experts, report.topK, report.tokensPerSecond, Double(report.peakRSSBytes) / 1e9))
        }
    }
}
