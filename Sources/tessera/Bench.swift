import ArgumentParser
import TesseraBenchmarks
import TesseraEngine
import TesseraCore

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure sgemm peak, evaluation and sparse-training speed on the reference shape.")

    @Flag(help: "Print one JSON object.")
    var json = false
    @Option(help: "Timed repetitions of each measurement.")
    var repeats = 5
    enum Phase: String, CaseIterable, ExpressibleByArgument { case all, eval, train }
    @Option(help: "Which measurements to run (for profiling one of them).")
    var phase = Phase.all
    @Flag(help: "Also report wall time per phase of the passes.")
    var profile = false
    @OptionGroup var matmul: MatmulOption

    func run() throws {
        guard repeats > 0 else { throw ValidationError("--repeats \(repeats) must be positive") }
        let result = try EngineBenchmark.run(repeats: repeats, phases: phase == .all ? ["eval", "train"] : [phase.rawValue], profile: profile,
                                             precision: matmul.precision)
        print(json ? try JSONOutput.compact(result) : result.text)
    }
}
