import Foundation
import TesseraCore

/// Everything the events imply, kept in memory: the rules read it to decide, and every
/// change to it is also emitted as derived-table rows. Replaying the events from the
/// first reproduces it exactly; there is no floating point anywhere in it.
public struct LedgerState: Sendable, Codable, Equatable {
    public struct Participant: Sendable, Equatable, Codable { public var roles: Set<Role>; public var stake: Int64 }
    public struct Round: Sendable, Equatable, Codable { public var domain: String; public var experts: Set<ExpertID>; public var openedAt: Int64; public var closesAt: Int64; public var open: Bool }
    public struct ActiveClaim: Sendable, Equatable, Codable { public var participant: String; public var round: String; public var expiresAt: Int64 }
    public enum SubmissionState: String, Sendable, Codable { case pending, accepted, rejected, merged }
    public struct VerdictRecord: Sendable, Equatable, Codable { public var gain: Int64; public var regression: Int64; public var accept: Bool }
    public struct Submission: Sendable, Equatable, Codable {
        public var contributor: String
        public var round: String
        public var experts: [ExpertRef]
        public var state: SubmissionState
        public var verdicts: [String: VerdictRecord]
        public var consensusGain: Int64?
    }
    public struct Expert: Sendable, Equatable, Codable {
        public var versions: [String]
        public var holdings: [String: Int64]
        public var units: Int64
        public var revenue: Int64
    }

    public let policy: MarketPolicy
    public internal(set) var seq: Int64 = 0
    public internal(set) var headHash = String(repeating: "0", count: 64)
    /// The latest action time recorded so far (nil before the first, or when restored from
    /// a version-1 snapshot, which did not keep it).
    public internal(set) var clock: Int64?
    /// How far an action's time may lie before the ledger's clock. Honest parties' clocks
    /// differ (a server admits times within its clock skew on either side, at most half
    /// of this), so strict order would refuse them; without a bound, a back-dated action
    /// could claim or submit "before" what is already recorded.
    public static let maxBackdateSeconds: Int64 = 3600
    public internal(set) var operatorKey: String?
    public internal(set) var participants: [String: Participant] = [:]
    public internal(set) var domains: Set<String> = []
    public internal(set) var rounds: [String: Round] = [:]
    public internal(set) var claims: [ExpertID: [ActiveClaim]] = [:]
    public internal(set) var submissions: [String: Submission] = [:]
    public internal(set) var experts: [ExpertID: Expert] = [:]
    public internal(set) var versionOwner: [String: ExpertID] = [:]
    public internal(set) var revenuePeriods: Set<String> = []
    public internal(set) var payoutTotals: [String: [ExpertID: Int64]] = [:]
    /// Round → validator → held-out commitment, and whether it has been revealed and matched.
    public struct Commitment: Sendable, Equatable, Codable {
        public var commitment: String
        public var revealed: Bool
        /// After the reveal: the hash of the held-out windows the validator judged on.
        public var heldOutSHA256: String?
    }
    public internal(set) var commitments: [String: [String: Commitment]] = [:]

    public init(policy: MarketPolicy) { self.policy = policy }

    /// A refusal: no rule lets this action happen now.
    func refuse(_ why: String) -> LedgerError { .refused(why) }

    /// Checks and applies the next event. Every rule checks everything before it changes
    /// anything, so on a refusal the state is unchanged (and it is changed in place
    /// otherwise: copying the whole state per event would make a long ledger quadratic).
    public mutating func apply(_ signed: SignedAction, seq newSeq: Int64, hash: String, checkSignature: Bool = true) throws -> [DerivedRow] {
        if checkSignature { try Self.checkSignature(signed) }
        let at = signed.action.at
        if let clock, at < clock, case let (behind, overflow) = clock.subtractingReportingOverflow(at), overflow || behind > Self.maxBackdateSeconds {
            throw refuse("\(signed.action.kind): the action's time \(at) is before the ledger's latest time \(clock) by more than \(Self.maxBackdateSeconds) s")
        }
        let rows = try applyUnchecked(signed, seq: newSeq)
        clock = Swift.max(clock ?? at, at)
        seq = newSeq
        headHash = hash
        return rows
    }

