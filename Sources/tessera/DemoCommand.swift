import ArgumentParser
import Foundation
import TesseraCore
import TesseraClient
import TesseraMarket
import TesseraProof

/// This program's own path, for running its other commands as separate processes.
func executablePath() throws -> String {
    let path = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")
    guard FileManager.default.isExecutableFile(atPath: path) else { throw CoreError("cannot find this program's executable (\(path))") }
    return path
}

struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Run one market round end to end on the bundled base model and one domain's text: select, train, submit, Proof-of-Loss, merge, shares, revenue.")
    @Option(help: "The domain of the round: a file NAME.toml in the rules' domains/ folder.") var domain = "es"
    @Option(help: "Read the domain's text from here instead of the path its domain file names.") var text: String?
    @Option(help: "General text the base model was trained on (the background that guards against forgetting).") var background = "/usr/share/games/fortunes"
    @Option(help: "Leave the market (keys, data, bundles, verdicts, ledger) in this directory.") var keep: String?
    @Option(help: "Expert library of the base model.") var experts = "Experts"
    @Option(help: "Folder with market.toml and domains/.") var policy = "Market"
    @Option(help: "Training steps per contributor.") var steps = 40
    @Option(name: .customLong("lr"), help: "Contributors' peak learning rate (default: 1.5e-2 with adapters, 1e-3 for full weights).") var learningRate: Float?
    @Option(name: .customLong("weight-decay"), help: "Contributors' weight decay (default with adapters: the decay that spends a budget of 2.6 = wd · Σ lr over their rounds; 0 for full weights).") var weightDecay: Float?
    @Option(name: .customLong("lora-rank"), help: "Contributors train low-rank adapters of this rank and submit 4-bit factors (0: every weight of their experts, submitted as sparse deltas).")
    var loraRank = TrainingDefaults.adapterRank
    @Option(name: .customLong("top-p"), help: "Contributors' ESFT selection threshold.") var topP = 0.3
    @Option(help: "Share of contributors' training windows taken from the background text (rehearsal).") var replay = 0.75
    @Option var seed: UInt64 = 1
    @Flag(help: "Run every party as a separate process over HTTP on loopback (tessera serve, contribute, validator run, merge).") var network = false
    @Option(help: "Keep the ledger in this PostgreSQL database (postgresql://USER@HOST:PORT/DB, empty) instead of an SQLite file.") var database: String?
    @Flag var json = false
    @OptionGroup var matmul: MatmulOption

    func run() async throws {
        var o = Demo.Options()
        o.domain = domain
        o.text = text
        o.background = background
        o.experts = experts
        o.policy = policy
        o.directory = keep
        o.database = database
        o.steps = steps
        o.learningRate = learningRate
        o.weightDecay = weightDecay
        o.loraRank = loraRank
        o.topP = topP
        o.replay = replay
        o.seed = seed
        o.matmul = matmul.precision
        o.progress = !json
        let log: (String) -> Void = json ? { _ in } : { FileHandle.standardOutput.write(Data(("· " + $0 + "\n").utf8)) }
        let r = network
            ? try await NetworkDemo.run(o, binary: try executablePath(), connect: Markets.open, log: log)
            : try await Demo.run(o, log: log)
        if keep == nil { try? FileManager.default.removeItem(atPath: r.market) }
        if json { print(try jsonString(r)); return }
        print(DemoReportText.render(r, kept: keep))
        if !r.verify.ok { throw ExitCode(1) }
    }
}
