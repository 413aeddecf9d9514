import ArgumentParser
import Foundation
import TesseraBenchmarks
import TesseraClient
import TesseraEngine
import TesseraLedger
import TesseraLibrary
import TesseraMarket
import TesseraProof
import TesseraCore

struct Select: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Rank experts by routing affinity on your data (ESFT, normalised per layer) and pick the smallest set per layer reaching p.")
    @Option(help: "Expert library.") var library: String
    @Option(help: "Token windows (safetensors input_ids).") var data: String
    @OptionGroup var matmul: MatmulOption
    @Option(help: "gate (average gate value) or token (token-selection ratio).") var score = ExpertSelection.Score.token
    @Option(name: .customLong("top-p"), help: "Cumulative affinity to reach in each layer.") var topP = 0.3
    @Option(name: .customLong("max-windows"), help: "Use at most this many windows (1 or more).") var maxWindows: Count?
    @Option(help: "Selection file to write.") var out = "selection.json"
    @Flag var json = false

    func run() throws {
        let lib = try ExpertLibrary(directory: library)
        let windows = try TokenWindows.load(path: data)
        try windows.requireVocabulary(of: lib)
        let selection = try ExpertSelection.compute(model: try lib.loadModel(), data: windows.prefix(maxWindows?.value),
                                                    score: score, topP: topP, matmul: matmul.precision)
        try selection.save(out)
        if json { print(try jsonString(selection)); return }
        print(selection.table)
        print("wrote \(out)")
    }
}

struct Train: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Fine-tune the selected experts (all else frozen) and write a signed submission bundle; resumes after a kill.")
    @Option(help: "Expert library.") var library: String
    @Option(help: "Selection file from `tessera select`.") var experts: String
    @Option(help: "Training windows (safetensors input_ids).") var data: String
    @Option(name: .customLong("held-out"), help: "Your own held-out windows, to watch progress.") var heldOut: String?
    @Option(help: "General-text windows to rehearse (against forgetting, which validators punish).") var replay: String?
    @Option(name: .customLong("replay-share"), help: "Share of training windows taken from --replay.") var replayShare = 0.5
    @Option(help: "Contributor key file (signs the bundle).") var key: String
    @Option(help: "Bundle directory to write.") var out: String
    @Option(help: "The market the bundle is signed for: its directory or URL (asked for its ID), or its ID (the hash of its genesis event).")
    var market: String
    @Option(help: "The domain of the round.") var domain: String
    @Option(help: "The round the bundle is submitted to.") var round: String
    @Flag(help: "Load only the selected experts (plus enough per layer to route top-k).") var partial = false
    @OptionGroup var delta: DeltaArguments
    @OptionGroup var training: TrainingArguments
    @Flag var json = false

    // Checked before anything is read or trained, so a bad value costs nothing.
    func validate() throws {
        guard replayShare.isFinite, (0..<1).contains(replayShare) else { throw ValidationError("--replay-share \(replayShare) must be in [0, 1)") }
    }

    func run() async throws {
        let marketID = try await resolveMarketID(market)
        let lib = try ExpertLibrary(directory: library)
        let selection = try ExpertSelection.load(experts)
        var windows = try TokenWindows.load(path: data)
        if let replay {
            let count = Int((Double(windows.count) * replayShare / (1 - replayShare)).rounded())
            windows = try windows.appending(try TokenWindows.load(path: replay).spread(count))
        }
        var request = Contribution.Request(experts: selection.experts, data: windows,
                                           heldOut: try heldOut.map { try TokenWindows.load(path: $0) }, options: delta.trainingOptions(training),
                                           partialResidency: partial, delta: delta.options,
                                           market: marketID, domain: domain, round: round, matmul: training.matmul.precision)
        request.recomputeActivations = training.recomputeActivations
        let r = try Contribution.run(request, library: lib, key: try ParticipantKey.load(key), out: out, progress: true)
        if json { print(try jsonString(r)); return }
        print("trained \(r.experts.count) experts (\(r.training.trainedParameters) parameters) for \(r.training.steps) steps; bundle \(r.bundle): \(r.deltaBytes) bytes of deltas (" + String(format: "%.1f", Double(r.float32Bytes) / Double(max(r.deltaBytes, 1))) + "× smaller than float32)")
    }
}

/// The validator's inputs, shared by `validate` and `verdict check`.
struct ProofInputs: ParsableArguments {
    @OptionGroup var matmul: MatmulOption
    @Option(help: "Expert library (the market's).") var library: String
    @Option(help: "Held-out windows of the domain (safetensors input_ids).") var heldout: String
    @Option(help: "Background windows (general text the base was trained on).") var background: String
    @Option(help: "market.toml whose [proof_of_loss] table is the policy.") var policy = "Market/market.toml"
    @Option(name: .customLong("max-windows"), help: "Use at most this many windows of each set (1 or more).") var maxWindows: Count?
    @Option(name: .customLong("cache-gb"), help: "Memory for the forward caches that make validation incremental, in GB (default: half of what is available after loading the model); windows past it are evaluated in full, with the same figures.")
    var cacheGB: Double?

