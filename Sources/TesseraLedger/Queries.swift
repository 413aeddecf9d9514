import Foundation
import TesseraCore

/// Answers for owners and everyone else, read from the derived tables.
extension Ledger {
    public struct Holding: Codable, Sendable, Equatable {
        public var layer: Int
        public var expert: Int
        public var units: Int64
        public var totalUnits: Int64
        /// units / total units, for display; every decision uses the integers.
        public var fraction: Double
        /// Paid to the owner for this expert so far, minor units.
        public var payouts: Int64
        enum CodingKeys: String, CodingKey {
            case layer, expert, units, fraction
            case totalUnits = "total_units"
            case payouts = "payouts_minor_units"
        }
    }

    public func shares(owner: String) throws -> (holdings: [Holding], fees: Int64) {
        try store.read { r in
            let held = try r.rows(.holdings, matching: [("owner", .text(owner))])
            var paid: [ExpertID: Int64] = [:]
            for row in try r.rows(.payoutTotals, matching: [("recipient", .text(owner))]) {
                paid[ExpertID(layer: Int(row.key[1].int), expert: Int(row.key[2].int))] = row.values[0].int
            }
            var totals: [ExpertID: Int64] = [:]
            for row in try r.rows(.expertTotals, keys: held.map { [$0.key[0], $0.key[1]] }) {
                totals[ExpertID(layer: Int(row.key[0].int), expert: Int(row.key[1].int))] = row.values[0].int
            }
            var out: [Holding] = []
            for h in held {
                let id = ExpertID(layer: Int(h.key[0].int), expert: Int(h.key[1].int))
                let total = totals[id] ?? 0
                let units = h.values[0].int
                out.append(Holding(layer: id.layer, expert: id.expert, units: units, totalUnits: total,
                                   fraction: total > 0 ? Double(units) / Double(total) : 0, payouts: paid[id] ?? 0))
            }
            return (out, paid[ExpertID(layer: -1, expert: -1)] ?? 0)
        }
    }

    public struct ExpertReport: Codable, Sendable {
        public struct Holder: Codable, Sendable { public var owner: String; public var units: Int64 }
        public struct Version: Codable, Sendable { public var hash: String; public var parent: String?; public var submissions: [String]; public var event: Int64 }
        public var layer: Int
        public var expert: Int
        public var totalUnits: Int64
        public var currentVersion: String
        public var revenue: Int64
        public var holders: [Holder]
        public var versions: [Version]
        enum CodingKeys: String, CodingKey {
            case layer, expert, holders, versions
            case totalUnits = "total_units"
            case currentVersion = "current_version"
            case revenue = "revenue_minor_units"
        }
    }

    public func expert(_ id: ExpertID) throws -> ExpertReport? {
        try store.read { r in
            let k: [(column: String, value: SQLValue)] = [("layer", .int(Int64(id.layer))), ("expert", .int(Int64(id.expert)))]
            guard let total = try r.rows(.expertTotals, matching: k).first else { return nil }
            let holders = try r.rows(.holdings, matching: k).map { ExpertReport.Holder(owner: $0.key[2].text, units: $0.values[0].int) }
                .filter { $0.units > 0 }.sorted { ($0.units, $1.owner) > ($1.units, $0.owner) }
            let versions = try r.rows(.versions, matching: k).map { row in
                ExpertReport.Version(hash: row.key[0].text, parent: row.values[2] == .null ? nil : row.values[2].text,
                                     submissions: row.values[3].text.split(separator: ",").map(String.init), event: row.values[4].int)
            }.sorted { $0.event < $1.event }
            return ExpertReport(layer: id.layer, expert: id.expert, totalUnits: total.values[0].int, currentVersion: total.values[1].text,
                                revenue: total.values[2].int, holders: holders, versions: versions)
        }
    }

    public struct RoundReport: Codable, Sendable {
        public struct ClaimInfo: Codable, Sendable { public var event: Int64; public var participant: String; public var experts: String; public var expiresAt: Int64
            enum CodingKeys: String, CodingKey { case event, participant, experts; case expiresAt = "expires_at" } }
        public struct SubmissionInfo: Codable, Sendable {
            public var bundle: String
            public var contributor: String
            public var experts: String
            public var state: String
            public var consensusGain: Int64?
            /// What the state means for its contributor, in words (why an accepted update
            /// earned nothing, say).
            public var outcome: String
            enum CodingKeys: String, CodingKey { case bundle, contributor, experts, state, outcome; case consensusGain = "consensus_gain_micronats" }
        }
        public var id: String
        public var domain: String
        public var experts: String
        public var closesAt: Int64
        public var state: String
        public var claims: [ClaimInfo]
        public var submissions: [SubmissionInfo]
        /// Validators' held-out commitments, and what each revealed after the close.
        public var commitments: [CommitmentInfo]
        public struct CommitmentInfo: Codable, Sendable {
            public var validator: String
            public var commitment: String
            public var revealedHeldOutSHA256: String?
            enum CodingKeys: String, CodingKey { case validator, commitment; case revealedHeldOutSHA256 = "revealed_held_out_sha256" }
        }
        enum CodingKeys: String, CodingKey { case id, domain, experts, state, claims, submissions, commitments; case closesAt = "closes_at" }
    }

