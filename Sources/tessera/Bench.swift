import Foundation
import ArgumentParser
import TesseraBenchmarks
import TesseraEngine
import TesseraCore

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure sgemm peak, evaluation, sparse-training and generation speed on the reference shape.")

    @Flag(help: "Print one JSON object.")
    var json = false
    @Option(help: "Timed repetitions of each measurement.")
    var repeats = 5
    enum Phase: String, CaseIterable, ExpressibleByArgument { case all, eval, train, generate }
    @Option(help: "Which measurements to run (for profiling one of them).")
    var phase = Phase.all
    @Flag(help: "Also report wall time per phase of the passes.")
    var profile = false
    @OptionGroup var matmul: MatmulOption
    @Option(help: "The reference shape in this family's architecture: mixtral (the engine's reference), deepseek_v2 or deepseek_v3.")
    var family = "mixtral"
    enum Weights: String, CaseIterable, ExpressibleByArgument { case f32, bf16 }
    @Option(help: "Generation only: the weights in memory as f32, or as bf16 (how a bf16 checkpoint's frozen weights are kept).")
    var weights = Weights.f32

    func run() throws {
        guard repeats > 0 else { throw ValidationError("--repeats \(repeats) must be positive") }
        guard let config = EngineBenchmark.referenceConfig(family: family) else {
            throw ValidationError("--family \(family): supported: mixtral, deepseek_v2, deepseek_v3")
        }
        if weights == .bf16 && phase != .generate { throw ValidationError("--weights bf16 applies to --phase generate") }
        if phase == .generate {
            let result = try GenerationBenchmark.run(repeats: repeats, precision: matmul.precision, config: config, profile: profile,
                                                  bf16Weights: weights == .bf16)
            print(json ? try JSONOutput.compact(result) : result.text)
            return
        }
        let result = try EngineBenchmark.run(repeats: repeats, phases: phase == .all ? ["eval", "train"] : [phase.rawValue], profile: profile,
                                             precision: matmul.precision, config: config)
        print(json ? try JSONOutput.compact(result) : result.text)
    }
}

struct ServerBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "server-bench",
        abstract: "Load test of tessera serve on loopback: signed actions from many clients (rate, latency), shard downloads (GB/s against memcpy), and optionally a soak with the server's memory sampled.")

    @Option(help: "Concurrent clients posting signed actions.") var clients = 32
    @Option(help: "Seconds of each timed phase.") var seconds = 20.0
    @Option(help: "Concurrent clients downloading shards.") var downloads = 4
    @Option(help: "Seconds of the soak (both loads at once); 0 skips it.") var soak = 0.0
    @Option(name: .customLong("sample-every"), help: "Seconds between samples of the server's memory in the soak.") var sampleEvery = 10.0
    @Option(help: "Market rules folder (market.toml and domains/).") var policy = "Market"
    @Option(help: "Keep the market here instead of a temporary directory.") var directory: String?
    @Option(help: "The market's ledger in this (empty) PostgreSQL database instead of SQLite.") var database: String?
    @Option(help: "tessera serve processes on the one market (more than one needs --database); clients are spread over them.") var servers = 1
    @Flag var json = false

    func run() async throws {
        var o = ServerBenchmark.Options(binary: try executablePath())
        o.clients = clients
        o.seconds = seconds
        o.downloads = downloads
        o.soakSeconds = soak
        o.sampleEvery = sampleEvery
        o.policy = policy
        o.directory = directory
        o.database = database
        o.servers = servers
        let quiet = json
        let r = try await ServerBenchmark.run(o) { line in if !quiet { FileHandle.standardError.write(Data((line + "\n").utf8)) } }
        print(json ? try JSONOutput.compact(r) : r.text)
    }
}

struct CompletionsBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "completions-bench",
        abstract: "Load test of POST /v1/completions on loopback: concurrent clients streaming completions from tessera serve --serve-model on the reference shape (tokens/s served, time to first token).")

    @Option(help: "Concurrent clients.") var clients = 16
    @Option(help: "Streamed completions per client, one after the other.") var requests = 4
    @Option(name: .customLong("max-batch"), help: "The server's --max-batch.") var maxBatch = 16
    @Option(help: "Market rules folder (market.toml and domains/).") var policy = "Market"
    @Flag var json = false

    func run() async throws {
        let quiet = json
        let r = try await CompletionsBenchmark.run(binary: try executablePath(), policy: policy, clients: clients, perClient: requests, maxBatch: maxBatch) { line in
            if !quiet { FileHandle.standardError.write(Data((line + "\n").utf8)) }
        }
        print(json ? try JSONOutput.compact(r) : r.text)
    }
}

