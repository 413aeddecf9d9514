import ArgumentParser
import Foundation
import TesseraBenchmarks
import TesseraClient
import TesseraCore
import TesseraEngine
import TesseraLedger
import TesseraLibrary
import TesseraMarket
import TesseraProof

/// `--market DIR|URL`, shared by every market command: a market directory, or the URL of
/// a market's server (`tessera serve`). Both give the same answers.
struct MarketOption: ParsableArguments {
    @Option(help: "Market directory, or http(s)://HOST:PORT of a market server.") var market = "./market"
    @Option(help: "The market's ledger in this PostgreSQL database (postgresql://USER@HOST:PORT/DB); by default the one the directory names in ledger.database, else its ledger.sqlite.")
    var database: String?
    var isRemote: Bool { market.hasPrefix("http://") || market.hasPrefix("https://") }
    func validate() throws {
        if isRemote, database != nil { throw ValidationError("--database names a market directory's ledger; a server's URL has its own") }
    }
    func connect() throws -> any MarketConnection { try Markets.open(market, database: database) }
    /// For the commands that work on a directory only.
    func directory(for what: String) throws -> MarketDirectory {
        guard !isRemote else { throw ValidationError("\(what) works on a market directory, not on \(market)") }
        return MarketDirectory(path: market, database: database)
    }
}

struct SignerOption: ParsableArguments {
    @Option(help: "Key file of the participant (or operator) signing the action.") var key: String
    @Option(help: "Time of the action, Unix seconds (now by default).") var at: Int64?
    var time: Int64 { at ?? Int64(Date().timeIntervalSince1970) }
    func load() throws -> ParticipantKey { try ParticipantKey.load(key) }
}

func printOutcome(_ o: Ledger.Outcome) {
    switch o {
    case let .appended(seq): print("recorded as event \(seq)")
    case let .duplicate(seq): print("already recorded as event \(seq); nothing new written")
    }
}

func expertRefs(_ text: String) throws -> [ExpertRef] {
    try ModelSource.parseExpertSet(text).sorted().map { ExpertRef(layer: $0.layer, expert: $0.expert) }
}

/// Signs `action` with the signer's key and posts it to the market.
func post(_ action: LedgerAction, _ market: MarketOption, _ signer: SignerOption) async throws {
    printOutcome(try await market.connect().post(try SignedAction(action, key: try signer.load())))
}

struct MarketCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "market", abstract: "Create a market; issue API keys.", subcommands: [Init.self, APIKeyCommand.self])

    struct Init: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a market directory: policy copy, library copy, ledger with its genesis event.")
        @OptionGroup var market: MarketOption
        @Option(help: "Folder holding market.toml and domains/.") var policy = "Market"
        @Option(help: "Expert library of the base model.") var library: String
        @Option(help: "Operator key file (signs the genesis event).") var key: String
        @Option(help: "Public key of the base model's publisher, who holds the genesis units.") var publisher: String
        func run() throws {
            let dir = try market.directory(for: "market init")
            let ledger = try MarketDirectory.create(at: dir.path, policyFolder: policy, library: library,
                                                    operatorKey: try ParticipantKey.load(key), publisher: publisher,
                                                    at: Int64(Date().timeIntervalSince1970), database: market.database)
            let s = try ledger.currentState()
            print("market \(dir.path): \(s.experts.count) experts, domains \(s.domains.sorted().joined(separator: ", ")), \(s.seq) events")
        }
    }
}

