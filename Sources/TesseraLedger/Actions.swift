import Foundation
import TesseraCore

public enum Role: String, Codable, Sendable, CaseIterable, Comparable {
    case contributor, validator, owner
    public static func < (a: Role, b: Role) -> Bool { a.rawValue < b.rawValue }
}

public struct ExpertRef: Codable, Sendable, Hashable, Comparable {
    public var layer: Int
    public var expert: Int
    /// A version hash: the version a claim or submission builds on, or that usage was metered on.
    public var version: String?
    public init(layer: Int, expert: Int, version: String? = nil) { self.layer = layer; self.expert = expert; self.version = version }
    public var id: ExpertID { ExpertID(layer: layer, expert: expert) }
    public static func < (a: ExpertRef, b: ExpertRef) -> Bool { (a.layer, a.expert, a.version ?? "") < (b.layer, b.expert, b.version ?? "") }
}

/// What a participant (or the market operator) asks the ledger to record. Every action
/// carries its time (`at`, Unix seconds) so that replaying the ledger decides exactly as
/// the original did.
public enum LedgerAction: Sendable, Equatable {
    /// The market's first event: its operator (the signer), the base model's publisher, and
    /// every expert with its base version; the publisher receives the genesis units.
    case genesis(Genesis)
    case register(Register)
    case openDomain(OpenDomain)
    case openRound(OpenRound)
    case closeRound(CloseRound)
    case claim(Claim)
    case submit(Submit)
    case verdict(Verdict)
    case newVersion(NewVersion)
    case revenue(Revenue)
    /// A validator's commitment to its held-out windows for a round (before judging).
    case commit(Commit)
    /// The salt and held-out hash behind a commitment, after the round closed.
    case reveal(Reveal)

