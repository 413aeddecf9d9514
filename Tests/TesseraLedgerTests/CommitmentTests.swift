import Foundation
import Testing
@testable import TesseraEngine
@testable import TesseraLibrary
@testable import TesseraLedger
import TesseraCore
import TesseraTestSupport

/// Held-out commitments: made while the round is open, revealed after it closes, and the
/// reveal must match; merge credits are bounded by the validators' consensus.
@Suite struct CommitmentTests {
    func expectRefused(_ fragment: String, sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> Void) {
        do {
            try body()
            Issue.record("expected a refusal mentioning \(fragment)", sourceLocation: sourceLocation)
        } catch let e as LedgerError {
            #expect("\(e)".contains(fragment), "\(e)", sourceLocation: sourceLocation)
        } catch {
            Issue.record("unexpected error \(error)", sourceLocation: sourceLocation)
        }
    }

    @Test(arguments: StoreKind.tested) func commitRevealRoundTrip(_ store: StoreKind) throws {
        let m = try MarketFixture(store: store)
        let v = m.validators[0], other = m.validators[1]
        let salt = Array(repeating: UInt8(9), count: 32)
        let held = fakeHash("held-out windows")
        let c = HeldOutCommitment.commitment(heldOutSHA256: held, salt: salt)
        func commit(_ k: ParticipantKey, _ value: String, round: String = "r1") throws {
            _ = try m.ledger.append(try SignedAction(.commit(.init(at: m.tick(), round: round, commitment: value)), key: k))
        }
        func reveal(_ k: ParticipantKey, salt: [UInt8], held: String) throws {
            _ = try m.ledger.append(try SignedAction(.reveal(.init(at: m.tick(), round: "r1", salt: Hex.encode(salt), heldOutSHA256: held)), key: k))
        }
        expectRefused("not a validator") { try commit(m.contributors[0], c) }
        expectRefused("not open") { try commit(v, c, round: "r9") }
        try commit(v, c)
        expectRefused("already committed") { try commit(v, c) }
        expectRefused("still open") { try reveal(v, salt: salt, held: held) }
        _ = try m.ledger.append(try SignedAction(.closeRound(.init(at: m.tick(), round: "r1")), key: m.op))
        expectRefused("do not match") { try reveal(v, salt: salt, held: fakeHash("other windows")) }
        expectRefused("do not match") { try reveal(v, salt: Array(repeating: 1, count: 32), held: held) }
        expectRefused("no commitment") { try reveal(other, salt: salt, held: held) }
        try reveal(v, salt: salt, held: held)
        expectRefused("already revealed") { try reveal(v, salt: salt, held: held) }
        #expect(try m.ledger.currentState().commitments["r1"]?[v.publicHex]?.revealed == true)
        let report = try #require(try m.ledger.round("r1"))
        #expect(report.commitments.count == 1 && report.commitments[0].revealedHeldOutSHA256 == held && report.commitments[0].commitment == c)
        #expect(try m.verify().ok)
    }

    @Test(arguments: StoreKind.tested) func creditsSplitMintingAndAreBoundedByConsensus(_ store: StoreKind) throws {
        let m = try MarketFixture(store: store)
        let (a, b) = (m.contributors[0], m.contributors[1])
        let e = m.experts[0]
        try m.claim(a, [e]); try m.claim(b, [e])
        try m.submit(a, [e], bundle: "A"); try m.submit(b, [e], bundle: "B")
        for v in m.validators { try m.verdict(v, bundle: "A", gain: 3_000, accept: true); try m.verdict(v, bundle: "B", gain: 1_000, accept: true) }
        func merge(_ credits: [Int64]) throws {
            _ = try m.ledger.append(try SignedAction(.newVersion(.init(at: m.tick(), layer: e.layer, expert: e.expert, version: fakeHash("v2"),
                                                                       parent: try m.current(e), submissions: [fakeHash("A"), fakeHash("B")],
                                                                       credits: credits)), key: m.op))
        }
        expectRefused("outside") { try merge([3_001, 0]) }
        expectRefused("credits for") { try merge([1]) }
        try merge([500, 1_000])
        // Minting by credit: 1e6 · 1500 / 1e4 = 150,000 units, split 500:1000.
        let holders = Dictionary(uniqueKeysWithValues: try #require(try m.ledger.expert(e)).holders.map { ($0.owner, $0.units) })
        #expect(holders[a.publicHex] == 50_000 && holders[b.publicHex] == 100_000)
        #expect(try m.verify().ok)
    }
}