struct LedgerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ledger", abstract: "Record market actions and query the ledger (of a market directory or a server).",
        subcommands: [Register.self, OpenRound.self, CloseRound.self, Claim.self, Submit.self, Commit.self, VerdictCmd.self, Reveal.self, NewVersion.self,
                      Revenue.self, SettleCommand.self, Shares.self, ExpertCmd.self, RoundCmd.self, Payouts.self, Events.self, Verify.self, Copy.self, LedgerBench.self, LedgerStress.self])

    struct Register: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Register a participant (operator).")
        @OptionGroup var market: MarketOption
        @OptionGroup var signer: SignerOption
        @Option(help: "The participant's public key (hex).") var participant: String
        @Option(help: "Roles, comma-separated: contributor, validator, owner.") var roles: RoleList
        @Option(help: "Validator stake.") var stake: Int64 = 0
        func run() async throws {
            try await post(.register(.init(at: signer.time, key: participant, roles: roles.roles, stake: stake)), market, signer)
        }
    }

    struct OpenRound: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "open-round", abstract: "Open a round on a domain (operator).")
        @OptionGroup var market: MarketOption
        @OptionGroup var signer: SignerOption
        @Option var round: String
        @Option var domain: String
        @Option(help: "LAYER:EXPERT,... (default: every expert of the market).") var experts: String?
        @Option(name: .customLong("closes-at"), help: "End of the submission window, Unix seconds.") var closesAt: Int64
        func run() async throws {
            let connection = try market.connect()
            var refs = try experts.map(expertRefs)
            if refs == nil { refs = try await connection.state().experts.keys.sorted().map { ExpertRef(layer: $0.layer, expert: $0.expert) } }
            printOutcome(try await connection.post(try SignedAction(.openRound(.init(at: signer.time, round: round, domain: domain, experts: refs!,
                                                                                        closesAt: closesAt)), key: try signer.load())))
        }
    }

    struct CloseRound: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "close-round", abstract: "Close a round's submission window (operator).")
        @OptionGroup var market: MarketOption
        @OptionGroup var signer: SignerOption
        @Option var round: String
        func run() async throws { try await post(.closeRound(.init(at: signer.time, round: round)), market, signer) }
    }

    struct Claim: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Claim experts in an open round (contributor).")
        @OptionGroup var market: MarketOption
        @OptionGroup var signer: SignerOption
        @Option var round: String
        @Option(help: "LAYER:EXPERT,...") var experts: String
        @Option(name: .customLong("expires-at"), help: "Unix seconds (default: one day after the action).") var expiresAt: Int64?
        func run() async throws {
            try await post(.claim(.init(at: signer.time, round: round, experts: try expertRefs(experts), expiresAt: expiresAt ?? signer.time + 86_400)), market, signer)
        }
    }

    struct Submit: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Submit a bundle's hash in the round's window (contributor): a commitment; the bundle itself is uploaded after the window closes (tessera bundle upload).")
        @OptionGroup var market: MarketOption
        @OptionGroup var signer: SignerOption
        @Option var round: String
        @Option(help: "Bundle directory.") var bundle: String
        @Option(help: "Library to check the bundle against (default: the market directory's; needed for a URL).") var library: String?
        func run() async throws {
            let key = try signer.load()
            let libraryPath = try library ?? market.directory(for: "submit without --library").libraryPath
            let b = try SubmissionBundle.verify(bundle, library: try ExpertLibrary(directory: libraryPath), requireCurrent: true)
            guard b.contributor == key.publicHex else { throw ValidationError("the bundle is signed by \(b.contributor), not by this key") }
            let connection = try market.connect()
            let summary = try await connection.summary()
            guard let r = try await connection.state().rounds[round] else { throw ValidationError("no round \(round) in this market; rounds: \(summary.rounds.joined(separator: ", "))") }
            try b.requireDestination(market: summary.marketID, domain: r.domain, round: round)
            try await post(SubmissionBundle.submitAction(bundle, market: summary.marketID, domain: r.domain, round: round, at: signer.time), market, signer)
        }
    }

    struct VerdictCmd: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "verdict", abstract: "Record a Proof-of-Loss verdict (validator): from a signed verdict file, or given figures.")
        @OptionGroup var market: MarketOption
        @OptionGroup var signer: SignerOption
        @Option(name: .customLong("verdict"), help: "Signed verdict file from `tessera validate` (fills every field below).") var verdictFile: String?
        @Option(help: "Submission (bundle hash).") var submission: String?
        @Option(help: "Lower confidence bound of the held-out gain, micro-nats per token.") var gain: Int64?
        @Option(help: "Upper confidence bound of the background regression, micro-nats per token.") var regression: Int64?
        @Flag(help: "Accept (default: reject).") var accept = false
        @Option var reason = ""
        func run() async throws {
            let key = try signer.load()
            let action: LedgerAction.Verdict
            if let verdictFile {
                let v = try Verdict.load(verdictFile)
                guard v.validator == key.publicHex else { throw ValidationError("\(verdictFile) is signed by validator \(v.validator.prefix(16))…, not by this key") }
                action = v.ledgerAction(at: signer.time)
            } else {
                guard let submission, let gain, let regression else { throw ValidationError("give --verdict FILE, or --submission, --gain and --regression") }
                action = .init(at: signer.time, submission: submission, gainLCBMicronats: gain, regressionUCBMicronats: regression, accept: accept, reason: reason)
            }
            try await post(.verdict(action), market, signer)
        }
    }

    struct Commit: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Commit to your held-out windows for an open round (validator); writes the salt to keep.")
        @OptionGroup var market: MarketOption
        @OptionGroup var signer: SignerOption
        @Option var round: String
        @Option(help: "Your held-out windows (safetensors input_ids).") var heldout: String
        @Option(name: .customLong("salt-out"), help: "Where to keep the salt until the reveal (never overwritten).") var saltOut: String
        func run() async throws {
            guard !FileManager.default.fileExists(atPath: saltOut) else { throw ValidationError("\(saltOut) exists; refusing to overwrite a salt") }
            let salt = HeldOutCommitment.newSalt()
            let commitment = HeldOutCommitment.commitment(heldOutSHA256: try TokenWindows.load(path: heldout).contentHash, salt: salt)
            try AtomicFile.write(Array((Hex.encode(salt) + "\n").utf8), to: saltOut)
            try await post(.commit(.init(at: signer.time, round: round, commitment: commitment)), market, signer)
            print("commitment \(commitment); salt in \(saltOut)")
        }
    }

    struct Reveal: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Reveal the held-out windows of a closed round (validator); the ledger checks them against your commitment.")
        @OptionGroup var market: MarketOption
        @OptionGroup var signer: SignerOption
        @Option var round: String
        @Option(help: "The held-out windows you committed to.") var heldout: String
        @Option(help: "The salt file `ledger commit` wrote.") var salt: String
        func run() async throws {
            let hex = try String(contentsOfFile: salt, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
            try await post(.reveal(.init(at: signer.time, round: round, salt: hex, heldOutSHA256: try TokenWindows.load(path: heldout).contentHash)), market, signer)
        }
    }

    struct NewVersion: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "new-version", abstract: "Record a new expert version merged from accepted submissions (operator); its shard must be stored first.")
        @OptionGroup var market: MarketOption
        @OptionGroup var signer: SignerOption
        @Option(help: "LAYER:EXPERT") var expert: String
        @Option(help: "The new version's hash (its shard in the market library).") var version: String
        @Option(help: "Merged submissions (bundle hashes, comma-separated).") var submissions: String
        @Option(help: "Credit per merged submission, µnats per token, comma-separated in the same order (default: consensus gains).") var credits: String?
        func run() async throws {
            let id = try singleExpert(expert)
            let creditList = try credits.map { text in
                try text.split(separator: ",").map { item -> Int64 in
                    guard let v = Int64(item.trimmingCharacters(in: .whitespaces)) else { throw ValidationError("--credits: \(item) is not an integer") }
                    return v
                }
            }
            let connection = try market.connect()
            guard let parent = try await connection.state().experts[id]?.versions.last else { throw ValidationError("unknown expert \(expert)") }
            printOutcome(try await connection.post(try SignedAction(.newVersion(.init(at: signer.time, layer: id.layer, expert: id.expert, version: version, parent: parent,
                                                                                      submissions: submissions.split(separator: ",").map(String.init), credits: creditList)),
                                                                key: try signer.load())))
        }
    }

    struct Revenue: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Distribute a revenue event by metered usage (operator).")
        @OptionGroup var market: MarketOption
        @OptionGroup var signer: SignerOption
        @Option var domain: String
        @Option var period: String
        @Option(help: "Integer minor units.") var amount: Int64
        @Option(help: "Usage per expert's current version: LAYER:EXPERT=UNITS,...") var usage: String
        func run() async throws {
            let connection = try market.connect()
            let state = try await connection.state()
            let items = try usage.split(separator: ",").map { item -> LedgerAction.Usage in
                let parts = item.split(separator: "=")
                guard parts.count == 2, let u = Int64(parts[1]) else { throw ValidationError("usage item \(item) is not LAYER:EXPERT=UNITS") }
                let id = try singleExpert(String(parts[0]))
                guard let v = state.experts[id]?.versions.last else { throw ValidationError("unknown expert \(parts[0])") }
                return .init(layer: id.layer, expert: id.expert, version: v, usage: u)
            }
            printOutcome(try await connection.post(try SignedAction(.revenue(.init(at: signer.time, domain: domain, period: period, amount: amount, usage: items)),
                                                                key: try signer.load())))
        }
    }

    struct Shares: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "An owner's holdings: units, fraction and payouts to date per expert.")
        @OptionGroup var market: MarketOption
        @Option(help: "Owner's public key (hex) or key file.") var owner: String
        @Flag var json = false
        func run() async throws {
            let key = FileManager.default.fileExists(atPath: owner) ? try ParticipantKey.load(owner).publicHex : owner
            let r = try await market.connect().shares(owner: key)
            if json { print(try jsonString(r)); return }
            print("owner \(key)")
            for h in r.holdings {
                print(String(format: "  expert %d:%d  %lld of %lld units (%.4f%%)  payouts %lld minor units", h.layer, h.expert, h.units, h.totalUnits, 100 * h.fraction, h.payouts))
            }
            if r.fees > 0 { print("  fees received \(r.fees) minor units") }
        }
    }

    struct ExpertCmd: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "expert", abstract: "An expert's holders, version history and revenue.")
        @OptionGroup var market: MarketOption
        @Argument(help: "LAYER:EXPERT") var expert: String
        @Flag var json = false
        func run() async throws {
            guard let r = try await market.connect().expert(try singleExpert(expert)) else { throw ValidationError("expert \(expert) is not in this market") }
            if json { print(try jsonString(r)); return }
            print("expert \(r.layer):\(r.expert): \(r.totalUnits) units, current version \(r.currentVersion.prefix(12)), revenue \(r.revenue) minor units")
            for h in r.holders { print("  \(h.owner)  \(h.units)") }
            for v in r.versions { print("  version \(v.hash.prefix(12)) (event \(v.event)) parent \(v.parent.map { String($0.prefix(12)) } ?? "-") merged \(v.submissions.map { String($0.prefix(12)) }.joined(separator: ", "))") }
        }
    }

    struct RoundCmd: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "round", abstract: "A round: its experts, claims and submissions.")
        @OptionGroup var market: MarketOption
        @Argument var id: String
        @Flag var json = false
        func run() async throws {
            let connection = try market.connect()
            guard let r = try await connection.round(id) else {
                let all = try await connection.rounds()
                throw CoreError("no round \"\(id)\" in \(market.market); " + (all.isEmpty ? "no round has been opened" : "rounds: \(all.joined(separator: ", "))"))
            }
            if json { print(try jsonString(r)); return }
            print("round \(r.id) (\(r.domain), \(r.state), closes \(r.closesAt)): experts \(r.experts)")
            for c in r.claims { print("  claim \(c.event): \(c.participant.prefix(16))… \(c.experts) until \(c.expiresAt)") }
            for s in r.submissions {
                print("  submission \(s.bundle.prefix(12)) by \(s.contributor.prefix(16))…: \(s.state)\(s.consensusGain.map { ", consensus gain \($0) µnats/token" } ?? "")")
                print("    \(s.outcome)")
            }
            for c in r.commitments {
                print("  commitment by \(c.validator.prefix(16))…: \(c.commitment.prefix(12))" + (c.revealedHeldOutSHA256.map { ", revealed held-out windows \($0.prefix(12))" } ?? ", not revealed"))
            }
        }
    }

    struct Payouts: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Every payout of every revenue event (or of one).")
        @OptionGroup var market: MarketOption
        @Option(help: "Only this revenue event.") var event: Int64?
        @Flag var json = false
        func run() async throws {
            let p = try await market.connect().payouts(event: event)
            if json { print(try jsonString(p)); return }
            for x in p { print("event \(x.event)  \(x.kind)  \(x.layer.map { "\($0):\(x.expert!)" } ?? "-")  \(x.recipient)  \(x.amount)") }
            print("total \(p.reduce(0) { $0 + $1.amount }) minor units")
        }
    }

    struct Events: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Events after a sequence number.")
        @OptionGroup var market: MarketOption
        @Option var since: Int64 = 0
        @Option var limit = 100
        @Option(help: "Wait up to this many seconds for the next event when there is none yet.") var wait = 0.0
        @Flag var json = false
        func validate() throws {
            guard since >= 0, (1...10_000).contains(limit), (0...60).contains(wait) else { throw ValidationError("--since ≥ 0, --limit in 1...10000, --wait in 0...60") }
        }
        func run() async throws {
            let events = try await market.connect().events(since: since, limit: limit, wait: wait)
            if json { print(try jsonString(events)); return }
            for e in events { print("\(e.seq)  \(e.kind)  by \(e.actor.prefix(16))…  \(e.payload)") }
        }
    }

    struct Verify: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Replay the chain and recompute every derived figure; report the first event where anything disagrees.")
        @OptionGroup var market: MarketOption
        @Flag var json = false
        func run() async throws {
            let r = try await market.connect().verify()
            if json { print(try jsonString(r)) } else if r.ok { print("ledger verifies: \(r.events) events") } else {
                print("ledger does NOT verify: first bad event \(r.firstBadEvent ?? 0): \(r.problem ?? "")")
            }
            if !r.ok { throw ExitCode(1) }
        }
    }
}

