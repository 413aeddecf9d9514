import Foundation
import Testing
@testable import TesseraLedger
import TesseraCore
import TesseraTestSupport

let testPolicy = MarketPolicy(quorum: 3, minGainMicronats: 100, genesisUnits: 1_000_000, doublingGainMicronats: 10_000,
                              maxMintBps: 5_000, validatorFeeBps: 500, operatorFeeBps: 200, maxClaimantsPerExpert: 2)

func fakeHash(_ s: String) -> String { ContentHash.sha256(Array(s.utf8)) }

/// Writes the actions straight into a store as a correctly linked chain with their derived
/// rows, bypassing `Ledger` (and the rules' signature check); `signature(i)`, when
/// given, stands in for action i's own signature.
func writeChain(_ actions: [SignedAction], into w: any LedgerWriter,
                signature: ((Int) -> String)? = nil) throws {
    var state = LedgerState(policy: SyntheticLedger.policy)
    for (i, a) in actions.enumerated() {
        let sig = signature?(i) ?? a.signature
        let seq = Int64(i + 1)
        let hash = Ledger.eventHash(seq: seq, kind: a.action.kind, payload: a.payload, actor: a.actor, signature: sig, prev: state.headHash)
        try w.append(StoredEvent(seq: seq, kind: a.action.kind, payload: a.payload, actor: a.actor, signature: sig, prevHash: state.headHash,
                                 hash: hash, idempotencyKey: Ledger.idempotencyKey(kind: a.action.kind, payload: a.payload, actor: a.actor), at: a.action.at))
        try w.upsert(try state.apply(a, seq: seq, hash: hash, checkSignature: false))
    }
}

/// A small market: operator, publisher, three contributors, three validators (stakes 100,
/// 150, 120; quorum 3), four experts
/// (2 layers × 2), domain "es", round "r1" over all experts.
final class MarketFixture {
    let db: TestDatabase
    let op = ParticipantKey.generate(), publisher = ParticipantKey.generate()
    let contributors = (0..<3).map { _ in ParticipantKey.generate() }
    let validators = (0..<3).map { _ in ParticipantKey.generate() }
    let experts = [ExpertID(layer: 0, expert: 0), ExpertID(layer: 0, expert: 1), ExpertID(layer: 1, expert: 0), ExpertID(layer: 1, expert: 1)]
    var ledger: Ledger!
    var t: Int64 = 1_000

    /// Events the set-up recorded.
    private(set) var setupEvents: Int64 = 0

    init(policy: MarketPolicy = testPolicy, store: StoreKind = .sqlite) throws {
        db = try TestDatabase(store)
        ledger = try Ledger(store: try db.store(), policy: policy)
        try setUp()
    }

    /// On a given store (a fault-injecting one, say), which the set-up writes through.
    init(policy: MarketPolicy = testPolicy, store: any LedgerStore, snapshotInterval: Int64 = 50_000) throws {
        db = try TestDatabase(.sqlite)
        ledger = try Ledger(store: store, policy: policy, snapshotInterval: snapshotInterval)
        try setUp()
    }

    private func setUp() throws {
        try ledger.append(try SignedAction(.genesis(.init(at: tick(), publisher: publisher.publicHex,
                                                           experts: experts.map { ExpertRef(layer: $0.layer, expert: $0.expert, version: fakeHash("base\($0)")) },
                                                           policySHA256: fakeHash("policy"))), key: op))
        try ledger.append(try SignedAction(.openDomain(.init(at: tick(), name: "es")), key: op))
        for c in contributors { try ledger.append(try SignedAction(.register(.init(at: tick(), key: c.publicHex, roles: [.contributor], stake: 0)), key: op)) }
        for (i, v) in validators.enumerated() {
            try ledger.append(try SignedAction(.register(.init(at: tick(), key: v.publicHex, roles: [.validator], stake: [100, 150, 120][i])), key: op))
        }
        try ledger.append(try SignedAction(.openRound(.init(at: tick(), round: "r1", domain: "es", experts: experts.map { ExpertRef(layer: $0.layer, expert: $0.expert) },
                                                           closesAt: 100_000)), key: op))
        setupEvents = try eventCount()
    }

    func tick() -> Int64 { t += 1; return t }
    func ref(_ id: ExpertID, _ version: String? = nil) -> ExpertRef { ExpertRef(layer: id.layer, expert: id.expert, version: version) }
    func current(_ id: ExpertID) throws -> String { try ledger.currentState().experts[id]!.versions.last! }

    @discardableResult
    func claim(_ who: ParticipantKey, _ ids: [ExpertID], round: String = "r1") throws -> Ledger.Outcome {
        try ledger.append(try SignedAction(.claim(.init(at: tick(), round: round, experts: ids.map { ref($0) }, expiresAt: 50_000)), key: who))
    }

    @discardableResult
    func submit(_ who: ParticipantKey, _ ids: [ExpertID], bundle: String) throws -> Ledger.Outcome {
        try ledger.append(try SignedAction(.submit(.init(at: tick(), round: "r1", bundle: fakeHash(bundle), bundleSignature: String(repeating: "ab", count: 64),
                                                         experts: try ids.map { ref($0, try current($0)) })), key: who))
    }