    /// The actor's Ed25519 signature over the action's canonical bytes.
    public static func checkSignature(_ s: SignedAction) throws {
        guard let check = s.signatureCheck, SignatureBatch.allValid(CollectionOfOne(check)) else { throw badSignature(s) }
    }

    static func badSignature(_ s: SignedAction) -> LedgerError {
        .refused("bad signature by \(s.actor.prefix(16))… on \(s.action.kind)")
    }

    private mutating func applyUnchecked(_ s: SignedAction, seq: Int64) throws -> [DerivedRow] {
        if case .genesis = s.action {} else {
            guard operatorKey != nil else { throw refuse("the ledger has no genesis event yet") }
        }
        switch s.action {
        case let .genesis(g): return try genesis(g, actor: s.actor, seq: seq)
        case let .register(r): return try register(r, actor: s.actor, seq: seq)
        case let .openDomain(d): return try openDomain(d, actor: s.actor, seq: seq)
        case let .openRound(r): return try openRound(r, actor: s.actor, seq: seq)
        case let .closeRound(r): return try closeRound(r, actor: s.actor, seq: seq)
        case let .claim(c): return try claim(c, actor: s.actor, seq: seq)
        case let .submit(x): return try submit(x, actor: s.actor, seq: seq)
        case let .verdict(v): return try verdict(v, actor: s.actor, seq: seq)
        case let .newVersion(v): return try newVersion(v, actor: s.actor, seq: seq)
        case let .revenue(r): return try revenue(r, actor: s.actor, seq: seq)
        case let .commit(c): return try commit(c, actor: s.actor)
        case let .reveal(r): return try reveal(r, actor: s.actor)
        }
    }

    func requireOperator(_ actor: String, _ what: String) throws {
        guard actor == operatorKey else { throw refuse("\(what) must be signed by the market operator") }
    }

    func requireRole(_ actor: String, _ role: Role, _ what: String) throws {
        guard let p = participants[actor] else { throw refuse("\(what): key \(actor.prefix(16))… is not registered") }
        guard p.roles.contains(role) else { throw refuse("\(what): participant \(actor.prefix(16))… is not a \(role.rawValue)") }
    }

    // MARK: rules

    mutating func genesis(_ g: LedgerAction.Genesis, actor: String, seq: Int64) throws -> [DerivedRow] {
        guard operatorKey == nil, seq == 1 else { throw refuse("genesis must be the first event") }
        guard isKey(g.publisher) else { throw refuse("genesis publisher is not an Ed25519 public key") }
        guard !g.experts.isEmpty, Set(g.experts.map(\.id)).count == g.experts.count else { throw refuse("genesis needs each expert once") }
        for e in g.experts {
            guard let v = e.version, isHash(v) else { throw refuse("genesis expert \(e.id) lacks a version hash") }
        }
        operatorKey = actor
        participants[actor] = Participant(roles: [], stake: 0)
        participants[g.publisher, default: Participant(roles: [], stake: 0)].roles.insert(.owner)
        var rows = [participantRow(actor, seq), participantRow(g.publisher, seq)]
        for e in g.experts {
            let v = e.version!
            experts[e.id] = Expert(versions: [v], holdings: [g.publisher: policy.genesisUnits], units: policy.genesisUnits, revenue: 0)
            versionOwner[v] = e.id
            rows += [versionRow(v, e.id, parent: nil, submissions: [], seq), holdingRow(e.id, g.publisher, seq), expertRow(e.id, seq)]
        }
        return rows
    }

    mutating func register(_ r: LedgerAction.Register, actor: String, seq: Int64) throws -> [DerivedRow] {
        try requireOperator(actor, "register")
        guard isKey(r.key) else { throw refuse("register: \(r.key.prefix(64)) is not a usable Ed25519 public key (64 lower-case hex digits encoding a point, not of small order, that a signature can verify under)") }
        guard !r.roles.isEmpty, r.stake >= 0 else { throw refuse("register: needs at least one role and a non-negative stake") }
        guard r.stake == 0 || r.roles.contains(.validator) else { throw refuse("register: only validators hold stake") }
        var p = participants[r.key] ?? Participant(roles: [], stake: 0)
        p.roles.formUnion(r.roles)
        if r.roles.contains(.validator) { p.stake = r.stake }
        participants[r.key] = p
        return [participantRow(r.key, seq)]
    }

