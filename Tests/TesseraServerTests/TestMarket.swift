import AsyncHTTPClient
import Foundation
import Testing
import TesseraCore
import TesseraEngine
import TesseraLedger
import TesseraLibrary
import TesseraMarket
import TesseraTestSupport

/// A small market on disk for the server's tests: a two-layer model's library, the
/// repository's rules (bundles capped at 64 KiB), an operator, a publisher, two
/// contributors, two validators, a key nobody registered, and round "es-1" open on "es"
/// for an hour. Actions carry this machine's time, as a server expects.
final class TestMarket: @unchecked Sendable {
    static let names = ["operator", "publisher", "contributor-1", "contributor-2", "validator-1", "validator-2", "stranger"]
    static let bundleCap = 64 << 10
    let tmp: TemporaryDirectory
    let dir: String
    var keys: [String: ParticipantKey] = [:]
    let market: LocalMarket
    let round = "es-1"

    var now: Int64 { Int64(Date().timeIntervalSince1970) }

    /// `database`: the ledger in this PostgreSQL database instead of the directory's SQLite file.
    init(_ label: String = "server", database: String? = nil) throws {
        tmp = TemporaryDirectory(label)
        dir = tmp.sub("market")
        let fm = FileManager.default
        try fm.createDirectory(atPath: tmp.sub("policy/domains"), withIntermediateDirectories: true)
        var toml = try String(contentsOfFile: ReferenceFixtures.marketRules + "/market.toml", encoding: .utf8)
        toml = toml.replacingOccurrences(of: #"max_bytes = [0-9_]+"#, with: "max_bytes = \(Self.bundleCap)", options: .regularExpression)
        try toml.write(toFile: tmp.sub("policy/market.toml"), atomically: true, encoding: .utf8)
        try fm.copyItem(atPath: ReferenceFixtures.marketRules + "/domains/es.toml", toPath: tmp.sub("policy/domains/es.toml"))

        let config = ModelConfig(family: .qwen3MoE, vocabSize: 64, hiddenSize: 16, layers: 2, heads: 2, kvHeads: 1, headDim: 8,
                                 experts: 4, topK: 2, expertWidth: 16, normTopKProb: true, tieWordEmbeddings: true)
        let model = MoEModel(config: config)
        model.initializeRandomly(seed: 3, std: 0.1)
        try model.save(directory: tmp.sub("hf"), dtype: .bf16)
        _ = try ExpertLibrary.split(checkpoint: tmp.sub("hf"), into: tmp.sub("lib"))

        for n in Self.names { keys[n] = ParticipantKey.generate() }
        _ = try MarketDirectory.create(at: dir, policyFolder: tmp.sub("policy"), library: tmp.sub("lib"),
                                       operatorKey: keys["operator"]!, publisher: keys["publisher"]!.publicHex, at: Int64(Date().timeIntervalSince1970),
                                       database: database)
        market = try LocalMarket(directory: MarketDirectory(path: dir))
        let t = now
        var setup: [SignedAction] = []
        for c in ["contributor-1", "contributor-2"] {
            setup.append(try sign(.register(.init(at: t, key: keys[c]!.publicHex, roles: [.contributor], stake: 0)), by: "operator"))
        }
        for (v, stake) in [("validator-1", Int64(100)), ("validator-2", 60)] {
            setup.append(try sign(.register(.init(at: t, key: keys[v]!.publicHex, roles: [.validator], stake: stake)), by: "operator"))
        }
        let experts = market.library.manifest.experts.map { ExpertRef(layer: $0.layer, expert: $0.expert) }
        setup.append(try sign(.openRound(.init(at: t, round: round, domain: "es", experts: experts, closesAt: t + 3_600)), by: "operator"))
        for r in try market.postEach(setup) { _ = try r.get() }
    }

    func sign(_ action: LedgerAction, by name: String) throws -> SignedAction {
        try SignedAction(action, key: keys[name]!)
    }

    /// The canonical request body of a signed action.
    func body(_ action: LedgerAction, by name: String) throws -> [UInt8] {
        Array(try JSONOutput.compact(try ActionEnvelope(try sign(action, by: name))).utf8)
    }

    /// A bundle by `contributor` of lossless deltas to `experts` (each weight nudged by a
    /// seeded amount), written under the scratch directory; returns its directory.
    func makeBundle(_ contributor: String, experts: [ExpertID], seed: UInt64) throws -> String {
        let lib = market.library
        var rng = SplitMix64(seed: seed)
        var deltas: [String] = []
        for id in experts {
            var w = try lib.expertWeights(id).weights
            for t in w.tensors.indices {
                w.tensors[t].values = w.tensors[t].values.map { $0 + Float(Int(rng.next() % 2001) - 1000) * 1e-5 }
            }
            let path = tmp.sub("deltas-\(contributor)-\(seed)-\(id.layer)-\(id.expert).safetensors")
            _ = try lib.encodeDelta(id, new: w, options: DeltaOptions(encoding: .lossless), to: path)
            deltas.append(path)
        }
        let out = tmp.sub("bundle-\(contributor)-\(seed)")
        _ = try SubmissionBundle.create(key: keys[contributor]!, market: try market.marketID(), domain: "es", round: round, deltas: deltas,
                                        training: .object([("steps", .number(1))]), library: lib, into: out)
        return out
    }

    /// Claims `experts` for `contributor` and submits the bundle's hash, as the contributor
    /// would in the window; returns the submission hash.
    func claimAndSubmit(_ contributor: String, bundle: String, experts: [ExpertID]) throws -> String {
        let refs = experts.map { ExpertRef(layer: $0.layer, expert: $0.expert) }
        _ = try market.postEach([try sign(.claim(.init(at: now, round: round, experts: refs, expiresAt: now + 86_400)), by: contributor)])[0].get()
        _ = try market.postEach([try sign(try SubmissionBundle.submitAction(bundle, market: try market.marketID(), domain: "es", round: round, at: now), by: contributor)])[0].get()
        return try SubmissionBundle.submissionRecord(bundle).hash
    }

    func closeRound() throws {
        _ = try market.postEach([try sign(.closeRound(.init(at: now, round: round)), by: "operator")])[0].get()
    }

    /// Names of what is stored under bundles/ (finished bundles and any staging).
    var storedBundles: [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: market.bundlesPath)) ?? []).sorted()
    }
}

/// Whether the tessera executable the process tests start is built; records an issue when not.
func tesseraIsBuilt() -> Bool {
    guard FileManager.default.isExecutableFile(atPath: ReferenceFixtures.binary) else {
        Issue.record("tessera binary not found at \(ReferenceFixtures.binary); build it first (swift build) or set TESSERA_BIN")
        return false
    }
    return true
}

/// Runs `body` with an HTTP client of its own, shut down however the body ends.
func withHTTPClient<T: Sendable>(_ body: (HTTPClient) async throws -> T) async throws -> T {
    let http = HTTPClient(eventLoopGroupProvider: .singleton)
    do {
        let r = try await body(http)
        try await http.shutdown()
        return r
    } catch {
        try? await http.shutdown()
        throw error
    }
}
