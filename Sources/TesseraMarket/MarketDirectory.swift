import Foundation
import TesseraCore
import TesseraLedger
import TesseraLibrary
import TesseraProof

/// A market on disk: `DIR/ledger.sqlite`, `DIR/library/` (its expert library) and
/// `DIR/policy/` (its copy of market.toml and domains/).
public struct MarketDirectory: Sendable {
    public let path: String
    public init(path: String) { self.path = path }

    public var ledgerPath: String { (path as NSString).appendingPathComponent("ledger.sqlite") }
    public var libraryPath: String { (path as NSString).appendingPathComponent("library") }
    public var policyFolder: String { (path as NSString).appendingPathComponent("policy") }
    public var policyPath: String { (policyFolder as NSString).appendingPathComponent("market.toml") }
    public var domainsPath: String { (policyFolder as NSString).appendingPathComponent("domains") }

    public var exists: Bool { FileManager.default.fileExists(atPath: ledgerPath) }

    /// The market's rules (every file checked).
    public func rules() throws -> MarketPolicyFolder { try MarketPolicyFolder(path: policyFolder) }
    public func policy() throws -> MarketPolicy { try MarketPolicy.load(policyPath) }
    public func proofPolicy() throws -> ProofPolicy { try ProofPolicy.load(policyPath) }
    public func library() throws -> ExpertLibrary { try ExpertLibrary(directory: libraryPath) }

    /// Opens the ledger; the market must have been created.
    public func open() throws -> Ledger {
        guard exists else {
            throw LedgerError.refused("\(path) is not a market (no ledger.sqlite); create it with tessera market init")
        }
        return try Ledger(store: try SQLiteLedgerStore(path: ledgerPath), policy: try policy())
    }

    /// Creates a market: checks every input first (rules, library, keys, an empty target),
    /// then copies the rules and the library and records the genesis event, signed by the
    /// operator, giving the publisher the genesis units of every expert's current version,
    /// and opens every domain of the rules.
    public static func create(at path: String, policyFolder: String, library: String, operatorKey: ParticipantKey,
                              publisher: String, at time: Int64) throws -> Ledger {
        let fm = FileManager.default
        let market = MarketDirectory(path: path)
        guard !market.exists else { throw LedgerError.refused("\(path) already holds a market") }
        for leftover in [market.policyFolder, market.libraryPath] where fm.fileExists(atPath: leftover) {
            throw LedgerError.refused("\(leftover) already exists; a new market needs a directory without policy/ and library/")
        }
        let rules = try MarketPolicyFolder(path: policyFolder)
        guard ParticipantKey.isPublicKey(publisher) else {
            throw LedgerError.refused("publisher \(publisher.prefix(20)) is not a public key (64 lower-case hex digits)")
        }
        let lib = try ExpertLibrary(directory: library)

        do {
            try fm.createDirectory(atPath: market.domainsPath, withIntermediateDirectories: true)
            try fm.copyItem(atPath: rules.marketFile, toPath: market.policyPath)
            for d in rules.domains {
                try fm.copyItem(atPath: (rules.domainsFolder as NSString).appendingPathComponent("\(d.name).toml"),
                                toPath: (market.domainsPath as NSString).appendingPathComponent("\(d.name).toml"))
            }
            if (library as NSString).standardizingPath != (market.libraryPath as NSString).standardizingPath {
                try fm.copyItem(atPath: library, toPath: market.libraryPath)
            }
            let ledger = try Ledger(store: try SQLiteLedgerStore(path: market.ledgerPath), policy: rules.ledger)
            let policyHash = try ContentHash.sha256(file: market.policyPath)
            var actions = [try SignedAction(.genesis(.init(at: time, publisher: publisher,
                                                            experts: lib.manifest.experts.map { ExpertRef(layer: $0.layer, expert: $0.expert, version: $0.head.hash) },
                                                            policySHA256: policyHash)), key: operatorKey)]
            for d in rules.domains { actions.append(try SignedAction(.openDomain(.init(at: time, name: d.name)), key: operatorKey)) }
            try ledger.append(actions)
            return ledger
        } catch {
            // Nothing half-made stays behind: a retry starts from the same empty place.
            for made in [market.ledgerPath, market.ledgerPath + "-wal", market.ledgerPath + "-shm", market.policyFolder, market.libraryPath]
            where (made as NSString).standardizingPath != (library as NSString).standardizingPath {
                try? fm.removeItem(atPath: made)
            }
            throw error
        }
    }
}