    mutating func openDomain(_ d: LedgerAction.OpenDomain, actor: String, seq: Int64) throws -> [DerivedRow] {
        try requireOperator(actor, "open_domain")
        guard !d.name.isEmpty, domains.insert(d.name).inserted else { throw refuse("domain \(d.name) is already open or unnamed") }
        return [DerivedRow(table: .domains, key: [.text(d.name)], values: [.int(seq)])]
    }

    mutating func openRound(_ r: LedgerAction.OpenRound, actor: String, seq: Int64) throws -> [DerivedRow] {
        try requireOperator(actor, "open_round")
        guard rounds[r.round] == nil, !r.round.isEmpty else { throw refuse("round \(r.round) already exists") }
        guard domains.contains(r.domain) else { throw refuse("open_round: unknown domain \(r.domain)") }
        guard r.closesAt > r.at else { throw refuse("open_round: closes_at must be after at") }
        let ids = Set(r.experts.map(\.id))
        guard !ids.isEmpty, ids.allSatisfy({ experts[$0] != nil }) else { throw refuse("open_round: experts must be non-empty and known") }
        rounds[r.round] = Round(domain: r.domain, experts: ids, openedAt: r.at, closesAt: r.closesAt, open: true)
        return [roundRow(r.round, seq)]
    }

    mutating func closeRound(_ r: LedgerAction.CloseRound, actor: String, seq: Int64) throws -> [DerivedRow] {
        try requireOperator(actor, "close_round")
        guard var round = rounds[r.round], round.open else { throw refuse("round \(r.round) is not open") }
        round.open = false
        rounds[r.round] = round
        return [roundRow(r.round, seq)]
    }

    mutating func claim(_ c: LedgerAction.Claim, actor: String, seq: Int64) throws -> [DerivedRow] {
        try requireRole(actor, .contributor, "claim")
        guard let round = rounds[c.round], round.open, c.at >= round.openedAt, c.at < round.closesAt else { throw refuse("claim: round \(c.round) is not open at \(c.at)") }
        guard c.expiresAt > c.at else { throw refuse("claim: expires_at must be after at") }
        let ids = Set(c.experts.map(\.id))
        guard !ids.isEmpty, ids.isSubset(of: round.experts) else { throw refuse("claim: experts must belong to round \(c.round)") }
        for id in ids.sorted() {
            let active = (claims[id] ?? []).filter { $0.expiresAt > c.at && $0.participant != actor && rounds[$0.round]?.open == true }
            guard Set(active.map(\.participant)).count < policy.maxClaimantsPerExpert else {
                throw refuse("claim: expert \(id) already has \(policy.maxClaimantsPerExpert) claimants (the cap)")
            }
        }
        for id in ids {
            var list = (claims[id] ?? []).filter { $0.expiresAt > c.at }
            list.append(ActiveClaim(participant: actor, round: c.round, expiresAt: c.expiresAt))
            claims[id] = list
        }
        return [DerivedRow(table: .claims, key: [.int(seq)],
                           values: [.text(actor), .text(c.round), .text(expertList(ids)), .int(c.expiresAt), .int(seq)])]
    }

    mutating func submit(_ x: LedgerAction.Submit, actor: String, seq: Int64) throws -> [DerivedRow] {
        try requireRole(actor, .contributor, "submit")
        guard isHash(x.bundle) else { throw refuse("submit: bundle is not a SHA-256 hash") }
        guard submissions[x.bundle] == nil else { throw refuse("submit: bundle \(x.bundle.prefix(12)) was already submitted") }
        guard let round = rounds[x.round], round.open, x.at >= round.openedAt, x.at < round.closesAt else { throw refuse("submit: round \(x.round) is not open at \(x.at)") }
        guard !x.experts.isEmpty, Set(x.experts.map(\.id)).count == x.experts.count else { throw refuse("submit: list each expert once") }
        for e in x.experts {
            guard (claims[e.id] ?? []).contains(where: { $0.participant == actor && $0.round == x.round && $0.expiresAt > x.at }) else {
                throw refuse("submit: expert \(e.id) is not claimed by this contributor in round \(x.round)")
            }
            guard let current = experts[e.id]?.versions.last, e.version == current else {
                throw refuse("submit: base version \(e.version?.prefix(12) ?? "none") of expert \(e.id) is stale; current is \(experts[e.id]?.versions.last?.prefix(12) ?? "?")")
            }
        }
        submissions[x.bundle] = Submission(contributor: actor, round: x.round, experts: x.experts.sorted(), state: .pending, verdicts: [:], consensusGain: nil)
        return [submissionRow(x.bundle, seq)]
    }