    public struct Genesis: Codable, Sendable, Equatable {
        public var at: Int64
        public var publisher: String
        public var experts: [ExpertRef]
        public var policySHA256: String
        enum CodingKeys: String, CodingKey { case at, publisher, experts; case policySHA256 = "policy_sha256" }
        public init(at: Int64, publisher: String, experts: [ExpertRef], policySHA256: String) {
            self.at = at; self.publisher = publisher; self.experts = experts; self.policySHA256 = policySHA256
        }
    }
    public struct Register: Codable, Sendable, Equatable {
        public var at: Int64
        public var key: String
        public var roles: [Role]
        public var stake: Int64
        public init(at: Int64, key: String, roles: [Role], stake: Int64) { self.at = at; self.key = key; self.roles = roles; self.stake = stake }
    }
    public struct OpenDomain: Codable, Sendable, Equatable {
        public var at: Int64
        public var name: String
        public init(at: Int64, name: String) { self.at = at; self.name = name }
    }
    public struct OpenRound: Codable, Sendable, Equatable {
        public var at: Int64
        public var round: String
        public var domain: String
        public var experts: [ExpertRef]
        public var closesAt: Int64
        enum CodingKeys: String, CodingKey { case at, round, domain, experts; case closesAt = "closes_at" }
        public init(at: Int64, round: String, domain: String, experts: [ExpertRef], closesAt: Int64) {
            self.at = at; self.round = round; self.domain = domain; self.experts = experts; self.closesAt = closesAt
        }
    }
    public struct CloseRound: Codable, Sendable, Equatable {
        public var at: Int64
        public var round: String
        public init(at: Int64, round: String) { self.at = at; self.round = round }
    }
    public struct Claim: Codable, Sendable, Equatable {
        public var at: Int64
        public var round: String
        public var experts: [ExpertRef]
        public var expiresAt: Int64
        enum CodingKeys: String, CodingKey { case at, round, experts; case expiresAt = "expires_at" }
        public init(at: Int64, round: String, experts: [ExpertRef], expiresAt: Int64) {
            self.at = at; self.round = round; self.experts = experts; self.expiresAt = expiresAt
        }
    }
    public struct Submit: Codable, Sendable, Equatable {
        public var at: Int64
        public var round: String
        /// SHA-256 of the bundle's manifest bytes and the bundle's own signature.
        public var bundle: String
        public var bundleSignature: String
        /// Experts updated, each with the base version it was trained from.
        public var experts: [ExpertRef]
        enum CodingKeys: String, CodingKey { case at, round, bundle, experts; case bundleSignature = "bundle_signature" }
        public init(at: Int64, round: String, bundle: String, bundleSignature: String, experts: [ExpertRef]) {
            self.at = at; self.round = round; self.bundle = bundle; self.bundleSignature = bundleSignature; self.experts = experts
        }
    }
    public struct Verdict: Codable, Sendable, Equatable {
        public var at: Int64
        public var submission: String
        /// Proof-of-Loss figures in micro-nats per token: lower confidence bound of the
        /// held-out gain, upper bound of the background regression.
        public var gainLCBMicronats: Int64
        public var regressionUCBMicronats: Int64
        public var accept: Bool
        public var reason: String
        enum CodingKeys: String, CodingKey {
            case at, submission, accept, reason
            case gainLCBMicronats = "gain_lcb_micronats"
            case regressionUCBMicronats = "regression_ucb_micronats"
        }
        public init(at: Int64, submission: String, gainLCBMicronats: Int64, regressionUCBMicronats: Int64, accept: Bool, reason: String) {
            self.at = at; self.submission = submission; self.gainLCBMicronats = gainLCBMicronats
            self.regressionUCBMicronats = regressionUCBMicronats; self.accept = accept; self.reason = reason
        }
    }
    public struct NewVersion: Codable, Sendable, Equatable {
        public var at: Int64
        public var layer: Int
        public var expert: Int
        public var version: String
        public var parent: String
        public var submissions: [String]
        /// Optional credit per merged submission (µnats per token, its validated marginal
        /// gain, at most its consensus gain), aligned with `submissions`; minting is split
        /// by these when present, by the consensus gains otherwise.
        public var credits: [Int64]?
        public init(at: Int64, layer: Int, expert: Int, version: String, parent: String, submissions: [String], credits: [Int64]? = nil) {
            self.at = at; self.layer = layer; self.expert = expert; self.version = version; self.parent = parent; self.submissions = submissions
            self.credits = credits
        }
    }
    public struct Revenue: Codable, Sendable, Equatable {
        public var at: Int64
        public var domain: String
        public var period: String
        /// Integer minor units (cents, say).
        public var amount: Int64
        /// Metered usage (routing weight, in integer units) per expert version.
        public var usage: [Usage]
        /// Merkle root of the period's routing receipts (served revenue; absent for revenue
        /// entered by hand, and in events made before receipts existed, whose signed bytes
        /// are unchanged since an absent key is not written).
        public var receiptsRoot: String?
        enum CodingKeys: String, CodingKey { case at, domain, period, amount, usage, receiptsRoot = "receipts_root" }
        public init(at: Int64, domain: String, period: String, amount: Int64, usage: [Usage], receiptsRoot: String? = nil) {
            self.at = at; self.domain = domain; self.period = period; self.amount = amount; self.usage = usage
            self.receiptsRoot = receiptsRoot
        }
    }
    public struct Commit: Codable, Sendable, Equatable {
        public var at: Int64
        public var round: String
        public var commitment: String
        public init(at: Int64, round: String, commitment: String) { self.at = at; self.round = round; self.commitment = commitment }
    }
    public struct Reveal: Codable, Sendable, Equatable {
        public var at: Int64
        public var round: String
        /// Hex.
        public var salt: String
        public var heldOutSHA256: String
        enum CodingKeys: String, CodingKey { case at, round, salt; case heldOutSHA256 = "held_out_sha256" }
        public init(at: Int64, round: String, salt: String, heldOutSHA256: String) {
            self.at = at; self.round = round; self.salt = salt; self.heldOutSHA256 = heldOutSHA256
        }
    }
    public struct Usage: Codable, Sendable, Equatable {
        public var layer: Int
        public var expert: Int
        public var version: String
        public var usage: Int64
        public init(layer: Int, expert: Int, version: String, usage: Int64) { self.layer = layer; self.expert = expert; self.version = version; self.usage = usage }
    }