    /// `a` and `b` both claim expert `e` and submit bundles "A" and "B" on it.
    func twoSubmissions(_ a: ParticipantKey, _ b: ParticipantKey, on e: ExpertID) throws {
        try claim(a, [e])
        try claim(b, [e])
        try submit(a, [e], bundle: "A")
        try submit(b, [e], bundle: "B")
    }

    @discardableResult
    func verdict(_ who: ParticipantKey, bundle: String, gain: Int64, accept: Bool) throws -> Ledger.Outcome {
        try ledger.append(try SignedAction(.verdict(.init(at: tick(), submission: fakeHash(bundle), gainLCBMicronats: gain,
                                                          regressionUCBMicronats: 10, accept: accept, reason: accept ? "gain" : "no gain")), key: who))
    }

    @discardableResult
    func merge(_ id: ExpertID, bundles: [String], version: String) throws -> Ledger.Outcome {
        try ledger.append(try SignedAction(.newVersion(.init(at: tick(), layer: id.layer, expert: id.expert, version: fakeHash(version),
                                                             parent: try current(id), submissions: bundles.map(fakeHash))), key: op))
    }

    @discardableResult
    func revenue(_ amount: Int64, period: String, usage: [(ExpertID, Int64)], domain: String = "es") throws -> Ledger.Outcome {
        try ledger.append(try SignedAction(.revenue(.init(at: tick(), domain: domain, period: period, amount: amount,
                                                          usage: try usage.map { .init(layer: $0.0.layer, expert: $0.0.expert, version: try current($0.0), usage: $0.1) })), key: op))
    }

    func verify() throws -> VerifyReport { try Ledger.verify(store: ledger.store, policy: ledger.policy) }
    /// A random action of a busy market (claims, submissions, verdicts, merges, revenue,
    /// registrations), valid or not; built once so that a caller can send it again.
    /// `revenue` is the amount when it is a revenue event, `bundle` the name of a submitted
    /// bundle (for `bundles`, once recorded).
    func randomAction(_ rng: inout SplitMix64, tag: String, bundles: [String], period: inout Int) throws
        -> (action: SignedAction, revenue: Int64?, bundle: String?)? {
        func pick<T>(_ xs: [T]) -> T { xs[Int(rng.next() % UInt64(xs.count))] }
        let e = pick(experts)
        switch rng.next() % 6 {
        case 0:
            return (try SignedAction(.claim(.init(at: tick(), round: "r1", experts: [ref(e)], expiresAt: 50_000)), key: pick(contributors)), nil, nil)
        case 1:
            let b = "b\(tag)"
            return (try SignedAction(.submit(.init(at: tick(), round: "r1", bundle: fakeHash(b), bundleSignature: String(repeating: "ab", count: 64),
                                                   experts: [ref(e, try current(e))])), key: pick(contributors)), nil, b)
        case 2:
            guard !bundles.isEmpty else { return nil }
            let gain = Int64(rng.next() % 5_000) - 500, accept = rng.next() % 4 != 0
            return (try SignedAction(.verdict(.init(at: tick(), submission: fakeHash(pick(bundles)), gainLCBMicronats: gain, regressionUCBMicronats: 10,
                                                    accept: accept, reason: accept ? "gain" : "no gain")), key: pick(validators)), nil, nil)
        case 3:
            let s = try ledger.currentState()
            let ready = bundles.filter { s.submissions[fakeHash($0)]?.state == .accepted && s.submissions[fakeHash($0)]!.experts.contains { $0.id == e } }
            guard !ready.isEmpty else { return nil }
            return (try SignedAction(.newVersion(.init(at: tick(), layer: e.layer, expert: e.expert, version: fakeHash("v\(tag)"), parent: try current(e),
                                                       submissions: ready.map(fakeHash))), key: op), nil, nil)
        case 4:
            period += 1
            let amount = Int64(rng.next() % 1_000_000) + (rng.next() % 5 == 0 ? -5 : 1)
            let usage = try experts.map { LedgerAction.Usage(layer: $0.layer, expert: $0.expert, version: try current($0), usage: Int64(rng.next() % 100)) }
            return (try SignedAction(.revenue(.init(at: tick(), domain: "es", period: "p\(period)", amount: amount, usage: usage)), key: op), amount, nil)
        default:
            return (try SignedAction(.register(.init(at: tick(), key: ParticipantKey.generate().publicHex, roles: [.contributor], stake: 0)), key: op), nil, nil)
        }
    }

    /// The invariants that hold after every step, whatever happened: no holding negative,
    /// every expert's units the sum of its holdings, payouts and revenue records adding up
    /// to the revenue recorded.
    func checkBalances(revenueTotal: Int64, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let state = try ledger.currentState()
        for (id, expert) in state.experts {
            #expect(expert.holdings.values.allSatisfy { $0 >= 0 }, "\(id)", sourceLocation: sourceLocation)
            #expect(expert.holdings.values.reduce(0, +) == expert.units, "\(id)", sourceLocation: sourceLocation)
        }
        #expect(try ledger.payouts().reduce(0) { $0 + $1.amount } == revenueTotal, sourceLocation: sourceLocation)
        #expect(try ledger.revenues().reduce(0) { $0 + $1.amount } == revenueTotal, sourceLocation: sourceLocation)
    }

    /// Another handle on the same ledger (as another process would open it).
    func reopen() throws -> Ledger { try Ledger(store: try db.store(), policy: ledger.policy) }
    func eventCount() throws -> Int64 { try ledger.store.read { try $0.eventCount() } }
}