    mutating func verdict(_ v: LedgerAction.Verdict, actor: String, seq: Int64) throws -> [DerivedRow] {
        try requireRole(actor, .validator, "verdict")
        guard var sub = submissions[v.submission] else { throw refuse("verdict: unknown submission \(v.submission.prefix(12))") }
        guard sub.contributor != actor else { throw refuse("verdict: a validator cannot judge its own submission") }
        guard sub.verdicts[actor] == nil else { throw refuse("verdict: this validator already judged submission \(v.submission.prefix(12))") }
        guard sub.state == .pending else { throw refuse("verdict: submission \(v.submission.prefix(12)) is already \(sub.state.rawValue)") }
        sub.verdicts[actor] = VerdictRecord(gain: v.gainLCBMicronats, regression: v.regressionUCBMicronats, accept: v.accept)
        var rows = [DerivedRow(table: .verdicts, key: [.text(v.submission), .text(actor)],
                               values: [.int(v.gainLCBMicronats), .int(v.regressionUCBMicronats), .int(v.accept ? 1 : 0), .text(v.reason), .int(seq)])]
        if sub.verdicts.count >= policy.quorum {
            // Stake-weighted median of the figures; the verdict is the stake majority's.
            let items = sub.verdicts.map { (key: $0.key, value: $0.value.gain, stake: max(participants[$0.key]?.stake ?? 0, 1)) }
            let gain = try Allocation.weightedMedian(items) ?? 0
            let acceptStake = try CheckedMath.sum(sub.verdicts.filter(\.value.accept).map { max(participants[$0.key]?.stake ?? 0, 1) }, "verdict: the accepting stake")
            let totalStake = try CheckedMath.sum(items.map(\.stake), "verdict: the validators' stakes")
            let accepted = acceptStake > totalStake - acceptStake && gain >= policy.minGainMicronats && gain > 0
            sub.consensusGain = gain
            sub.state = accepted ? .accepted : .rejected
        }
        submissions[v.submission] = sub
        rows.append(submissionRow(v.submission, seq))
        return rows
    }

