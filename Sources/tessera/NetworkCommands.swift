import ArgumentParser
import Foundation
import Hummingbird
import Logging
import TesseraBlobs
import TesseraClient
import TesseraCore
import TesseraLedger
import TesseraLibrary
import TesseraMarket
import TesseraProof
import TesseraServer

extension Logger.Level: @retroactive ExpressibleByArgument {}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve a market directory over HTTP (JSON API under /v1, OpenAPI at /v1/openapi.json, /healthz, /metrics); stops cleanly on SIGTERM or SIGINT.")
    @Option(help: "Market directory.") var market: String
    @Option(help: "The ledger in this PostgreSQL database (by default the one the directory's ledger.database names, else its ledger.sqlite). Several servers on one database are one market.")
    var database: String?
    @Option(help: "Address to listen on.") var host = "127.0.0.1"
    @Option(help: "Port (0: any free port; the one chosen is printed).") var port = 8080
    @Option(name: .customLong("writes-per-second"), help: "Writes (actions, uploads) per second per key.") var rate = 500.0
    @Option(name: .customLong("clock-skew"), help: "Seconds an action's time may differ from this server's clock (at most 1800).") var clockSkew: Int64 = 600
    @Option(name: .customLong("log-level")) var logLevel = Logger.Level.info
    @Option(help: "Also keep shards and bundles in this S3-compatible store, shared with the market's other servers: s3://BUCKET/PREFIX?endpoint=http://HOST:PORT&region=R (credentials from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY).")
    var blobs: String?
    @Flag(name: .customLong("blob-redirect"), help: "Answer shard downloads with a redirect to a pre-signed URL of the store instead of the bytes.")
    var blobRedirect = false
    @Flag(name: .customLong("serve-model"), help: "Serve POST /v1/completions on the library's current expert versions (API keys from `tessera market api-key`).")
    var serveModel = false
    @Option(name: .customLong("server-key"), help: "With --serve-model: the key that signs routing receipts (default: MARKET/serving/server.key, made on first use).")
    var serverKey: String?
    @Option(name: .customLong("settle-key"), help: "With --serve-model: the operator's key file; closed periods are then settled automatically.")
    var settleKey: String?
    @Option(name: .customLong("max-batch"), help: "With --serve-model: sequences decoded together at most (continuous batching); further requests wait for a place.")
    var maxBatch = 16

    func validate() throws {
        guard (0...65535).contains(port) else { throw ValidationError("--port \(port) is outside 0...65535") }
        guard (1...256).contains(maxBatch) else { throw ValidationError("--max-batch \(maxBatch) is outside 1...256") }
        guard rate >= 0, rate.isFinite else { throw ValidationError("--writes-per-second must be a non-negative number") }
        guard clockSkew > 0, clockSkew <= LedgerState.maxBackdateSeconds / 2 else {
            throw ValidationError("--clock-skew must be between 1 and \(LedgerState.maxBackdateSeconds / 2) s (half the ledger's back-dating limit), got \(clockSkew)")
        }
    }

    func run() async throws {
        LoggingSystem.bootstrap { label in var h = StreamLogHandler.standardError(label: label); h.logLevel = logLevel; return h }
        let local = try LocalMarket(directory: MarketDirectory(path: market, database: database))
        var config = ServerConfiguration()
        config.host = host
        config.port = port
        config.writesPerSecondPerKey = rate
        config.writeBurst = max(rate * 2, 1)
        config.clockSkew = clockSkew
        config.logLevel = logLevel
        if let blobs {
            config.blobs = BlobMirror(s3: try S3Client(location: try S3Location(blobs)), redirect: blobRedirect)
        } else if blobRedirect {
            throw ValidationError("--blob-redirect needs --blobs")
        }
        if serveModel {
            let keyPath = serverKey ?? (market as NSString).appendingPathComponent("serving/server.key")
            if serverKey == nil, !FileManager.default.fileExists(atPath: keyPath) {
                try FileManager.default.createDirectory(atPath: (keyPath as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
                try ParticipantKey.generate().save(to: keyPath)
            }
            config.completions = try CompletionService(market: local, serverKey: try ParticipantKey.load(keyPath), maxBatch: maxBatch)
        } else if serverKey != nil || settleKey != nil {
            throw ValidationError("--server-key and --settle-key need --serve-model")
        }
        if let settleKey {
            let operatorKey = try ParticipantKey.load(settleKey)
            let seconds = local.rules.serving.periodSeconds
            Task.detached {
                while !Task.isCancelled {
                    let now = Int64(Date().timeIntervalSince1970)
                    if let periods = try? await Settlement.closedPeriods(market: local, seconds: seconds, now: now) {
                        for p in periods { _ = try? await Settlement.settle(market: local, period: p, key: operatorKey, at: now) }
                    }
                    try? await Task.sleep(for: .seconds(min(60, Double(seconds) / 4)))
                }
            }
        }
        let server = MarketServer(market: local, configuration: config)
        let (dir, listenHost) = (market, host)
        let app = server.buildApplication { port in
            FileHandle.standardOutput.write(Data("serving \(dir) on http://\(listenHost):\(port)\n".utf8))
        }
        try await app.runService()
    }
}

struct Fetch: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Copy a market's library: the trunk and the current version of every expert (or only the chosen ones); every shard checked, resumable after a kill.")
    @OptionGroup var market: MarketOption
    @Option(help: "Library directory to write.") var out: String
    @Option(help: "Only these experts, LAYER:EXPERT,... (a partial library).") var experts: String?
    @Option(help: "Only the experts of a selection file from `tessera select`.") var selection: String?
    @Flag var json = false

    func run() async throws {
        guard experts == nil || selection == nil else { throw ValidationError("give --experts or --selection, not both") }
        var chosen: Set<ExpertID>?
        if let experts { chosen = Set(try ExpertID.parseList(experts)) }
        if let selection { chosen = Set(try ExpertSelection.load(selection).experts) }
        let progress = ProgressPrinter(enabled: !json)
        let r = try await LibraryFetch.run(from: try market.connect(), into: out, experts: chosen, log: progress.line)
        if json { print(try jsonString(r)); return }
        print("library \(out): \(r.shards) shards (\(r.experts) experts and the trunk), \(r.downloaded) downloaded, \(r.bytes) bytes")
    }
}

