import ArgumentParser
import TesseraEngine

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure sgemm peak, evaluation and sparse-training speed on the reference shape.")

    @Flag(help: "Print one JSON object.")
    var json = false
    @Option(help: "Timed repetitions of each measurement.")
    var repeats = 3

    func run() throws {
        let result = try EngineBenchmark.run(repeats: repeats)
        print(json ? try result.jsonString() : result.text)
    }
}
