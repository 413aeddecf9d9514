import AsyncHTTPClient
import Foundation
import Testing
import TesseraClient
import TesseraCore
import TesseraLedger
import TesseraLibrary
import TesseraMarket
import TesseraTestSupport

/// `tessera serve` killed with SIGKILL in the middle of a round, at named crash points
/// (half-way through storing an upload; after a verdict's transaction committed but before
/// the client heard of it), and started again on the same directory and port: the clients'
/// retries finish their work, nothing is lost, nothing is recorded twice, and the chain
/// verifies.
@Suite(.serialized) struct ServerKillTests {
    @Test func aServerKilledMidRoundLosesAndDuplicatesNothing() async throws {
        guard tesseraIsBuilt() else { return }
        try await withHTTPClient { try await Self.play($0) }
    }

    static func play(_ http: HTTPClient) async throws {
        let m = try TestMarket("server-kill")
        let ids = [ExpertID(layer: 0, expert: 0), ExpertID(layer: 1, expert: 1)]
        let bundle = try m.makeBundle("contributor-1", experts: ids, seed: 4)
        let hash = try m.claimAndSubmit("contributor-1", bundle: bundle, experts: ids)
        try m.closeRound()
        let binary = ReferenceFixtures.binary

        // 1. Killed while storing the upload (its deltas copied, not yet in place).
        var server = try await ServerProcess.start(binary: binary, market: m.dir, logPath: m.tmp.sub("server-1.log"),
                                       environment: ["TESSERA_CRASH_AT": "market.bundle.staged#1"])
        let port = server.port
        let remote = try RemoteMarket(url: server.url, client: http)
        remote.retryFor = 120
        let upload = Task { try await remote.uploadBundle(bundle) }
        #expect(await server.waitForLog("crashpoint market.bundle.staged", timeout: 120), "the server never reached the crash point")
        await server.kill9()
        #expect(m.storedBundles.count == 1 && m.storedBundles[0].hasPrefix(hash + ".incoming-"), "\(m.storedBundles)")

        // 2. Started again; the client's retry lands. Then killed after a verdict commits.
        server = try await ServerProcess.start(binary: binary, market: m.dir, port: port, logPath: m.tmp.sub("server-2.log"),
                                   environment: ["TESSERA_CRASH_AT": "ledger.committed#1"])
        #expect(try await upload.value == hash)
        #expect(m.storedBundles == [hash], "the dead server's half-stored copy is gone: \(m.storedBundles)")
        let verdict = try m.sign(.verdict(.init(at: m.now, submission: hash, gainLCBMicronats: 1_200, regressionUCBMicronats: 10,
                                                accept: true, reason: "gain")), by: "validator-1")
        let post = Task { try await remote.post(verdict) }
        #expect(await server.waitForLog("crashpoint ledger.committed", timeout: 120), "the server never committed the verdict")
        await server.kill9()

        // 3. Started again: the retried verdict is the one already recorded.
        server = try await ServerProcess.start(binary: binary, market: m.dir, port: port, logPath: m.tmp.sub("server-3.log"))
        let outcome = try await post.value
        #expect(!outcome.isAppended, "the retry finds the verdict that committed before the kill")
        let second = try m.sign(.verdict(.init(at: m.now, submission: hash, gainLCBMicronats: 900, regressionUCBMicronats: 20,
                                               accept: true, reason: "gain")), by: "validator-2")
        #expect(try await remote.post(second).isAppended)

        let events = try await remote.events(since: 0, limit: 1_000, wait: 0)
        #expect(events.filter { $0.kind == "verdict" }.count == 2)
        #expect(Set(events.map(\.hash)).count == events.count)
        #expect(try await remote.verify().ok)
        #expect(try await remote.round(m.round)?.submissions.first?.state == "accepted")
        let stored = try SubmissionBundle.verify(m.market.bundlePath(hash), library: m.market.library)
        #expect(stored.items.map(\.expert) == ids)
        await server.stop()
    }
}

extension Ledger.Outcome {
    var isAppended: Bool { if case .appended = self { return true } else { return false } }
}
