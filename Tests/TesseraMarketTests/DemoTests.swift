import Foundation
import Testing
@testable import TesseraEngine
@testable import TesseraLedger
@testable import TesseraLibrary
@testable import TesseraMarket
@testable import TesseraProof
import TesseraCore
import TesseraTestSupport

/// The whole demo round on a tiny model and synthetic fortune files: the copy is caught,
/// honest work is accepted and merged, shares are minted, payouts sum to the revenue and
/// the ledger verifies; the kept market answers queries.
@Suite struct DemoTests {
    @Test func aWholeRoundOnATinyModel() async throws {
        let tmp = TemporaryDirectory("demo")
        let dir = tmp.path
        let fm = FileManager.default
        let o = try TinyDemo.prepare(in: dir)
        // Bad inputs are refused before anything is written.
        var bad = o
        bad.steps = 0
        #expect(throws: CoreError.self) { try Demo(bad) { _ in } }
        bad = o
        bad.text = dir + "/nowhere"
        #expect { try Demo(bad) { _ in } } throws: { "\($0)".contains("nowhere") }
        bad = o
        bad.domain = "yy"
        #expect { try Demo(bad) { _ in } } throws: { "\($0)".contains("no domain \"yy\"") && "\($0)".contains("xx") }
        #expect(!fm.fileExists(atPath: dir + "/run"))

        let r = try await Demo.run(o) { _ in }
        #expect(r.domain == "xx" && r.round == "xx-1")
        #expect(r.verify.ok)
        #expect(r.payoutSumMinorUnits == r.revenueMinorUnits)
        #expect(r.submissions.count == 3)
        for v in r.submissions[2].verdicts { #expect(v.reason.hasPrefix("copy"), "\(v.reason)") }
        #expect(r.submissions[2].state == "rejected" && r.submissions[2].outcome.hasPrefix("rejected"))
        let reasons = r.submissions[0].verdicts.map { $0.reason }
        #expect(r.submissions[0].verdicts.allSatisfy { $0.accept }, "\(reasons)")
        #expect(r.submissions[0].state == "merged" && r.submissions[0].unitsEarned > 0)
        for s in r.submissions where s.state == "accepted" { #expect(s.outcome.contains("not merged"), "\(s.outcome)") }
        #expect(r.heldOutLossAfterNatsPerToken < r.heldOutLossBeforeNatsPerToken)
        #expect(!r.shares.isEmpty)
        for e in r.shares { #expect(e.holders.contains { $0.owner == "publisher" } && e.holders.contains { $0.owner == "contributor-1" }) }
        // Every figure's JSON key names its unit.
        let json = try JSONOutput.compact(r)
        #expect(json.contains("\"held_out_loss_before_nats_per_token\"") && json.contains("\"revenue_minor_units\"") && !json.contains("\"revenue\":"))
        // Verdicts carry the round's domain.
        let verdict = try Verdict.load(dir + "/run/verdicts/validator-1-contributor-1.json")
        #expect(verdict.domain == "xx" && verdict.round == "xx-1")
        // The kept market answers queries and verifies from disk.
        let ledger = try MarketDirectory(path: r.market).open()
        #expect(try Ledger.verify(store: ledger.store, policy: ledger.policy).ok)
        let paid = try ledger.payouts().reduce(Int64(0)) { $0 + $1.amount }
        #expect(paid == r.revenueMinorUnits)
        let state = try ledger.currentState()
        #expect(state.commitments["xx-1"]?.values.allSatisfy(\.revealed) == true)
        // A second demo into the same directory is refused rather than mixed in.
        await #expect(throws: LibraryError.self) { try await Demo.run(o) { _ in } }
    }
}
