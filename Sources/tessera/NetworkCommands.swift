import ArgumentParser
import Foundation
import Hummingbird
import Logging
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
    @Option(help: "Address to listen on.") var host = "127.0.0.1"
    @Option(help: "Port (0: any free port; the one chosen is printed).") var port = 8080
    @Option(name: .customLong("writes-per-second"), help: "Writes (actions, uploads) per second per key.") var rate = 500.0
    @Option(name: .customLong("clock-skew"), help: "Seconds an action's time may differ from this server's clock.") var clockSkew: Int64 = 600
    @Option(name: .customLong("log-level")) var logLevel = Logger.Level.info

    func validate() throws {
        guard (0...65535).contains(port) else { throw ValidationError("--port \(port) is outside 0...65535") }
        guard rate >= 0, rate.isFinite else { throw ValidationError("--writes-per-second must be a non-negative number") }
        guard clockSkew > 0 else { throw ValidationError("--clock-skew must be positive") }
    }

    func run() async throws {
        LoggingSystem.bootstrap { label in var h = StreamLogHandler.standardError(label: label); h.logLevel = logLevel; return h }
        let local = try LocalMarket(directory: MarketDirectory(path: market))
        var config = ServerConfiguration()
        config.host = host
        config.port = port
        config.writesPerSecondPerKey = rate
        config.writeBurst = max(rate * 2, 1)
        config.clockSkew = clockSkew
        config.logLevel = logLevel
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