extension LedgerCommand {
    struct Copy: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Move a market directory's ledger to a PostgreSQL database (or back to its ledger.sqlite): copied in one transaction, verified, then named by the directory.")
        @OptionGroup var market: MarketOption
        @Option(help: "postgresql://USER@HOST:PORT/DB (an empty database), or sqlite.") var to: String
        func run() throws {
            let dir = try market.directory(for: "ledger copy")
            let total = try dir.open().store.read { try $0.head()?.seq ?? 0 }
            let bar = ProgressBar(label: "copying", total: Double(max(total, 1)), unit: " events")
            let m = try dir.moveLedger(to: to) { bar.update(Double($0)) }
            bar.finish()
            print("copied \(m.events) events from \(m.from) to \(m.to); verified; \(dir.path) now uses \(m.to)")
            if let kept = m.keptAs { print("the old ledger file is kept as \(kept)") }
        }
    }
}

struct LedgerBench: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "bench", abstract: "Append rate, query latency and verify time on a synthetic market.")
    @Option(help: "Events to append.") var events = 100_000
    @Option(help: "Actions per transaction.") var batch = 1_000
    @Option(help: "Also run it with the ledger in this (empty) PostgreSQL database, in the same run.") var database: String?
    @Flag var json = false
    func validate() throws {
        guard (1...100_000_000).contains(events) else { throw ValidationError("--events \(events) must be in 1...100000000") }
        guard (1...100_000).contains(batch) else { throw ValidationError("--batch \(batch) must be in 1...100000") }
    }
    func run() throws {
        var results = [try LedgerBenchmark.run(events: events, batch: batch)]
        if let database { results.append(try LedgerBenchmark.run(events: events, batch: batch, database: database)) }
        if json {
            print(database == nil ? try jsonString(results[0]) : try jsonString(results))
        } else {
            print(results.map(\.text).joined(separator: "\n"))
        }
    }
}

struct LedgerStress: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "stress", abstract: "Register COUNT fresh participants in batches (operator): a load and fault-injection helper.")
    @OptionGroup var market: MarketOption
    @OptionGroup var signer: SignerOption
    @Option var count = 1_000
    @Option var batch = 100
    func validate() throws {
        guard count >= 0 else { throw ValidationError("--count \(count) must not be negative") }
        guard (1...100_000).contains(batch) else { throw ValidationError("--batch \(batch) must be in 1...100000") }
    }
    func run() throws {
        let ledger = try market.directory(for: "ledger stress").open()
        let key = try signer.load()
        var done = 0
        while done < count {
            let n = min(batch, count - done)
            let actions = try (0..<n).map { i in
                try SignedAction(.register(.init(at: signer.time + Int64(done + i), key: ParticipantKey.generate().publicHex, roles: [.contributor], stake: 0)), key: key)
            }
            try ledger.append(actions)
            done += n
        }
        print("registered \(done)")
    }
}
