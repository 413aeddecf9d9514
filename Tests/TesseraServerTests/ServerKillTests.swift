import AsyncHTTPClient
import NIOCore
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

/// A completion's meter record is on disk before its response leaves: a server killed right
/// after metering (the client never hears back) has billed the request, once, with a receipt
/// that verifies; the server started again meters the next request beside it.
@Suite(.serialized) struct MeterKillTests {
    @Test func aServerKilledAfterMeteringKeepsTheRecord() async throws {
        guard tesseraIsBuilt() else { return }
        let m = try TestMarket("meter-kill")
        let secretFile = m.tmp.sub("api-key")
        _ = try APIKeys.issue(market: m.dir, domain: "es", pricePer1kTokens: 1000, at: m.now, out: secretFile)
        let secret = try String(contentsOfFile: secretFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        try await withHTTPClient { http in
            func complete(_ url: String) async throws -> Int {
                var request = HTTPClientRequest(url: url + "/v1/completions")
                request.method = .POST
                request.headers.add(name: "Authorization", value: "Bearer \(secret)")
                request.body = .bytes(ByteBuffer(string: #"{"prompt":"0123","max_tokens":6,"temperature":0}"#))
                return Int(try await http.execute(request, timeout: .seconds(60)).status.code)
            }
            var server = try await ServerProcess.start(binary: ReferenceFixtures.binary, market: m.dir, logPath: m.tmp.sub("serve-1.log"),
                                                       arguments: ["--serve-model"], environment: ["TESSERA_CRASH_AT": "serving.metered#1"])
            let port = server.port, url = server.url
            let pending = Task { try await complete(url) }
            #expect(await server.waitForLog("crashpoint serving.metered", timeout: 120), "the server never metered the request")
            await server.kill9()
            _ = try? await pending.value
            let records = try UsageMeter.records(market: m.dir)
            #expect(records.count == 1)
            #expect(records.first?.receipt.signatureVerifies == true)
            #expect(records.first?.completionTokens == 6)
            server = try await ServerProcess.start(binary: ReferenceFixtures.binary, market: m.dir, port: port, logPath: m.tmp.sub("serve-2.log"),
                                                   arguments: ["--serve-model"])
            #expect(try await complete(server.url) == 200)
            let after = try UsageMeter.records(market: m.dir)
            #expect(after.count == 2)
            #expect(after.first == records.first)
            #expect(after.last?.receipt.serverKey == records.first?.receipt.serverKey, "the server's key survives the restart")
            await server.stop()
        }
    }
}

extension Ledger.Outcome {
    var isAppended: Bool { if case .appended = self { return true } else { return false } }
}
