import Foundation
import TesseraCore
import TesseraLedger
import TesseraLibrary
import TesseraProof
#if canImport(Glibc)
import Glibc
#endif

/// `tessera demo --network`: the demo's round with every party a separate OS process that
/// reaches the market only through its server's URL on loopback. The operator creates the
/// market directory and starts `tessera serve` on it, then acts over HTTP; validators run
/// `tessera validator run`; honest contributors run `tessera contribute`; the copier, who
/// cannot see a bundle before the window closes (bundles are revealed only after it),
/// reads contributor-1's files off the shared disk (a leak) and submits them as its own in
/// the window, where the validators' copy check catches it. The steps, data and settings
/// are the in-process demo's, so the decisions and figures are the same.
public final class NetworkDemo {
    let demo: Demo
    let binary: String
    let connect: (String) throws -> any MarketConnection
    var server: ServerProcess?
    var url = ""
    var logs: String { demo.path("logs") }

    /// `binary` is the `tessera` executable to run the parties with; `connect` opens a
    /// market URL (the client module's `Markets.open`).
    public init(_ options: Demo.Options, binary: String, connect: @escaping (String) throws -> any MarketConnection,
                log: @escaping (String) -> Void) throws {
        demo = try Demo(options, log: log)
        self.binary = binary
        self.connect = connect
        // Actions carry real times here: the server holds them to its clock.
        demo.realClock = true
        demo.clock = Int64(Date().timeIntervalSince1970)
    }

    public static func run(_ options: Demo.Options, binary: String, connect: @escaping (String) throws -> any MarketConnection,
                           log: @escaping (String) -> Void) async throws -> DemoReport {
        let net = try NetworkDemo(options, binary: binary, connect: connect, log: log)
        let report: DemoReport
        do {
            try await net.run()
            report = try await net.demo.report()
        } catch {
            await net.server?.stop()
            throw error
        }
        await net.server?.stop()
        return report
    }

    func run() async throws {
        let d = demo
        try await d.createParticipants()
        try FileManager.default.createDirectory(atPath: logs, withIntermediateDirectories: true)
        try await d.createMarket()
        try await startServer()
        d.market = try connect(url)
        try await d.registerParticipants()
        try await d.prepareText()
        try writeContributorData()
        try await openRound()
        try await contribute()
        try await d.record(.closeRound(.init(at: d.tick(), round: d.round)), by: d.keys["operator"]!)
        d.log("operator: closed round \(d.round)'s submission window; contributors reveal their bundles")
        try await waitForContributors()
        try await tessera(["bundle", "upload", "--market", url, d.path("bundles/contributor-3")], name: "contributor-3-upload")
        for v in Demo.validatorNames { try await validatorPass(v) }
        try collectVerdicts()
        try await merge()
        try await d.serveAndPay()
    }

    // MARK: processes

    /// Runs `tessera args` to completion, its output in logs/NAME.log; a failure names the log.
    @discardableResult
    func tessera(_ args: [String], name: String) async throws -> String {
        let p = try launch(args, name: name)
        try await Blocking.run { p.waitUntilExit() }
        let log = (try? String(contentsOfFile: logPath(name), encoding: .utf8)) ?? ""
        guard p.terminationStatus == 0 else {
            throw CoreError("\(name) (tessera \(args.prefix(2).joined(separator: " "))) failed with status \(p.terminationStatus); its output is in \(logPath(name)): \(log.suffix(400))")
        }
        return log
    }

    func logPath(_ name: String) -> String { (logs as NSString).appendingPathComponent("\(name).log") }

