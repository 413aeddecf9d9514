import Foundation
import GRDB
import Testing
@testable import TesseraLedger
import TesseraCore
import TesseraTestSupport

@Suite struct LedgerFlowTests {
    @Test(arguments: StoreKind.tested) func aRoundFromClaimToPayouts(_ store: StoreKind) throws {
        let m = try MarketFixture(store: store)
        let (a, b) = (m.contributors[0], m.contributors[1])
        let e = m.experts[1]
        try m.twoSubmissions(a, b, on: e)
        for (v, gain) in zip(m.validators, [3_000, 2_000, 2_500] as [Int64]) { try m.verdict(v, bundle: "A", gain: gain, accept: true) }
        for (v, gain) in zip(m.validators, [1_000, 999_999, 1_200] as [Int64]) { try m.verdict(v, bundle: "B", gain: gain, accept: true) }
        let s = try m.ledger.currentState()
        // Stakes 100, 150, 120: the weighted lower median is the first figure (ascending) at
        // which half of the 370 stake is reached.
        #expect(s.submissions[fakeHash("A")]?.consensusGain == 2_500)
        #expect(s.submissions[fakeHash("B")]?.consensusGain == 1_200, "one validator's extreme figure does not move the median")
        #expect(s.submissions[fakeHash("A")]?.state == .accepted)
        try m.merge(e, bundles: ["A", "B"], version: "v2")
        // Minting: U·G/G₂ = 1e6·3700/1e4 = 370,000, under the 50% cap; split 2500:1200 by gain.
        let report = try #require(try m.ledger.expert(e))
        #expect(report.totalUnits == 1_370_000)
        #expect(Set(report.holders.map { "\($0.owner.prefix(8)):\($0.units)" }) == [
            "\(m.publisher.publicHex.prefix(8)):1000000", "\(a.publicHex.prefix(8)):250000", "\(b.publicHex.prefix(8)):120000"])
        #expect(report.versions.map(\.hash) == [fakeHash("base\(e)"), fakeHash("v2")])
        // Revenue: 7% fees, the rest by usage then by units, summing exactly.
        try m.revenue(1_000_003, period: "2026-11", usage: [(m.experts[0], 1), (e, 2)])
        let payouts = try m.ledger.payouts()
        #expect(payouts.reduce(0) { $0 + $1.amount } == 1_000_003)
        let fees = payouts.filter { $0.kind != "owner" }.reduce(0) { $0 + $1.amount }
        #expect(fees == 1_000_003 * 500 / 10_000 + 1_000_003 * 200 / 10_000)
        let shares = try m.ledger.shares(owner: a.publicHex)
        #expect(shares.holdings.count == 1 && shares.holdings[0].units == 250_000)
        #expect(shares.holdings[0].payouts > 0 && abs(shares.holdings[0].fraction - 250_000.0 / 1_370_000) < 1e-12)
        let v = try m.verify()
        #expect(v.ok, "\(v.problem ?? "")")
        #expect(try m.ledger.round("r1")?.submissions.count == 2)
    }

    @Test(arguments: StoreKind.tested) func roundReportSaysWhyAnAcceptedUpdateEarnedNothing(_ store: StoreKind) throws {
        let m = try MarketFixture(store: store)
        let (a, b) = (m.contributors[0], m.contributors[1])
        let e = m.experts[1]
        try m.twoSubmissions(a, b, on: e)
        for v in m.validators { try m.verdict(v, bundle: "A", gain: 900, accept: true) }
        var r = try #require(try m.ledger.round("r1"))
        #expect(r.submissions.first { $0.bundle == fakeHash("B") }?.outcome == "pending: 0 of 3 verdicts")
        for v in m.validators { try m.verdict(v, bundle: "B", gain: 700, accept: true) }
        r = try #require(try m.ledger.round("r1"))
        #expect(r.submissions.allSatisfy { $0.outcome.hasPrefix("accepted, not merged yet") })
        // The operator's merge keeps A alone.
        try m.merge(e, bundles: ["A"], version: "v2")
        r = try #require(try m.ledger.round("r1"))
        let byBundle = Dictionary(uniqueKeysWithValues: r.submissions.map { ($0.bundle, $0) })
        #expect(byBundle[fakeHash("A")]?.state == "merged")
        #expect(byBundle[fakeHash("B")]?.state == "accepted")
        #expect(byBundle[fakeHash("B")]?.outcome.contains("not merged: expert \(e) moved on") == true)
        #expect(try JSONOutput.compact(r).contains("\"outcome\""))
        #expect(try m.ledger.rounds() == ["r1"])
        #expect(try m.ledger.round("1") == nil)
    }

    @Test(arguments: StoreKind.tested) func refusalsChangeNothing(_ store: StoreKind) throws {
        let m = try MarketFixture(store: store)
        let (a, b, c) = (m.contributors[0], m.contributors[1], m.contributors[2])
        let e = m.experts[0]
        try m.claim(a, [e])
        try m.claim(b, [e])
        try m.submit(a, [e], bundle: "A")
        let before = try m.eventCount()
        let stranger = ParticipantKey.generate()
        func refused(_ fragment: String, sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> Void) {
            #expect(sourceLocation: sourceLocation) { try body() } throws: { "\($0)".contains(fragment) }
        }
        refused("not registered") { try m.claim(stranger, [e]) }
        // Keys with another spelling, or that no signature can verify under, are not identities.
        let smallOrder = "01" + String(repeating: "0", count: 62)           // the identity point
        let nonCanonical = "ed" + String(repeating: "ff", count: 30) + "7f" // y = 2^255 - 19, not below p
        for key in [m.validators[0].publicHex.uppercased(), smallOrder, nonCanonical, String(repeating: "0", count: 64)] {
            refused("not a usable Ed25519 public key") {
                try m.ledger.append(try SignedAction(.register(.init(at: m.tick(), key: key, roles: [.validator], stake: 10)), key: m.op))
            }
        }
        refused("cap") { try m.claim(c, [e]) }
        refused("not open") { try m.claim(c, [m.experts[1]], round: "r9") }
        refused("not claimed") { try m.submit(c, [m.experts[2]], bundle: "C") }
        refused("not a validator") { try m.verdict(b, bundle: "A", gain: 1, accept: true) }
        refused("unknown submission") { try m.verdict(m.validators[0], bundle: "nope", gain: 1, accept: true) }
        refused("must be positive") { try m.revenue(0, period: "p", usage: [(e, 1)]) }
        refused("unknown domain") { try m.revenue(10, period: "p", usage: [(e, 1)], domain: "xx") }
        refused("market operator") {
            try m.ledger.append(try SignedAction(.openDomain(.init(at: m.tick(), name: "de")), key: a))
        }
        // A bad signature: a valid action with someone else's signature.
        let action = LedgerAction.claim(.init(at: m.tick(), round: "r1", experts: [m.ref(m.experts[3])], expiresAt: 50_000))
        let forged = try SignedAction(action: action, actor: c.publicHex, signature: try SignedAction(action, key: a).signature)
        refused("bad signature") { try m.ledger.append(forged) }
        // Judging one's own submission: register a contributor who is also a validator.
        try m.ledger.append(try SignedAction(.register(.init(at: m.tick(), key: a.publicHex, roles: [.validator], stake: 10)), key: m.op))
        let afterRegister = try m.eventCount()
        refused("own submission") { try m.verdict(a, bundle: "A", gain: 1, accept: true) }
        try m.verdict(m.validators[0], bundle: "A", gain: 5, accept: true)
        refused("already judged") { try m.verdict(m.validators[0], bundle: "A", gain: 6, accept: true) }
        // Nothing refused was recorded: one registration and one verdict since `before`.
        #expect(try m.eventCount() == afterRegister + 1)
        #expect(afterRegister == before + 1)
        // Stale base: another version of the expert lands between b's claim and its
        // submission, which names the version b trained on.
        let oldBase = try m.current(e)
        for v in m.validators.dropFirst() { try m.verdict(v, bundle: "A", gain: 600, accept: true) }
        try m.merge(e, bundles: ["A"], version: "v2")
        #expect(try m.current(e) != oldBase)
        let count = try m.eventCount()
        refused("stale") {
            try m.ledger.append(try SignedAction(.submit(.init(at: m.tick(), round: "r1", bundle: fakeHash("B"), bundleSignature: "00",
                                                               experts: [m.ref(e, oldBase)])), key: b))
        }
        #expect(try m.eventCount() == count)
        let v = try m.verify()
        #expect(v.ok, "\(v.problem ?? "")")
    }

    /// Figures at the top of Int64 (stakes, gains, usage, amounts) are refused by name, and
    /// a refused action changes nothing: the same period and submission go through after.
    @Test(arguments: StoreKind.tested) func overflowingFiguresAreRefusedAndChangeNothing(_ store: StoreKind) throws {
        let m = try MarketFixture(store: store)
        let (a, b) = (m.contributors[0], m.contributors[1])
        let e = m.experts[0]
        try m.twoSubmissions(a, b, on: e)
        // Two validators whose stakes sum past Int64.max.
        for v in m.validators.prefix(2) {
            try m.ledger.append(try SignedAction(.register(.init(at: m.tick(), key: v.publicHex, roles: [.validator], stake: Int64.max)), key: m.op))
        }
        try m.verdict(m.validators[0], bundle: "A", gain: 900, accept: true)
        try m.verdict(m.validators[1], bundle: "A", gain: 900, accept: true)
        let before = try m.ledger.currentState()
        #expect { try m.verdict(m.validators[2], bundle: "A", gain: 900, accept: true) } throws: { "\($0)".contains("would pass") }
        #expect(try m.ledger.currentState().submissions[fakeHash("A")] == before.submissions[fakeHash("A")])
        // Stakes back to sane values: the same verdict is taken.
        for v in m.validators.prefix(2) {
            try m.ledger.append(try SignedAction(.register(.init(at: m.tick(), key: v.publicHex, roles: [.validator], stake: 100)), key: m.op))
        }
        try m.verdict(m.validators[2], bundle: "A", gain: 900, accept: true)
        #expect(try m.ledger.currentState().submissions[fakeHash("A")]?.state == .accepted)
        try m.merge(e, bundles: ["A"], version: "v2")
        // Usage that sums past Int64.max over one expert: refused, and the period stays free.
        let payoutsBefore = try m.ledger.payouts()
        #expect { try m.revenue(1_000, period: "p1", usage: [(e, Int64.max), (e, 1)]) } throws: { "\($0)".contains("usage of expert") }
        #expect(try m.ledger.payouts() == payoutsBefore)
        // The largest amount there is: fees are computed in 128 bits, payouts still sum exactly.
        try m.revenue(Int64.max, period: "p1", usage: [(e, 3), (m.experts[1], 5)])
        let paid = try m.ledger.payouts().filter { $0.event == (try m.eventCount()) }
        #expect(paid.reduce(Int64(0)) { $0 &+ $1.amount } == Int64.max)
        // A second payout to the same owners would overflow their totals: refused whole.
        #expect { try m.revenue(Int64.max, period: "p2", usage: [(e, 1)]) } throws: { "\($0)".contains("would pass") }
        let v = try m.verify()
        #expect(v.ok, "\(v.problem ?? "")")
    }

    @Test(arguments: StoreKind.tested) func staleBaseAndPartialBatchesAreRefusedWhole(_ store: StoreKind) throws {
        let m = try MarketFixture(store: store)
        let (a, b) = (m.contributors[0], m.contributors[1])
        let e = m.experts[2]
        try m.claim(a, [e])
        try m.claim(b, [e])
        try m.submit(a, [e], bundle: "A")
        let staleBase = try m.current(e)
        for v in m.validators { try m.verdict(v, bundle: "A", gain: 600, accept: true) }
        try m.merge(e, bundles: ["A"], version: "v2")
        let stale = try SignedAction(.submit(.init(at: m.tick(), round: "r1", bundle: fakeHash("B"), bundleSignature: "00",
                                                   experts: [m.ref(e, staleBase)])), key: b)
        #expect { try m.ledger.append(stale) } throws: { "\($0)".contains("stale") }
        // A batch with one refused action records none of it.
        let count = try m.eventCount()
        let good = try SignedAction(.claim(.init(at: m.tick(), round: "r1", experts: [m.ref(m.experts[3])], expiresAt: 60_000)), key: b)
        #expect(throws: LedgerError.self) { try m.ledger.append([good, stale]) }
        #expect(try m.eventCount() == count)
        // ...and the ledger's state in memory forgets the part it had applied.
        let after = try m.ledger.currentState()
        #expect(after.seq == count)
        #expect(after.claims[m.experts[3]]?.contains { $0.participant == b.publicHex } != true)
        #expect(try m.ledger.append(good) == .appended(seq: count + 1))
        #expect(try m.verify().ok)
    }

    @Test(arguments: StoreKind.tested) func resendingAnActionRecordsItOnce(_ store: StoreKind) throws {
        let m = try MarketFixture(store: store)
        let a = m.contributors[0]
        let action = try SignedAction(.claim(.init(at: m.tick(), round: "r1", experts: [m.ref(m.experts[0])], expiresAt: 50_000)), key: a)
        let first = try m.ledger.append(action)
        let again = try m.ledger.append(action)
        #expect(again == .duplicate(seq: first.seq))
        // Even through another handle on the same database (another process, say).
        let other = try m.reopen()
        #expect(try other.append(action) == .duplicate(seq: first.seq))
        let submit = try SignedAction(.submit(.init(at: m.tick(), round: "r1", bundle: fakeHash("A"), bundleSignature: "00",
                                                    experts: [m.ref(m.experts[0], try m.current(m.experts[0]))])), key: a)
        let seq = try m.ledger.append(submit).seq
        #expect(try m.ledger.append(submit) == .duplicate(seq: seq))
        #expect(try m.eventCount() == seq)
    }

    @Test(arguments: StoreKind.tested) func verifyFindsTheFirstTamperedEvent(_ store: StoreKind) throws {
        let m = try MarketFixture(store: store)
        try m.claim(m.contributors[0], [m.experts[0]])
        try m.submit(m.contributors[0], [m.experts[0]], bundle: "A")
        try m.verdict(m.validators[0], bundle: "A", gain: 900, accept: true)
        try m.verdict(m.validators[1], bundle: "A", gain: 800, accept: true)
        try m.verdict(m.validators[2], bundle: "A", gain: 850, accept: true)
        try m.merge(m.experts[0], bundles: ["A"], version: "v2")
        try m.revenue(5_000, period: "p1", usage: [(m.experts[0], 3)])
        #expect(try m.verify().ok)
        // Edits behind the ledger's back, through a connection of its own.
        func sql(_ s: String) throws {
            let changed = try m.db.tamper(s)
            #expect(changed > 0, "the edit \(s) changed nothing")
        }
        // A balance edited behind the ledger's back.
        let holdingsSeq = try m.ledger.store.read { try $0.rows(.holdings, matching: [("owner", .text(m.contributors[0].publicHex))]) }[0].seq
        try sql("UPDATE holdings SET units = units + 1 WHERE owner = '\(m.contributors[0].publicHex)'")
        var v = try Ledger.verify(store: m.ledger.store, policy: testPolicy)
        #expect(!v.ok && v.firstBadEvent == holdingsSeq && (v.problem ?? "").contains("holdings"), "\(v)")
        try sql("UPDATE holdings SET units = units - 1 WHERE owner = '\(m.contributors[0].publicHex)'")
        #expect(try Ledger.verify(store: m.ledger.store, policy: testPolicy).ok)
        // A payout (a row written once, checked page by page) edited, then deleted.
        let revenueSeq = try m.ledger.events(since: 0).last { $0.kind == "revenue" }!.seq
        try sql("UPDATE payouts SET amount = amount + 1 WHERE kind = 'operator_fee'")
        v = try Ledger.verify(store: m.ledger.store, policy: testPolicy)
        #expect(!v.ok && v.firstBadEvent == revenueSeq && (v.problem ?? "").contains("payouts"), "\(v)")
        try sql("DELETE FROM payouts WHERE kind = 'operator_fee'")
        v = try Ledger.verify(store: m.ledger.store, policy: testPolicy)
        #expect(!v.ok && v.firstBadEvent == revenueSeq && (v.problem ?? "").contains("not stored"), "\(v)")
        try sql("INSERT INTO payouts (event, recipient, kind, layer, expert, amount, seq) VALUES (\(revenueSeq), '\(m.op.publicHex)', 'operator_fee', -1, -1, \(5_000 * testPolicy.operatorFeeBps / 10_000), \(revenueSeq))")
        #expect(try Ledger.verify(store: m.ledger.store, policy: testPolicy).ok)
        // A payload edited: the hash no longer matches (and the signature fails).
        try sql("UPDATE events SET payload = replace(payload, '\"gain_lcb_micronats\":900', '\"gain_lcb_micronats\":901') WHERE kind = 'verdict'")
        v = try Ledger.verify(store: m.ledger.store, policy: testPolicy)
        let verdictSeq = try m.ledger.events(since: 0).first { $0.kind == "verdict" }!.seq
        #expect(!v.ok && v.firstBadEvent == verdictSeq, "\(v)")
        // An event removed: the chain breaks there.
        try sql("UPDATE events SET payload = replace(payload, '\"gain_lcb_micronats\":901', '\"gain_lcb_micronats\":900') WHERE kind = 'verdict'")
        try sql("DELETE FROM events WHERE seq = 5")
        v = try Ledger.verify(store: m.ledger.store, policy: testPolicy)
        #expect(!v.ok && v.firstBadEvent == 5, "\(v)")
    }

    /// A column of the wrong type (a database edited by hand) is reported by name, never
    /// converted: a REAL time once became an integer, a REAL balance was truncated.
    @Test func aColumnOfTheWrongTypeIsCorruptNotConverted() throws {
        for (edit, column, what) in [("UPDATE events SET at = 1.5e300 WHERE seq = 3", "at", "a real number"),
                                     ("UPDATE events SET hash = x'00' WHERE seq = 3", "hash", "a blob"),
                                     ("UPDATE holdings SET units = units + 0.5", "units", "a real number")] {
            let m = try MarketFixture(store: .sqlite)
            try m.claim(m.contributors[0], [m.experts[0]])
            try m.submit(m.contributors[0], [m.experts[0]], bundle: "A")
            for v in m.validators { try m.verdict(v, bundle: "A", gain: 900, accept: true) }
            try m.merge(m.experts[0], bundles: ["A"], version: "v2")
            #expect(try m.db.tamper(edit) > 0)
            let report = try? m.verify()
            #expect(report?.ok != true, "\(edit): \(String(describing: report))")
            if column != "units" {
                #expect { _ = try m.ledger.events(since: 0) } throws: { "\($0)".contains("column \(column) holds \(what)") }
            } else {
                #expect { _ = try m.ledger.store.read { try $0.rows(.holdings, seqFrom: 0, through: .max) } } throws: {
                    "\($0)".contains("column \(column) holds \(what)")
                }
            }
        }
    }

    /// Times may run a little backwards (clocks of honest parties differ), not more than
    /// the ledger's limit: a back-dated claim would otherwise see others' claims as expired
    /// or land "before" what is already recorded. The clock survives snapshots.
    @Test(arguments: StoreKind.tested) func actionTimesMayNotRunFarBackwards(_ store: StoreKind) throws {
        let m = try MarketFixture(store: store)
        let c = m.contributors[0]
        let now = m.tick()
        try m.ledger.append(try SignedAction(.register(.init(at: now, key: ParticipantKey.generate().publicHex, roles: [.contributor], stake: 0)), key: m.op))
        // Within the limit: taken (and the clock stays at its maximum).
        try m.ledger.append(try SignedAction(.register(.init(at: now - LedgerState.maxBackdateSeconds, key: ParticipantKey.generate().publicHex, roles: [.contributor], stake: 0)), key: m.op))
        #expect(try m.ledger.currentState().clock == now)
        let count = try m.eventCount()
        for at in [now - LedgerState.maxBackdateSeconds - 1, Int64.min] {
            #expect {
                try m.ledger.append(try SignedAction(.claim(.init(at: at, round: "r1", experts: [m.ref(m.experts[1])], expiresAt: 50_000)), key: c))
            } throws: { "\($0)".contains("before the ledger's latest time \(now)") }
        }
        #expect { try m.revenue(10, period: "", usage: [(m.experts[0], 1)]) } throws: { "\($0)".contains("period must not be empty") }
        #expect(try m.eventCount() == count)
        // Far ahead is the server's to refuse (its clock skew); the ledger only moves its clock.
        try m.ledger.append(try SignedAction(.register(.init(at: Int64.max, key: ParticipantKey.generate().publicHex, roles: [.contributor], stake: 0)), key: m.op))
        #expect(try m.reopen().currentState().clock == Int64.max)
        #expect(try m.verify().ok)
    }
}

@Suite struct PipelinedAppendTests {
    @Test(arguments: StoreKind.tested) func batchesBeforeABadSignatureStayAndTheRestIsRefused(_ store: StoreKind) throws {
        let m = try MarketFixture(store: store)
        let start = try m.eventCount()
        let keys = (0..<6).map { _ in ParticipantKey.generate().publicHex }
        var actions = try keys.enumerated().map { i, k in
            try SignedAction(.register(.init(at: 9_000 + Int64(i), key: k, roles: [.contributor], stake: 0)), key: m.op)
        }
        #expect(try m.ledger.append(batches: [Array(actions[0..<2]), Array(actions[2..<4])]).map { $0.map(\.seq) } == [[start + 1, start + 2], [start + 3, start + 4]])
        actions[5] = try SignedAction(action: actions[5].action, actor: actions[5].actor, signature: actions[4].signature)
        #expect(throws: LedgerError.self) { try m.ledger.append(batches: [[actions[4]], [actions[5]]]) }
        #expect(try m.eventCount() == start + 5)
        #expect(try m.verify().ok)
    }
}
