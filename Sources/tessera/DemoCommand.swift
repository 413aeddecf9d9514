import ArgumentParser
import Foundation
import TesseraMarket

struct DemoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Run one market round end to end on the bundled base model and Spanish text: select, train, submit, Proof-of-Loss, merge, shares, revenue.")
    @Option(help: "Leave the market (keys, data, bundles, verdicts, ledger) in this directory.") var keep: String?
    @Option(help: "Expert library of the base model.") var experts = "Experts"
    @Option(help: "Folder with market.toml and domains/.") var policy = "Market"
    @Option(help: "Spanish text (fortunes-es).") var spanish = "/usr/share/games/fortunes/es"
    @Option(help: "English text (fortunes).") var english = "/usr/share/games/fortunes"
    @Option(help: "Training steps per contributor.") var steps = 40
    @Option(name: .customLong("lr"), help: "Contributors' peak learning rate.") var learningRate: Float = 1e-3
    @Option(name: .customLong("top-p"), help: "Contributors' ESFT selection threshold.") var topP = 0.3
    @Option(help: "Share of contributors' training windows taken from English (rehearsal).") var replay = 0.5
    @Option var seed: UInt64 = 1
    @Flag var json = false
    @OptionGroup var matmul: MatmulOption

    func run() throws {
        var o = Demo.Options()
        o.experts = experts
        o.policy = policy
        o.spanish = spanish
        o.english = english
        o.directory = keep
        o.steps = steps
        o.learningRate = learningRate
        o.topP = topP
        guard (0..<1).contains(replay) else { throw ValidationError("--replay \(replay) must be in [0, 1)") }
        o.replay = replay
        o.seed = seed
        o.progress = !json
        let log: (String) -> Void = json ? { _ in } : { FileHandle.standardOutput.write(Data(("· " + $0 + "\n").utf8)) }
        let r = try Demo.run(o, log: log)
        if keep == nil { try? FileManager.default.removeItem(atPath: r.market) }
        if json { print(try jsonString(r)); return }
        print(DemoReportText.render(r, kept: keep))
        if !r.verify.ok { throw ExitCode(1) }
    }
}