    func launch(_ args: [String], name: String) throws -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: binary)
        p.arguments = args
        _ = FileManager.default.createFile(atPath: logPath(name), contents: nil)
        let out = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath(name)))
        p.standardOutput = out
        p.standardError = out
        try p.run()
        return p
    }

    func startServer() async throws {
        let p = try await ServerProcess.start(binary: binary, market: demo.directory.path, logPath: logPath("server"))
        server = p
        url = p.url
        demo.log("market: serving \(demo.directory.path) at \(url) (tessera serve, a separate process)")
    }

    // MARK: steps

    /// Each honest contributor's training text and rehearsal windows, as files of its own.
    func writeContributorData() throws {
        let d = demo
        let replayCount = d.o.replay > 0 ? Int((Double(d.o.trainWindows) * d.o.replay / (1 - d.o.replay)).rounded()) : 0
        for (i, c) in Demo.contributorNames.prefix(2).enumerated() {
            try d.text.train.share(i, of: 3).prefix(d.o.trainWindows).write(to: d.path("data/\(c)-train.safetensors"))
            try d.text.backgroundTrain.share(i, of: 3).prefix(replayCount).write(to: d.path("data/\(c)-replay.safetensors"))
        }
    }

    func openRound() async throws {
        let d = demo
        let allExperts = d.library.manifest.experts.map { ExpertRef(layer: $0.layer, expert: $0.expert) }
        try await d.record(.openRound(.init(at: d.tick(), round: d.round, domain: d.domain.name, experts: allExperts, closesAt: d.clock + 3_600)),
                           by: d.keys["operator"]!)
        d.log("operator: opened round \(d.round) on domain \(d.domain.name) over HTTP")
        for v in Demo.validatorNames { try await validatorPass(v) }
        let state = try await d.market.state()
        for v in Demo.validatorNames { d.commitments[v] = state.commitments[d.round]?[d.keys[v]!.publicHex]?.commitment ?? "" }
    }

    /// One `tessera validator run --once` of a validator: commits, or judges and reveals.
    func validatorPass(_ v: String) async throws {
        let d = demo
        let log = try await tessera(["validator", "run", "--market", url, "--key", d.path("keys/\(v).json"), "--domain", d.domain.name,
                               "--heldout", d.path("data/\(v)-heldout.safetensors"), "--background", d.path("data/background.safetensors"),
                               "--state", d.path("validators/\(v)"), "--once"], name: "\(v)-\(UUID().uuidString.prefix(6))")
        for line in log.split(separator: "\n") where line.hasPrefix("round ") { d.log("\(v): \(line)") }
    }

    var processes: [String: Process] = [:]

    /// contributor-1, then contributor-2, each a `tessera contribute` process that trains,
    /// submits and waits for the window to close; then the copier.
    func contribute() async throws {
        let d = demo
        for (i, c) in Demo.contributorNames.prefix(2).enumerated() {
            let before = try await d.market.state().submissions.count
            d.log("\(c): tessera contribute (selects, claims, trains \(d.o.steps) steps, submits its bundle's hash, waits to reveal)")
            processes[c] = try launch(["contribute", "--market", url, "--key", d.path("keys/\(c).json"), "--round", d.round,
                                       "--data", d.path("data/\(c)-train.safetensors"), "--replay", d.path("data/\(c)-replay.safetensors"),
                                       "--replay-share", String(d.o.replay), "--work", d.path("contributors/\(c)"), "--top-p", String(d.o.topP),
                                       "--steps", String(d.o.steps), "--batch", String(d.o.batch), "--lr", String(d.o.contributorLearningRate),
                                       "--weight-decay", String(d.o.contributorWeightDecay),
                                       "--warmup", String(max(1, d.o.steps / 10)), "--seed", String(d.o.seed &+ UInt64(i)),
                                       "--lora-rank", String(d.o.loraRank), "--factor-bits", String(d.o.contributorDelta.factorBits),
                                       "--delta", d.o.contributorDelta.encoding.rawValue, "--density", String(d.o.contributorDelta.density),
                                       "--matmul", d.o.matmul.rawValue],
                                      name: c)
            // The next one starts once this one's hash is in the ledger (submission order fixed).
            while try await d.market.state().submissions.count == before {
                guard processes[c]!.isRunning else { throw CoreError("\(c) stopped before submitting; see \(logPath(c))") }
                try await Task.sleep(nanoseconds: 500_000_000)
            }
        }
        // The copier: contributor-1's deltas off the disk, signed as its own, in the window.
        let c = "contributor-3"
        let first = d.path("contributors/contributor-1/bundle")
        let library = d.path("contributors/\(c)/library")
        try await tessera(["fetch", "--market", url, "--out", library], name: "\(c)-fetch")
        let deltas = try FileManager.default.contentsOfDirectory(atPath: first + "/deltas").sorted().map { first + "/deltas/" + $0 }
        let experts = try SubmissionBundle.verify(first, library: try ExpertLibrary(directory: library)).items.map(\.expert)
        let expertList = experts.map(\.description).joined(separator: ",")
        try await tessera(["ledger", "claim", "--market", url, "--key", d.path("keys/\(c).json"), "--round", d.round, "--experts", expertList], name: "\(c)-claim")
        try AtomicFile.write(Array(#"{"note":"copied"}"#.utf8), to: d.path("data/\(c)-summary.json"))
        try await tessera(["bundle", "create", "--key", d.path("keys/\(c).json"), "--library", library, "--market", url, "--domain", d.domain.name,
                     "--round", d.round, "--summary", d.path("data/\(c)-summary.json"), "--out", d.path("bundles/\(c)")] + deltas.flatMap { ["--delta", $0] },
                    name: "\(c)-bundle")
        try await tessera(["ledger", "submit", "--market", url, "--key", d.path("keys/\(c).json"), "--round", d.round, "--bundle", d.path("bundles/\(c)"),
                     "--library", library], name: "\(c)-submit")
        d.log("\(c): copied contributor-1's deltas off the disk, signed and submitted them")
    }

    func waitForContributors() async throws {
        for c in Demo.contributorNames.prefix(2) {
            guard let p = processes[c] else { continue }
            try await Blocking.run { p.waitUntilExit() }
            guard p.terminationStatus == 0 else { throw CoreError("\(c) failed with status \(p.terminationStatus); see \(logPath(c))") }
            demo.log("\(c): revealed (uploaded) its bundle")
        }
    }

    /// The report's submissions and verdicts, from the contributors' bundles and the
    /// validators' signed verdict files.
    func collectVerdicts() throws {
        let d = demo
        let dirs = [d.path("contributors/contributor-1/bundle"), d.path("contributors/contributor-2/bundle"), d.path("bundles/contributor-3")]
        let lib = try ExpertLibrary(directory: d.directory.libraryPath)
        for (c, dir) in zip(Demo.contributorNames, dirs) {
            let (hash, _) = try SubmissionBundle.submissionRecord(dir)
            let bundle = try SubmissionBundle.verify(dir, library: lib)
            var judgements: [DemoReport.Judgement] = []
            for v in Demo.validatorNames {
                let verdict = try Verdict.load(d.path("validators/\(v)/verdicts/\(hash).json"))
                judgements.append(.init(validator: v, accept: verdict.accept, gainLCBMicronatsPerToken: verdict.gainLCBMicronats,
                                        regressionUCBMicronatsPerToken: verdict.regressionUCBMicronats, maxCosine: verdict.maxCosine, reason: verdict.reason))
                if v == Demo.validatorNames[0], c == Demo.contributorNames[0], let h = verdict.heldOutLosses, let b = verdict.backgroundLosses {
                    d.baseLosses = (h.base, b.base)
                }
            }
            d.bundleDirs.append(dir)
            d.submissions.append(.init(contributor: c, behaviour: c == "contributor-3" ? "dishonest: re-signs contributor-1's deltas" : "honest",
                                       bundle: hash, experts: bundle.items.map(\.expert.description), deltaBytes: bundle.items.reduce(0) { $0 + $1.size },
                                       trainLossNatsPerToken: nil, verdicts: judgements, state: "pending", unitsEarned: 0, outcome: ""))
        }
    }

    /// The operator's merge, `tessera merge --market URL --round R`, validated on
    /// validator-1's held-out windows as in the in-process demo.
    func merge() async throws {
        let d = demo
        let out = try await tessera(["merge", "--market", url, "--round", d.round, "--heldout", d.path("data/validator-1-heldout.safetensors"),
                               "--background", d.path("data/background.safetensors"), "--key", d.path("keys/operator.json"),
                               "--work", d.path("operator-merge"), "--json"], name: "operator-merge")
        guard let line = out.split(separator: "\n").last(where: { $0.hasPrefix("{") }) else {
            d.log("merge: no accepted submission")
            return
        }
        d.merge = try StrictJSON.decode(RoundMerge.Outcome.self, from: Data(line.utf8), file: "merge output")
        d.log("operator: merged (tessera merge over HTTP): kept \(d.merge!.chosen.method.rawValue), \(d.merge!.versions.count) new expert versions")
    }
}