    /// Every action's name in events and signed bytes, and the type of its payload.
    public enum Kind: String, Sendable, CaseIterable, Codable {
        case genesis, register, commit, reveal, claim, submit, verdict, revenue
        case openDomain = "open_domain", openRound = "open_round", closeRound = "close_round", newVersion = "new_version"

        var payloadType: any ActionPayload.Type {
            switch self {
            case .genesis: return Genesis.self
            case .register: return Register.self
            case .openDomain: return OpenDomain.self
            case .openRound: return OpenRound.self
            case .closeRound: return CloseRound.self
            case .claim: return Claim.self
            case .submit: return Submit.self
            case .verdict: return Verdict.self
            case .newVersion: return NewVersion.self
            case .revenue: return Revenue.self
            case .commit: return Commit.self
            case .reveal: return Reveal.self
            }
        }
    }

    /// The payload of whichever action this is.
    public var payload: any ActionPayload {
        switch self {
        case let .genesis(a): return a
        case let .register(a): return a
        case let .openDomain(a): return a
        case let .openRound(a): return a
        case let .closeRound(a): return a
        case let .claim(a): return a
        case let .submit(a): return a
        case let .verdict(a): return a
        case let .newVersion(a): return a
        case let .revenue(a): return a
        case let .commit(a): return a
        case let .reveal(a): return a
        }
    }

    public var kind: String { type(of: payload).kind.rawValue }
    public var at: Int64 { payload.at }

    /// The payload in canonical JSON (RFC 8785 form).
    public func payloadJSON() throws -> String {
        try JSONValueEncoder().encode(payload).canonicalText
    }

    /// Reads a stored (kind, payload) pair; a payload with a field the action does not
    /// have is refused, since it would be signed without meaning anything.
    public static func decode(kind: String, payload: String) throws -> LedgerAction {
        guard let k = Kind(rawValue: kind) else { throw LedgerError.refused("unknown event kind \(kind)") }
        return try decode(kind: k, payload: try JSONValue.parse(payload))
    }

    static func decode(kind: Kind, payload: JSONValue) throws -> LedgerAction {
        do {
            return try StrictJSON.decode(kind.payloadType, from: payload, file: "\(kind.rawValue) payload", rejectUnknownKeys: true).action
        } catch {
            throw LedgerError.refused("\(error)")
        }
    }

    /// The bytes an actor signs: kind and payload, canonical.
    public static func signedBytes(kind: String, payload: String) -> [UInt8] {
        Array("{\"kind\":\"\(kind)\",\"payload\":\(payload)}".utf8)
    }
}

/// The payload of one kind of action: its time, and how it becomes a `LedgerAction`.
public protocol ActionPayload: Codable, Sendable {
    static var kind: LedgerAction.Kind { get }
    var at: Int64 { get }
    var action: LedgerAction { get }
}

/// An action travels as `{"kind": K, "payload": {...}}`: the same shape the actor signs.
extension LedgerAction: Codable {
    enum CodingKeys: String, CodingKey { case kind, payload }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let kind = try c.decode(Kind.self, forKey: .kind)
        self = try kind.payloadType.init(from: try c.superDecoder(forKey: .payload)).action
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(type(of: payload).kind, forKey: .kind)
        try payload.encode(to: c.superEncoder(forKey: .payload))
    }
}