    /// A validator over these inputs, computing in the market's precision
    /// (`proof_of_loss.matmul`); `matmul` overrides it for a re-check in the precision a
    /// verdict recorded. `--matmul`, when given, must agree with the one used.
    func validator(key: ParticipantKey, versions: [ExpertID: String] = [:], matmul: MatmulPrecision? = nil) throws -> Validator {
        let proof = try ProofPolicy.load(policy)
        let precision = matmul ?? proof.matmul
        if matmul == nil { try proof.requireUsablePrecision(file: policy) }
        if let asked = self.matmul.choice, asked != precision {
            throw ValidationError("--matmul \(asked.rawValue): verdicts here are computed in \(precision.rawValue) (\(matmul == nil ? "proof_of_loss.matmul of \(policy)" : "the verdict's own precision")), so that others can re-check them")
        }
        return try Validator(library: try ExpertLibrary(directory: library), key: key, policy: proof,
                             heldOut: try TokenWindows.load(path: heldout).prefix(maxWindows?.value),
                             background: try TokenWindows.load(path: background).prefix(maxWindows?.value), versions: versions,
                             matmul: precision, cacheBudget: try cacheGB.map { gb in
                                 guard gb >= 0, gb.isFinite, gb < 1e6 else { throw ValidationError("--cache-gb \(gb): give 0 or more gigabytes") }
                                 return Int(gb * 1e9)
                             })
    }
}

struct Validate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Proof-of-Loss: judge submission bundles (in submission order) and write signed verdicts.")
    @OptionGroup var inputs: ProofInputs
    @Option(name: .customLong("bundle"), help: "Bundle directory (repeatable, in submission order).") var bundles: [String]
    @Option(help: "Validator key file.") var key: String
    @Option(help: "Directory for the verdict files.") var out = "verdicts"
    @Flag var json = false

    func run() throws {
        guard !bundles.isEmpty else { throw ValidationError("give at least one --bundle") }
        let k = try ParticipantKey.load(key)
        let v = try inputs.validator(key: k)
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        var all: [Verdict] = []
        for b in bundles {
            let verdict = try v.judge(bundle: b)
            let path = (out as NSString).appendingPathComponent("\(verdict.submission).json")
            try verdict.save(signedBy: k, to: path)
            all.append(verdict)
            if !json { print("\(b): \(verdict.accept ? "ACCEPT" : "REJECT") — \(verdict.reason)\n  verdict \(path)") }
        }
        if json { print(try jsonString(all)) }
    }
}

struct VerdictCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "verdict", abstract: "Re-check verdicts.", subcommands: [Check.self])

    struct Check: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Re-run a verdict's evaluation from scratch (no caches): bit-identical figures pass; differences of float rounding with the same decision pass only for precisions that are not bit-reproducible across processors (fp32).")
        @Argument(help: "Verdict file.") var verdict: String
        @Option(help: "The bundle the verdict judged.") var bundle: String
        @OptionGroup var inputs: ProofInputs

        func run() throws {
            let original = try Verdict.load(verdict)
            // Re-run in the precision the validator used unless told otherwise.
            let precision: MatmulPrecision
            if let asked = inputs.matmul.choice { precision = asked } else {
                do { precision = try MatmulPrecision.parse(original.matmulPrecision) } catch {
                    throw ValidationError("\(verdict): \(error)")
                }
            }
            let report = try VerdictCheck.run(original, bundle: bundle, inputs: { key, versions in
                try inputs.validator(key: key, versions: versions, matmul: precision)
            })
            let decision = original.accept ? "accept" : "reject"
            switch report.outcome {
            case .identical:
                print("\(verdict): signature valid; figures and decision reproduced bit for bit (\(decision))")
            case .roundingOnly where !precision.isBitReproducible:
                print("\(verdict): signature valid; decision reproduced (\(decision)); figures agree to float rounding only "
                      + "(largest relative difference \(String(format: "%.1e", report.largestRelativeDifference))): \(precision.rawValue) products "
                      + "are not the same bits on every processor\n  " + report.differences.joined(separator: "\n  "))
            case .roundingOnly:
                throw ValidationError("\(verdict): the decision reproduces but the figures differ in their last bits, and \(precision.rawValue) "
                                      + "promises the same bits on every processor: the verdict or this re-check was not computed as it says\n  "
                                      + report.differences.joined(separator: "\n  "))
            case .differs:
                throw ValidationError("\(verdict) does not reproduce:\n  " + report.differences.joined(separator: "\n  "))
            }
        }
    }
}

