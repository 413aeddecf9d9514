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
