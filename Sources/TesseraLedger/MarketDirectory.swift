import Foundation
import TesseraEngine
import TesseraLibrary

/// A market on disk: `DIR/ledger.sqlite`, `DIR/library/` (its expert library) and
/// `DIR/policy/` (its copy of market.toml and domains/).
public struct MarketDirectory: Sendable {
    public let path: String
    public init(path: String) { self.path = path }

    public var ledgerPath: String { (path as NSString).appendingPathComponent("ledger.sqlite") }
    public var libraryPath: String { (path as NSString).appendingPathComponent("library") }
    public var policyPath: String { (path as NSString).appendingPathComponent("policy/market.toml") }
    public var domainsPath: String { (path as NSString).appendingPathComponent("policy/domains") }

    public func policy() throws -> MarketPolicy { try MarketPolicy.load(policyPath) }
    public func domains() throws -> [DomainPolicy] { try DomainPolicy.loadAll(domainsPath) }

    /// Opens the ledger; the market must have been created.
    public func open() throws -> Ledger {
        guard FileManager.default.fileExists(atPath: ledgerPath) else {
            throw LedgerError.refused("\(path) is not a market (no ledger.sqlite); create it with tessera market init")
        }
        return try Ledger(store: try SQLiteLedgerStore(path: ledgerPath), policy: try policy())
    }

    /// Creates a market: copies the policy folder (checked first) and the library, then
    /// records the genesis event, signed by the operator, giving the publisher the genesis
    /// units of every expert's base version, and opens every domain of the policy.
    public static func create(at path: String, policyFolder: String, library: String, operatorKey: ParticipantKey,
                              publisher: String, at time: Int64) throws -> Ledger {
        let fm = FileManager.default
        let market = MarketDirectory(path: path)
        guard !fm.fileExists(atPath: market.ledgerPath) else { throw LedgerError.refused("\(path) already holds a market") }
        let policyFile = (policyFolder as NSString).appendingPathComponent("market.toml")
        let policy = try MarketPolicy.load(policyFile)
        let domains = try DomainPolicy.loadAll((policyFolder as NSString).appendingPathComponent("domains"))
        let lib = try ExpertLibrary(directory: library)
        try fm.createDirectory(atPath: market.domainsPath, withIntermediateDirectories: true)
        try fm.copyItem(atPath: policyFile, toPath: market.policyPath)
        for f in (try? fm.contentsOfDirectory(atPath: (policyFolder as NSString).appendingPathComponent("domains"))) ?? [] where f.hasSuffix(".toml") {
            try fm.copyItem(atPath: (policyFolder as NSString).appendingPathComponent("domains/\(f)"), toPath: (market.domainsPath as NSString).appendingPathComponent(f))
        }
        if (library as NSString).standardizingPath != (market.libraryPath as NSString).standardizingPath {
            try fm.copyItem(atPath: library, toPath: market.libraryPath)
        }
        let ledger = try Ledger(store: try SQLiteLedgerStore(path: market.ledgerPath), policy: policy)
        let policyHash = try ContentHash.sha256(file: market.policyPath)
        var actions = [try SignedAction(.genesis(.init(at: time, publisher: publisher,
                                                        experts: lib.manifest.experts.map { ExpertRef(layer: $0.layer, expert: $0.expert, version: $0.versions[0].hash) },
                                                        policySHA256: policyHash)), key: operatorKey)]
        for d in domains { actions.append(try SignedAction(.openDomain(.init(at: time, name: d.name)), key: operatorKey)) }
        try ledger.append(actions)
        return ledger
    }
}