struct ValidateBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "validate-bench",
        abstract: "Benchmark: incremental vs full re-evaluation for an update to the top half of the layers (identical figures required).")
    @Option(help: "Expert library.") var library: String
    @Option(help: "Windows to evaluate (safetensors input_ids).") var data: String
    @OptionGroup var matmul: MatmulOption
    @Option(name: .customLong("max-windows")) var maxWindows = Count(256)
    @Option var repeats = Count(3)
    @Flag var json = false

    func run() throws {
        let r = try ValidationBenchmark.run(library: try ExpertLibrary(directory: library),
                                            windows: try TokenWindows.load(path: data).prefix(maxWindows.value), repeats: repeats.value,
                                            matmul: matmul.precision)
        if json { print(try jsonString(r)); return }
        print("\(r.windows) windows (\(r.tokens) tokens), changed experts \(r.changedExperts.joined(separator: " "))")
        print(String(format: "full re-evaluation %.3f s, incremental %.3f s: %.2f× faster; base pass with caches %.3f s, cache %.1f MB",
                     r.fullSeconds, r.incrementalSeconds, r.speedup, r.cacheSeconds, Double(r.cacheBytes) / 1e6))
        print("per-window losses identical: \(r.identical ? "yes" : "NO")")
        if !r.identical { throw ExitCode(1) }
    }
}

struct Merge: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Merge a round's accepted submissions (TIES, gain-weighted mean or the best single one, validated again), store the new versions and record them with credits (operator).")
    @OptionGroup var market: MarketOption
    @Option(help: "The round whose accepted submissions to merge (their bundles are fetched from the market).") var round: String?
    @Option(name: .customLong("bundle"), help: "Bundle directory of a submission (repeatable; instead of --round; rejected ones are skipped).") var bundles: [String] = []
    @Option(help: "Held-out windows to validate the merge on.") var heldout: String
    @Option(help: "Background windows.") var background: String
    @Option(name: .customLong("max-windows")) var maxWindows: Int?
    @Option(help: "Working directory for a remote market: the library copy and the bundles (default: a temporary one).") var work: String?
    @OptionGroup var signer: SignerOption
    @Flag var json = false

    func validate() throws {
        guard (round == nil) != bundles.isEmpty else { throw ValidationError("give --round, or --bundle DIR for each submission") }
        if let maxWindows, maxWindows < 1 { throw ValidationError("--max-windows \(maxWindows) must be positive") }
    }

    func run() async throws {
        let connection = try market.connect()
        let key = try signer.load()
        let scratch = work ?? NSTemporaryDirectory() + "tessera-merge-\(UUID().uuidString)"
        defer { if work == nil { try? FileManager.default.removeItem(atPath: scratch) } }
        // The market's own library when it is a directory; a fetched copy for a server.
        let library: ExpertLibrary
        if let local = connection as? LocalMarket {
            library = local.library
        } else {
            _ = try await LibraryFetch.run(from: connection, into: scratch + "/library")
            library = try ExpertLibrary(directory: scratch + "/library")
        }
        var dirs = bundles
        if let round {
            // In the order the ledger recorded them, as validators judged them.
            var follower = try await LedgerFollower.start(connection)
            try await follower.update(connection)
            let state = follower.state
            for hash in follower.submissions(ofRound: round) where state.submissions[hash]?.state == .accepted {
                let dir = scratch + "/bundles/" + hash
                if !FileManager.default.fileExists(atPath: dir + "/bundle.json") { try await connection.downloadBundle(hash, to: dir) }
                dirs.append(dir)
            }
        }
        let policy = try ProofPolicy.read(try PolicyFile.parse(String(decoding: try await connection.policyText(), as: UTF8.self), file: "market policy"),
                                          file: "market policy")
        try policy.requireUsablePrecision(file: "\(market.market) market.toml")
        let validator = try Validator(library: library, key: key, policy: policy,
                                      heldOut: try TokenWindows.load(path: heldout).prefix(maxWindows),
                                      background: try TokenWindows.load(path: background).prefix(maxWindows))
        guard let outcome = try await MarketMerge.run(market: connection, library: library, bundles: dirs, validator: validator, operatorKey: key,
                                                      at: signer.time) else {
            print("no accepted submission among the bundles; nothing merged")
            return
        }
        if json { print(try jsonString(outcome)); return }
        print("kept \(outcome.chosen.method.rawValue) of \(outcome.chosen.members.count) update(s): held-out gain " + String(format: "%.4f", outcome.chosen.gain) + " nats/token")
        for v in outcome.versions { print("  expert \(v.layer):\(v.expert): version \(v.version.prefix(12)) (parent \(v.parent.prefix(12)))") }
        for (s, c) in outcome.credits.sorted(by: { $0.key < $1.key }) { print("  credit \(s.prefix(12)): \(c) µnats/token") }
    }
}