    mutating func newVersion(_ v: LedgerAction.NewVersion, actor: String, seq: Int64) throws -> [DerivedRow] {
        try requireOperator(actor, "new_version")
        let id = ExpertID(layer: v.layer, expert: v.expert)
        // Read in place: a local copy of the expert would copy its whole version history
        // (and holdings) on every merge, which grows with the ledger.
        guard let units = experts[id]?.units, let current = experts[id]?.versions.last else { throw refuse("new_version: unknown expert \(id)") }
        guard current == v.parent else { throw refuse("new_version: parent \(v.parent.prefix(12)) is not the current version of \(id)") }
        guard isHash(v.version), versionOwner[v.version] == nil else { throw refuse("new_version: version \(v.version.prefix(12)) is invalid or already recorded") }
        guard !v.submissions.isEmpty, Set(v.submissions).count == v.submissions.count else { throw refuse("new_version: name each merged submission once") }
        if let credits = v.credits, credits.count != v.submissions.count {
            throw refuse("new_version: \(credits.count) credits for \(v.submissions.count) submissions")
        }
        var gains: [(key: String, weight: Int64)] = []
        for (i, h) in v.submissions.enumerated() {
            guard let sub = submissions[h], sub.state == .accepted || sub.state == .merged else {
                throw refuse("new_version: submission \(h.prefix(12)) is not accepted")
            }
            guard sub.experts.contains(where: { $0.id == id }) else { throw refuse("new_version: submission \(h.prefix(12)) does not update expert \(id)") }
            let consensus = sub.consensusGain ?? 0
            if let credit = v.credits?[i], credit < 0 || credit > consensus {
                throw refuse("new_version: credit \(credit) for submission \(h.prefix(12)) is outside 0...\(consensus) (its consensus gain)")
            }
            gains.append((sub.contributor, v.credits?[i] ?? consensus))
        }
        // Minting: M = min(U·G/G₂, U·cap/10000) units for a summed consensus gain G, where U is
        // the units outstanding and G₂ the gain that doubles them; split by gain.
        // Everything is computed (and checked for overflow) before anything changes.
        let G = try CheckedMath.sum(gains.map(\.weight), "new_version: the summed credits")
        guard let cap = CheckedMath.mulDiv(units, policy.maxMintBps, 10_000) else { throw refuse("new_version: the mint cap of expert \(id) would pass \(Int64.max)") }
        // A quotient past Int64.max is past the cap too.
        let minted = min(CheckedMath.mulDiv(units, G, policy.doublingGainMicronats) ?? cap, cap)
        var merged: [String: Int64] = [:]
        for (k, w) in gains { merged[k] = try CheckedMath.add(merged[k] ?? 0, w, "new_version: the credits of \(k.prefix(16))…") }
        let shares = try Allocation.largestRemainder(minted, merged.sorted { $0.key < $1.key }.map { ($0.key, $0.value) })
        let newUnits = try CheckedMath.add(units, try CheckedMath.sum(shares.map(\.amount), "new_version: minted units"), "new_version: the units of expert \(id)")
        var newHoldings: [(owner: String, units: Int64)] = []
        for (owner, amount) in shares where amount > 0 {
            newHoldings.append((owner, try CheckedMath.add(experts[id]!.holdings[owner] ?? 0, amount, "new_version: \(owner.prefix(16))…'s units of \(id)")))
        }
        var rows: [DerivedRow] = []
        for (owner, held) in newHoldings {
            experts[id]!.holdings[owner] = held
            participants[owner]?.roles.insert(.owner)
            rows += [participantRow(owner, seq)]
        }
        experts[id]!.units = newUnits
        experts[id]!.versions.append(v.version)
        versionOwner[v.version] = id
        for h in v.submissions {
            submissions[h]!.state = .merged
            rows.append(submissionRow(h, seq))
        }
        rows.append(versionRow(v.version, id, parent: v.parent, submissions: v.submissions, seq))
        for (owner, _) in shares where (experts[id]!.holdings[owner] ?? 0) > 0 { rows.append(holdingRow(id, owner, seq)) }
        rows.append(expertRow(id, seq))
        return rows
    }

    mutating func commit(_ c: LedgerAction.Commit, actor: String) throws -> [DerivedRow] {
        try requireRole(actor, .validator, "commit")
        guard let round = rounds[c.round], round.open, c.at >= round.openedAt, c.at < round.closesAt else { throw refuse("commit: round \(c.round) is not open at \(c.at)") }
        guard isHash(c.commitment) else { throw refuse("commit: commitment is not a SHA-256 hash") }
        guard commitments[c.round]?[actor] == nil else { throw refuse("commit: this validator already committed in round \(c.round)") }
        commitments[c.round, default: [:]][actor] = Commitment(commitment: c.commitment, revealed: false, heldOutSHA256: nil)
        return []
    }

    mutating func reveal(_ r: LedgerAction.Reveal, actor: String) throws -> [DerivedRow] {
        try requireRole(actor, .validator, "reveal")
        guard let round = rounds[r.round] else { throw refuse("reveal: unknown round \(r.round)") }
        guard !round.open else { throw refuse("reveal: round \(r.round) is still open; reveal after it closes") }
        guard let c = commitments[r.round]?[actor] else { throw refuse("reveal: this validator made no commitment in round \(r.round)") }
        guard !c.revealed else { throw refuse("reveal: already revealed for round \(r.round)") }
        guard let salt = Hex.decode(r.salt), isHash(r.heldOutSHA256),
              HeldOutCommitment.commitment(heldOutSHA256: r.heldOutSHA256, salt: salt) == c.commitment else {
            throw refuse("reveal: salt and held-out hash do not match the commitment \(c.commitment.prefix(12)) made in round \(r.round)")
        }
        commitments[r.round]![actor]!.revealed = true
        commitments[r.round]![actor]!.heldOutSHA256 = r.heldOutSHA256
        return []
    }