struct BundleUpload: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "upload",
                                                    abstract: "Upload a bundle once its round's submission window has closed (its hash must have been submitted in the window).")
    @OptionGroup var market: MarketOption
    @Argument(help: "Bundle directory.") var bundle: String
    func run() async throws {
        print("uploaded submission \(try await market.connect().uploadBundle(bundle))")
    }
}

struct BundleDownload: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "download", abstract: "Download a submitted bundle.")
    @OptionGroup var market: MarketOption
    @Argument(help: "Submission hash.") var submission: String
    @Option(help: "Directory to write the bundle into.") var out: String
    func run() async throws {
        try await market.connect().downloadBundle(submission, to: out)
        print("wrote bundle \(submission.prefix(12)) to \(out)")
    }
}

/// Progress lines on standard error when it is a terminal or when asked.
struct ProgressPrinter: Sendable {
    let enabled: Bool
    func line(_ text: String) {
        guard enabled else { return }
        FileHandle.standardError.write(Data((text + "\n").utf8))
    }
}

struct Contribute: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "A contributor's whole round against a market: fetch, select, claim, train, submit, upload after the window closes. Resumes after a kill where it stopped.")
    @OptionGroup var market: MarketOption
    @Option(help: "Contributor key file.") var key: String
    @Option var round: String
    @Option(help: "Training windows of the round's domain (safetensors input_ids).") var data: String
    @Option(help: "Working directory: library copy, selection, training state, bundle, progress.") var work: String
    @Option(help: "General-text windows to rehearse (against forgetting).") var replay: String?
    @Option(name: .customLong("replay-share")) var replayShare = 0.5
    @Option(help: "Train these experts (LAYER:EXPERT,...) instead of an ESFT selection.") var experts: String?
    @Option(name: .customLong("top-p"), help: "ESFT selection threshold.") var topP = 0.3
    @OptionGroup var delta: DeltaArguments
    @OptionGroup var training: TrainingArguments
    @Flag var json = false

    func run() async throws {
        var o = ContributorWorkflow.Options(round: round, data: data, training: delta.trainingOptions(training))
        o.replay = replay
        o.replayShare = replayShare
        o.experts = try experts.map(ExpertID.parseList)
        o.topP = topP
        o.delta = delta.options
        o.matmul = training.matmul.precision
        o.recomputeActivations = training.recomputeActivations
        let printer = ProgressPrinter(enabled: true)
        let flow = try ContributorWorkflow(market: try market.connect(), key: try ParticipantKey.load(key), work: work, options: o, log: printer.line)
        let r = try await flow.run()
        if json { print(try jsonString(r)); return }
        print("submission \(r.submission) (\(r.experts.count) experts, \(r.deltaBytes) bytes of deltas) uploaded to \(market.market)")
    }
}

struct ValidatorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "validator", abstract: "Validators' long-running work.", subcommands: [Run.self])

    struct Run: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Follow a market: commit to held-out windows when a round of the domain opens, judge every submission once the window closes, post signed verdicts, reveal after the close. --once handles what is pending and exits.")
        @OptionGroup var market: MarketOption
        @Option(help: "Validator key file.") var key: String
        @Option(help: "The domain whose rounds this validator judges.") var domain: String
        @Option(help: "Held-out windows of the domain (safetensors input_ids).") var heldout: String
        @Option(help: "Background windows (general text the base was trained on).") var background: String
        @Option(help: "State directory: salts, library copy, bundles, verdicts.") var state: String
        @Option(name: .customLong("max-windows")) var maxWindows: Int?
        @Flag(help: "Handle what is pending now, then exit.") var once = false
        @Flag var json = false

        func validate() throws {
            if let maxWindows, maxWindows < 1 { throw ValidationError("--max-windows \(maxWindows) must be positive") }
        }

        func run() async throws {
            var o = ValidatorDaemon.Options(domain: domain, heldOut: heldout, background: background)
            o.maxWindows = maxWindows
            o.once = once
            let printer = ProgressPrinter(enabled: true)
            let daemon = try await ValidatorDaemon(market: try market.connect(), key: try ParticipantKey.load(key), state: state, options: o, log: printer.line)
            let s = try await daemon.run()
            if json { print(try jsonString(s)); return }
            print("commitments \(s.commitments), verdicts \(s.verdicts), reveals \(s.reveals)")
        }
    }
}
