import Foundation
import TesseraEngine
import TesseraLibrary

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
        public init(at: Int64, domain: String, period: String, amount: Int64, usage: [Usage]) {
            self.at = at; self.domain = domain; self.period = period; self.amount = amount; self.usage = usage
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

    public var kind: String {
        switch self {
        case .genesis: return "genesis"
        case .register: return "register"
        case .openDomain: return "open_domain"
        case .openRound: return "open_round"
        case .closeRound: return "close_round"
        case .claim: return "claim"
        case .submit: return "submit"
        case .verdict: return "verdict"
        case .newVersion: return "new_version"
        case .revenue: return "revenue"
        case .commit: return "commit"
        case .reveal: return "reveal"
        }
    }

    public var at: Int64 {
        switch self {
        case let .genesis(a): return a.at
        case let .register(a): return a.at
        case let .openDomain(a): return a.at
        case let .openRound(a): return a.at
        case let .closeRound(a): return a.at
        case let .claim(a): return a.at
        case let .submit(a): return a.at
        case let .verdict(a): return a.at
        case let .newVersion(a): return a.at
        case let .revenue(a): return a.at
        case let .commit(a): return a.at
        case let .reveal(a): return a.at
        }
    }

    /// The payload in canonical JSON (sorted keys, no whitespace).
    public func payloadJSON() throws -> String {
        let enc = JSONEncoder()
        let data: Data
        switch self {
        case let .genesis(a): data = try enc.encode(a)
        case let .register(a): data = try enc.encode(a)
        case let .openDomain(a): data = try enc.encode(a)
        case let .openRound(a): data = try enc.encode(a)
        case let .closeRound(a): data = try enc.encode(a)
        case let .claim(a): data = try enc.encode(a)
        case let .submit(a): data = try enc.encode(a)
        case let .verdict(a): data = try enc.encode(a)
        case let .newVersion(a): data = try enc.encode(a)
        case let .revenue(a): data = try enc.encode(a)
        case let .commit(a): data = try enc.encode(a)
        case let .reveal(a): data = try enc.encode(a)
        }
        return String(decoding: try JSONValue.parse(data).canonicalBytes, as: UTF8.self)
    }

    public static func decode(kind: String, payload: String) throws -> LedgerAction {
        let d = JSONDecoder(), data = Data(payload.utf8)
        switch kind {
        case "genesis": return .genesis(try d.decode(Genesis.self, from: data))
        case "register": return .register(try d.decode(Register.self, from: data))
        case "open_domain": return .openDomain(try d.decode(OpenDomain.self, from: data))
        case "open_round": return .openRound(try d.decode(OpenRound.self, from: data))
        case "close_round": return .closeRound(try d.decode(CloseRound.self, from: data))
        case "claim": return .claim(try d.decode(Claim.self, from: data))
        case "submit": return .submit(try d.decode(Submit.self, from: data))
        case "verdict": return .verdict(try d.decode(Verdict.self, from: data))
        case "new_version": return .newVersion(try d.decode(NewVersion.self, from: data))
        case "revenue": return .revenue(try d.decode(Revenue.self, from: data))
        case "commit": return .commit(try d.decode(Commit.self, from: data))
        case "reveal": return .reveal(try d.decode(Reveal.self, from: data))
        default: throw LedgerError.refused("unknown event kind \(kind)")
        }
    }

    /// The bytes an actor signs: kind and payload, canonical.
    public static func signedBytes(kind: String, payload: String) -> [UInt8] {
        Array("{\"kind\":\"\(kind)\",\"payload\":\(payload)}".utf8)
    }
}

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