    mutating func revenue(_ r: LedgerAction.Revenue, actor: String, seq: Int64) throws -> [DerivedRow] {
        try requireOperator(actor, "revenue")
        guard r.amount > 0 else { throw refuse("revenue: amount must be positive, got \(r.amount)") }
        guard domains.contains(r.domain) else { throw refuse("revenue: unknown domain \(r.domain)") }
        guard !r.period.isEmpty else { throw refuse("revenue: the period must not be empty") }
        if let root = r.receiptsRoot, !ContentHash.isValid(root) {
            throw refuse("revenue: receipts_root \(root.prefix(80)) is not a SHA-256 hex digest")
        }
        guard !revenuePeriods.contains(r.domain + "\u{0}" + r.period) else {
            throw refuse("revenue: domain \(r.domain) period \(r.period) was already distributed")
        }
        guard !r.usage.isEmpty, r.usage.allSatisfy({ $0.usage >= 0 }), r.usage.contains(where: { $0.usage > 0 }) else {
            throw refuse("revenue: usage must be non-negative with some positive")
        }
        var usageByExpert: [ExpertID: Int64] = [:]
        for u in r.usage {
            let id = ExpertID(layer: u.layer, expert: u.expert)
            guard versionOwner[u.version] == id else { throw refuse("revenue: \(u.version.prefix(12)) is not a version of expert \(id)") }
            usageByExpert[id] = try CheckedMath.add(usageByExpert[id] ?? 0, u.usage, "revenue: the usage of expert \(id)")
        }
        // Fees first (floor of basis points), then the rest by usage over experts, then by
        // units over each expert's holders: every split is largest-remainder, so the
        // payouts add up to the amount exactly. All of it is computed, and checked for
        // overflow, before anything changes.
        guard let validatorFee = CheckedMath.mulDiv(r.amount, policy.validatorFeeBps, 10_000),
              let operatorFee = CheckedMath.mulDiv(r.amount, policy.operatorFeeBps, 10_000) else {
            throw refuse("revenue: the fees of \(r.amount) do not fit")
        }
        var payouts: [(recipient: String, kind: String, expert: ExpertID?, amount: Int64)] = []
        let validators = participants.filter { $0.value.roles.contains(.validator) }.sorted { $0.key < $1.key }
        let stakeWeights = validators.map { (key: $0.key, weight: max($0.value.stake, 0)) }
        var toOwners = r.amount - operatorFee
        if stakeWeights.contains(where: { $0.weight > 0 }) {
            for (k, a) in try Allocation.largestRemainder(validatorFee, stakeWeights) where a > 0 { payouts.append((k, "validator_fee", nil, a)) }
            toOwners -= validatorFee
        }
        if operatorFee > 0 { payouts.append((operatorKey!, "operator_fee", nil, operatorFee)) }
        let perExpert = try Allocation.largestRemainder(toOwners, usageByExpert.sorted { $0.key < $1.key }.map { ($0.key, $0.value) })
        var expertRevenue: [(id: ExpertID, revenue: Int64)] = []
        for (id, amount) in perExpert where amount > 0 {
            let holders = experts[id]!.holdings.sorted { $0.key < $1.key }.map { (key: $0.key, weight: $0.value) }
            for (owner, a) in try Allocation.largestRemainder(amount, holders) where a > 0 { payouts.append((owner, "owner", id, a)) }
            expertRevenue.append((id, try CheckedMath.add(experts[id]!.revenue, amount, "revenue: the revenue of expert \(id)")))
        }
        struct Total: Hashable { var recipient: String; var expert: ExpertID }
        var totals: [Total: Int64] = [:]
        var totalOrder: [Total] = []
        for p in payouts {
            let t = Total(recipient: p.recipient, expert: p.expert ?? ExpertID(layer: -1, expert: -1))
            if totals[t] == nil { totalOrder.append(t) }
            totals[t] = try CheckedMath.add(totals[t] ?? payoutTotals[t.recipient]?[t.expert] ?? 0, p.amount, "revenue: the payouts to \(t.recipient.prefix(16))…")
        }

        revenuePeriods.insert(r.domain + "\u{0}" + r.period)
        for (id, revenue) in expertRevenue { experts[id]!.revenue = revenue }
        for t in totalOrder { payoutTotals[t.recipient, default: [:]][t.expert] = totals[t]! }
        var rows = [DerivedRow(table: .revenue, key: [.text(r.domain), .text(r.period)], values: [.int(r.amount), .int(seq), .int(seq)])]
        rows.reserveCapacity(payouts.count + totalOrder.count + perExpert.count + 1)
        for p in payouts {
            let eid = p.expert ?? ExpertID(layer: -1, expert: -1)
            rows.append(DerivedRow(table: .payouts, key: [.int(seq), .text(p.recipient), .text(p.kind), .int(Int64(eid.layer)), .int(Int64(eid.expert))],
                                   values: [.int(p.amount), .int(seq)]))
        }
        for t in totalOrder {
            rows.append(DerivedRow(table: .payoutTotals, key: [.text(t.recipient), .int(Int64(t.expert.layer)), .int(Int64(t.expert.expert))],
                                   values: [.int(totals[t]!), .int(seq)]))
        }
        for (id, a) in perExpert where a > 0 { rows.append(expertRow(id, seq)) }
        return rows
    }