    /// Every round's id, sorted.
    public func rounds() throws -> [String] {
        try store.read { r in try r.rows(.rounds, matching: []).map { $0.key[0].text }.sorted() }
    }

    public func round(_ id: String) throws -> RoundReport? {
        let state = try currentState()
        let commitments = state.commitments[id, default: [:]].sorted { $0.key < $1.key }.map {
            RoundReport.CommitmentInfo(validator: $0.key, commitment: $0.value.commitment, revealedHeldOutSHA256: $0.value.heldOutSHA256)
        }
        return try store.read { r in
            guard let row = try r.rows(.rounds, matching: [("id", .text(id))]).first else { return nil }
            let claims = try r.rows(.claims, matching: [("round", .text(id))]).map {
                RoundReport.ClaimInfo(event: $0.key[0].int, participant: $0.values[0].text, experts: $0.values[2].text, expiresAt: $0.values[3].int)
            }
            let subs = try r.rows(.submissions, matching: [("round", .text(id))]).map {
                RoundReport.SubmissionInfo(bundle: $0.key[0].text, contributor: $0.values[0].text, experts: $0.values[2].text,
                                           state: $0.values[3].text, consensusGain: $0.values[4] == .null ? nil : $0.values[4].int,
                                           outcome: Self.outcome(of: state.submissions[$0.key[0].text], in: state))
            }
            return RoundReport(id: id, domain: row.values[0].text, experts: row.values[1].text, closesAt: row.values[2].int,
                               state: row.values[3].text, claims: claims, submissions: subs, commitments: commitments)
        }
    }

    /// A submission's state in words. An accepted submission earns units only when a
    /// `new_version` merges it; once another version of its expert is recorded without
    /// it, its base is stale and it can no longer be merged.
    static func outcome(of s: LedgerState.Submission?, in state: LedgerState) -> String {
        guard let s else { return "" }
        switch s.state {
        case .pending:
            return "pending: \(s.verdicts.count) of \(state.policy.quorum) verdicts"
        case .rejected:
            return "rejected by the validators' consensus; earns nothing"
        case .merged:
            return "merged into a new version; units minted to its contributor"
        case .accepted:
            let moved = s.experts.filter { e in state.experts[e.id]?.versions.last != e.version }.map(\.id.description)
            if moved.isEmpty { return "accepted, not merged yet: earns units when a new version merges it" }
            return "accepted but not merged: expert\(moved.count > 1 ? "s" : "") \(moved.joined(separator: ", ")) moved on to a version merged from other submissions (the operator's merge validated better without this one); it earns no units"
        }
    }

    public struct Payout: Codable, Sendable, Equatable {
        public var event: Int64
        public var recipient: String
        public var kind: String
        public var layer: Int?
        public var expert: Int?
        public var amount: Int64
        enum CodingKeys: String, CodingKey { case event, recipient, kind, layer, expert; case amount = "amount_minor_units" }
    }

    /// Payouts of every revenue event (or of one).
    public func payouts(event: Int64? = nil) throws -> [Payout] {
        try store.read { r in
            try r.rows(.payouts, matching: event.map { [("event", SQLValue.int($0))] } ?? []).map { row in
                let l = Int(row.key[3].int), e = Int(row.key[4].int)
                return Payout(event: row.key[0].int, recipient: row.key[1].text, kind: row.key[2].text,
                              layer: l < 0 ? nil : l, expert: e < 0 ? nil : e, amount: row.values[0].int)
            }
        }
    }

    /// Revenue events distributed: domain, period, amount and event number.
    public func revenues() throws -> [(domain: String, period: String, amount: Int64, event: Int64)] {
        try store.read { r in
            try r.rows(.revenue, matching: []).map { ($0.key[0].text, $0.key[1].text, $0.values[0].int, $0.values[1].int) }
        }
    }

    public func events(since seq: Int64, limit: Int = 1000) throws -> [StoredEvent] {
        try store.read { r in try r.events(after: seq, limit: limit) }
    }
}

extension SQLValue {
    var int: Int64 { if case let .int(i) = self { return i }; return 0 }
    var text: String { if case let .text(s) = self { return s }; return "" }
}
