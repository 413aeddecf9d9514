import ArgumentParser
import Foundation
import TesseraCore
import TesseraLedger
import TesseraClient
import TesseraMarket

/// `tessera market api-key`: an API key for /v1/completions, tied to a domain and the
/// policy's price; its secret goes to --out once, the market keeps its hash.
struct APIKeyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "api-key", abstract: "Issue an API key for a market server's /v1/completions (operator).")
    @OptionGroup var market: MarketOption
    @Option(help: "The market operator's key file.") var key: String
    @Option(help: "The domain whose revenue the key's requests count toward.") var domain: String
    @Option(help: "File to write the key's secret to (must not exist).") var out: String

    func run() async throws {
        let signer = try ParticipantKey.load(key)
        guard market.isRemote else {
            let dir = try market.directory(for: "issuing an API key")
            let local = try LocalMarket(directory: dir)
            guard signer.publicHex == (try await local.state().operatorKey) else {
                throw ValidationError("\(key) is not the operator key of \(dir.path); only the operator issues API keys")
            }
            _ = try local.rules.domain(domain)
            let record = try APIKeys.issue(market: dir.path, domain: domain, pricePer1kTokens: local.rules.serving.pricePer1kTokens,
                                           at: Int64(Date().timeIntervalSince1970), out: out)
            print("API key for domain \(domain) at \(record.pricePer1kTokens) minor units per 1000 tokens written to \(out) (stored as \(record.hash.prefix(12))…)")
            return
        }
        // Only the hash goes to the server; the secret is written here, and removed if the server refuses.
        let (secret, hash) = APIKeys.makeSecret()
        try APIKeys.writeSecret(secret, to: out)
        do {
            try await RemoteMarket(url: market.market).registerAPIKey(hash: hash, domain: domain, signedBy: signer)
        } catch {
            try? FileManager.default.removeItem(atPath: out)
            throw error
        }
        print("API key for domain \(domain) registered with \(market.market) and written to \(out) (stored there as \(hash.prefix(12))…)")
    }
}

/// `tessera ledger settle`: a period's metered requests as revenue events (operator).
struct SettleCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "settle", abstract: "Turn a period's metered completions into the ledger's revenue events, one per domain, committing to their receipts (operator).")
    @OptionGroup var market: MarketOption
    @OptionGroup var signer: SignerOption
    @Option(help: "The period, as the meter names it (its start, e.g. 2026-12-01T00:00:00Z); default: every closed period not settled yet.") var period: String?
    @Flag var json = false

    func run() async throws {
        let local = try LocalMarket(directory: try market.directory(for: "settlement"))
        let key = try signer.load()
        var periods = period.map { [$0] } ?? []
        if period == nil { periods = try await Settlement.closedPeriods(market: local, seconds: local.rules.serving.periodSeconds, now: signer.time) }
        var settled: [LedgerAction.Revenue] = []
        for p in periods { settled += try await Settlement.settle(market: local, period: p, key: key, at: signer.time) }
        if json { print(try JSONOutput.compact(settled)); return }
        if settled.isEmpty { print("nothing to settle") }
        for r in settled {
            print("settled \(r.domain) \(r.period): \(r.amount) minor units over \(r.usage.count) expert versions, receipts root \(r.receiptsRoot?.prefix(16) ?? "")…")
        }
    }
}

/// `tessera audit`: re-run sampled metered requests and check receipts, usage and price.
struct AuditCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "audit", abstract: "Re-run a sample of a market's metered completions on the same expert versions; check each receipt, the metered gate mass, the price and the completion tokens.")
    @OptionGroup var market: MarketOption
    @Option(help: "How many metered requests to re-run.") var sample = Count(20)
    @Option(help: "Seed of the sample's draw.") var seed: UInt64 = 0
    @Option(help: "With a URL: your copy of the market's library (tessera fetch), the model the requests are re-run on.") var library: String?
    @Option(help: "With a URL: your key file (a registered participant's), which signs the request for the sample.") var key: String?
    @Flag var json = false

    func run() async throws {
        let findings: [Audit.Finding]
        if market.isRemote {
            guard let library, let key else { throw ValidationError("auditing a server needs --library (a copy from tessera fetch) and --key (a participant's key)") }
            let records = try await RemoteMarket(url: market.market).meterSample(sample.value, seed: seed, signedBy: try ParticipantKey.load(key))
            findings = try Audit.check(records, library: library)
        } else {
            let local = try LocalMarket(directory: try market.directory(for: "an audit"))
            findings = try Audit.run(market: local.directory.path, library: library ?? local.library.directory, sample: sample.value, seed: seed)
        }
        if json { print(try JSONOutput.compact(findings)) } else {
            for f in findings where !f.ok { print("\(f.id): " + f.problems.joined(separator: "; ")) }
            print("\(findings.filter(\.ok).count) of \(findings.count) sampled requests check out")
        }
        if findings.contains(where: { !$0.ok }) { throw ExitCode(1) }
    }
}

/// `tessera receipt-check`: a client's own check of a routing receipt, trusting neither the
/// server's word nor its meter: the server's signature, then (once settled) the path from
/// the receipt to the receipts root of the revenue event read from the ledger itself.
struct ReceiptCheckCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "receipt-check", abstract: "Check a completion's routing receipt: the server's signature, and its inclusion in the settled revenue event's receipts root.")
    @OptionGroup var market: MarketOption
    @Option(help: "A file holding a /v1/completions response (or its tessera.receipt object).") var receipt: String
    @Flag var json = false

    func run() async throws {
        guard let data = FileManager.default.contents(atPath: receipt), let value = try? JSONValue.parse(data) else {
            throw ValidationError("\(receipt): not a JSON file")
        }
        let object = value["tessera"]?["receipt"] ?? value["receipt"] ?? value
        let r = try StrictJSON.decode(RoutingReceipt.self, from: object, file: receipt)
        guard r.signatureVerifies else { throw ValidationError("\(receipt): the receipt's signature does not verify for server key \(r.serverKey.prefix(16))…") }
        let status = market.isRemote
            ? try await RemoteMarket(url: market.market).receiptStatus(r.hash)
            : try await ReceiptStatus.find(r.hash, market: LocalMarket(directory: try market.directory(for: "a receipt check")))
        guard let status, status.receipt == r else { throw ValidationError("the market has no metered request with this receipt") }
        guard let seq = status.event, let root = status.receiptsRoot, let proof = status.proof else {
            print("receipt \(r.hash.prefix(12))… signed by \(r.serverKey.prefix(12))…, metered in \(status.domain) \(status.period) at \(status.price) minor units; not settled yet")
            return
        }
        // The root as the ledger recorded it, read from the events, not from the server's answer.
        let events = try await market.connect().events(since: seq - 1, limit: 1, wait: 0)
        guard let e = events.first, e.seq == seq, case .revenue(let revenue) = try LedgerAction.decode(kind: e.kind, payload: e.payload),
              revenue.receiptsRoot == root else {
            throw ValidationError("event \(seq) is not a revenue event with receipts root \(root.prefix(12))…")
        }
        guard RoutingReceipt.verifyInclusion(leaf: r.hash, proof: proof, root: root) else {
            throw ValidationError("the receipt is not in the receipts root of event \(seq): the settlement left it out")
        }
        if json { print(try JSONOutput.compact(status)); return }
        print("receipt \(r.hash.prefix(12))… signed by \(r.serverKey.prefix(12))…, in the receipts root of revenue event \(seq) (\(revenue.domain) \(revenue.period), \(revenue.amount) minor units)")
    }
}