extension LedgerAction.Genesis: ActionPayload { public static let kind = LedgerAction.Kind.genesis; public var action: LedgerAction { .genesis(self) } }
extension LedgerAction.Register: ActionPayload { public static let kind = LedgerAction.Kind.register; public var action: LedgerAction { .register(self) } }
extension LedgerAction.OpenDomain: ActionPayload { public static let kind = LedgerAction.Kind.openDomain; public var action: LedgerAction { .openDomain(self) } }
extension LedgerAction.OpenRound: ActionPayload { public static let kind = LedgerAction.Kind.openRound; public var action: LedgerAction { .openRound(self) } }
extension LedgerAction.CloseRound: ActionPayload { public static let kind = LedgerAction.Kind.closeRound; public var action: LedgerAction { .closeRound(self) } }
extension LedgerAction.Claim: ActionPayload { public static let kind = LedgerAction.Kind.claim; public var action: LedgerAction { .claim(self) } }
extension LedgerAction.Submit: ActionPayload { public static let kind = LedgerAction.Kind.submit; public var action: LedgerAction { .submit(self) } }
extension LedgerAction.Verdict: ActionPayload { public static let kind = LedgerAction.Kind.verdict; public var action: LedgerAction { .verdict(self) } }
extension LedgerAction.NewVersion: ActionPayload { public static let kind = LedgerAction.Kind.newVersion; public var action: LedgerAction { .newVersion(self) } }
extension LedgerAction.Revenue: ActionPayload { public static let kind = LedgerAction.Kind.revenue; public var action: LedgerAction { .revenue(self) } }
extension LedgerAction.Commit: ActionPayload { public static let kind = LedgerAction.Kind.commit; public var action: LedgerAction { .commit(self) } }
extension LedgerAction.Reveal: ActionPayload { public static let kind = LedgerAction.Kind.reveal; public var action: LedgerAction { .reveal(self) } }

/// An action signed by its actor, ready to be appended. Its canonical payload is
/// computed once, here.
public struct SignedAction: Sendable {
    public let action: LedgerAction
    public let actor: String
    public let signature: String
    public let payload: String

    public init(_ action: LedgerAction, key: ParticipantKey) throws {
        self.action = action
        actor = key.publicHex
        payload = try action.payloadJSON()
        signature = Hex.encode(try key.sign(LedgerAction.signedBytes(kind: action.kind, payload: payload)))
    }

    public init(action: LedgerAction, actor: String, signature: String) throws {
        self.action = action
        self.actor = actor
        self.signature = signature
        payload = try action.payloadJSON()
    }

    /// An action read back from a stored event, whose payload is already canonical.
    init(action: LedgerAction, actor: String, signature: String, storedPayload: String) {
        self.action = action
        self.actor = actor
        self.signature = signature
        payload = storedPayload
    }

    /// What the actor's signature must cover, for checking; nil when the actor or the
    /// signature is not hex of the right length.
    var signatureCheck: SignatureCheck? {
        Self.signatureCheck(kind: action.kind, payload: payload, actor: actor, signature: signature)
    }

    static func signatureCheck(kind: String, payload: String, actor: String, signature: String) -> SignatureCheck? {
        guard let key = Hex.decode(actor), key.count == 32, let sig = Hex.decode(signature), sig.count == 64 else { return nil }
        return SignatureCheck(publicKey: key, message: LedgerAction.signedBytes(kind: kind, payload: payload), signature: sig)
    }

    /// The first action (by position) whose signature is bad, checking them in batches
    /// on every core when `parallel`.
    static func firstBadSignature(_ actions: [SignedAction], parallel: Bool) -> Int? {
        let checks = actions.map(\.signatureCheck)
        return firstBad(checks, parallel: parallel)
    }

    /// The first position whose check is missing or fails.
    static func firstBad(_ checks: [SignatureCheck?], parallel: Bool) -> Int? {
        let part = { (range: Range<Int>) -> Int? in
            // Up to the first missing check: any bad signature before it comes first.
            let end = range.first { checks[$0] == nil } ?? range.upperBound
            let present = checks[range.lowerBound..<end].map { $0! }
            if let bad = SignatureBatch.firstInvalid(present) { return range.lowerBound + bad }
            return end < range.upperBound ? end : nil
        }
        guard parallel else { return part(0..<checks.count) }
        // One slot per part; parts cover ascending ranges, so the first found is the first.
        var found = [Int?](repeating: nil, count: Parallel.workers)
        found.withUnsafeMutableBufferPointer { buf in
            let out = SlotWriter(buf.baseAddress!)
            Parallel.parts(checks.count) { p, range in out.set(p, part(range)) }
        }
        return found.lazy.compactMap { $0 }.first
    }
}

public enum LedgerError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The action breaks a rule; nothing was recorded.
    case refused(String)
    /// The stored ledger is damaged.
    case corrupt(String)
    public var description: String {
        switch self {
        case let .refused(s): return "refused: \(s)"
        case let .corrupt(s): return "ledger corrupt: \(s)"
        }
    }
}
