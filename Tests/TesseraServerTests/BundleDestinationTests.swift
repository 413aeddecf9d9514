import Foundation
import Testing
import TesseraCore
import TesseraLedger
import TesseraLibrary
import TesseraMarket
import TesseraTestSupport

/// A bundle is signed for a market (its genesis hash), a domain and a round; submitted or
/// uploaded anywhere else it is refused, so a contributor's signature cannot be replayed.
@Suite struct BundleDestinationTests {
    @Test func bundlesSignedForAnotherMarketDomainOrRoundAreRefused() throws {
        let m = try TestMarket("destination")
        let id = try m.market.marketID()
        let ids = [ExpertID(layer: 0, expert: 0)]
        let good = try m.makeBundle("contributor-1", experts: ids, seed: 3)
        let deltas = try FileManager.default.contentsOfDirectory(atPath: good + "/deltas").map { good + "/deltas/" + $0 }
        _ = try m.market.postEach([try m.sign(.claim(.init(at: m.now, round: m.round, experts: ids.map { ExpertRef(layer: $0.layer, expert: $0.expert) },
                                                          expiresAt: m.now + 3_600)), by: "contributor-1")])[0].get()
        var elsewhere: [(dir: String, what: String)] = []
        for (market, domain, round, what) in [("another-market", "es", m.round, "market"), (id, "de", m.round, "domain"), (id, "es", "es-2", "round")] {
            let dir = m.tmp.sub("bundle-for-another-\(what)")
            _ = try SubmissionBundle.create(key: m.keys["contributor-1"]!, market: market, domain: domain, round: round, deltas: deltas,
                                            training: .object([]), library: m.market.library, into: dir)
            #expect { try SubmissionBundle.submitAction(dir, market: id, domain: "es", round: m.round, at: m.now) } throws: {
                "\($0)".contains("signed for \(what)")
            }
            // An older client records its hash anyway; the bundle itself is refused at upload.
            let (hash, sig) = try SubmissionBundle.submissionRecord(dir)
            let bundle = try SubmissionBundle.verify(dir, library: m.market.library)
            _ = try m.market.postEach([try m.sign(.submit(.init(at: m.now, round: m.round, bundle: hash, bundleSignature: sig,
                                                                experts: bundle.items.map { ExpertRef(layer: $0.expert.layer, expert: $0.expert.expert, version: $0.base) })),
                                                  by: "contributor-1")])[0].get()
            elsewhere.append((dir, what))
        }
        try m.closeRound()
        for (dir, what) in elsewhere {
            #expect { try m.market.acceptBundle(directory: dir) } throws: { "\($0)".contains("signed for \(what)") }
        }
        #expect(m.storedBundles.isEmpty)
    }
}

/// The rules are bound to the chain: genesis records the policy file's SHA-256, and a
/// market whose policy file was edited afterwards refuses every append and fails verify,
/// naming the file, until the file is restored.
@Suite struct PolicyBindingTests {
    @Test func anEditedPolicyStopsAppendsAndFailsVerify() async throws {
        let m = try TestMarket("policy-edit")
        let path = MarketDirectory(path: m.dir).policyPath
        let original = try String(contentsOfFile: path, encoding: .utf8)
        let edited = original.replacingOccurrences(of: #"validator_bps = [0-9_]+"#, with: "validator_bps = 9000", options: .regularExpression)
        #expect(edited != original)
        try edited.write(toFile: path, atomically: true, encoding: .utf8)
        let market = try LocalMarket(directory: MarketDirectory(path: m.dir))
        let before = try market.ledger.events(since: 0, limit: 1_000).count
        let action = try m.sign(.register(.init(at: m.now, key: ParticipantKey.generate().publicHex, roles: [.owner], stake: 0)), by: "operator")
        await #expect { try await market.post(action) } throws: { "\($0)".contains("market.toml") && "\($0)".contains("genesis recorded") }
        let report = try await market.verify()
        #expect(!report.ok && report.firstBadEvent == 1 && (report.problem ?? "").contains("edited"))
        #expect(try market.ledger.events(since: 0, limit: 1_000).count == before)
        try original.write(toFile: path, atomically: true, encoding: .utf8)
        let restored = try LocalMarket(directory: MarketDirectory(path: m.dir))
        #expect(try await restored.post(action).seq == Int64(before + 1))
        #expect(try await restored.verify().ok)
    }
}