    // MARK: rows

    func participantRow(_ key: String, _ seq: Int64) -> DerivedRow {
        let p = participants[key]!
        return DerivedRow(table: .participants, key: [.text(key)], values: [.text(p.roles.sorted().map(\.rawValue).joined(separator: ",")), .int(p.stake), .int(seq)])
    }
    func roundRow(_ id: String, _ seq: Int64) -> DerivedRow {
        let r = rounds[id]!
        return DerivedRow(table: .rounds, key: [.text(id)], values: [.text(r.domain), .text(expertList(r.experts)), .int(r.closesAt), .text(r.open ? "open" : "closed"), .int(seq)])
    }
    func submissionRow(_ h: String, _ seq: Int64) -> DerivedRow {
        let s = submissions[h]!
        return DerivedRow(table: .submissions, key: [.text(h)],
                          values: [.text(s.contributor), .text(s.round), .text(s.experts.map { "\($0.layer):\($0.expert)@\($0.version ?? "")" }.joined(separator: ",")),
                                   .text(s.state.rawValue), s.consensusGain.map(SQLValue.int) ?? .null, .int(seq)])
    }
    func versionRow(_ h: String, _ id: ExpertID, parent: String?, submissions: [String], _ seq: Int64) -> DerivedRow {
        DerivedRow(table: .versions, key: [.text(h)], values: [.int(Int64(id.layer)), .int(Int64(id.expert)), parent.map(SQLValue.text) ?? .null, .text(submissions.joined(separator: ",")), .int(seq)])
    }
    func holdingRow(_ id: ExpertID, _ owner: String, _ seq: Int64) -> DerivedRow {
        DerivedRow(table: .holdings, key: [.int(Int64(id.layer)), .int(Int64(id.expert)), .text(owner)], values: [.int(experts[id]!.holdings[owner] ?? 0), .int(seq)])
    }
    func expertRow(_ id: ExpertID, _ seq: Int64) -> DerivedRow {
        let e = experts[id]!
        return DerivedRow(table: .expertTotals, key: [.int(Int64(id.layer)), .int(Int64(id.expert))], values: [.int(e.units), .text(e.versions.last!), .int(e.revenue), .int(seq)])
    }
    func expertList(_ ids: Set<ExpertID>) -> String { ids.sorted().map(\.description).joined(separator: ",") }
    /// One spelling per key, and only keys that can sign (see `ParticipantKey.isUsablePublicKey`).
    func isKey(_ s: String) -> Bool { ParticipantKey.isUsablePublicKey(s) }
    func isHash(_ s: String) -> Bool { ContentHash.isValid(s) }
}
