import ArgumentParser
import TesseraEngine

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure sgemm peak, evaluation and sparse-training speed on the reference shape.")

    @Flag(help: "Print one JSON object.")
    var json = false
    @Option(help: "Timed repetitions of each measurement.")
    var repeats = 5
    @Option(help: "Which measurements to run: eval, train or all (for profiling one of them).")
    var phase = "all"
    @Flag(help: "Also report wall time per phase of the passes.")
    var profile = false
    @OptionGroup var matmul: MatmulOption

    func run() throws {
        guard ["all", "eval", "train"].contains(phase) else { throw ValidationError("--phase \(phase): use eval, train or all") }
        let result = try EngineBenchmark.run(repeats: repeats, phases: phase == "all" ? ["eval", "train"] : [phase], profile: profile,
                                             precision: .processDefault)
        print(json ? try JSONOutput.compact(result) : result.text)
    }
}
