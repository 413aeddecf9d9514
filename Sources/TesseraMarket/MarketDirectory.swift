import Foundation
import TesseraCore
import TesseraLedger
import TesseraLedgerPostgres
import TesseraLibrary
import TesseraProof

/// A market on disk: `DIR/ledger.sqlite` (or `DIR/ledger.database`, naming the PostgreSQL
/// database that holds the ledger), `DIR/library/` (its expert library) and `DIR/policy/`
/// (its copy of market.toml and domains/).
public struct MarketDirectory: Sendable {
    public let path: String
    /// A PostgreSQL URL given by the user; otherwise `ledger.database` or SQLite decides.
    public let database: String?
    public init(path: String, database: String? = nil) {
        self.path = path
        self.database = database
    }

    public var ledgerPath: String { (path as NSString).appendingPathComponent("ledger.sqlite") }
    /// Names the ledger's PostgreSQL database (its URL without a password) when the market
    /// was created with one, so that later commands need not repeat it.
    public var databaseFile: String { (path as NSString).appendingPathComponent("ledger.database") }
    public var libraryPath: String { (path as NSString).appendingPathComponent("library") }
    public var policyFolder: String { (path as NSString).appendingPathComponent("policy") }
    public var policyPath: String { (policyFolder as NSString).appendingPathComponent("market.toml") }
    public var domainsPath: String { (policyFolder as NSString).appendingPathComponent("domains") }

    public var exists: Bool {
        let fm = FileManager.default
        return fm.fileExists(atPath: ledgerPath) || fm.fileExists(atPath: databaseFile)
    }

    /// The PostgreSQL database holding the ledger, or nil for the embedded SQLite file.
    public func databaseURL() throws -> PostgresURL? {
        if let database {
            return try PostgresURL(database)
        }
        guard let first = try databaseFileLines()?.first else { return nil }
        do { return try PostgresURL(first) } catch { throw LedgerError.refused("\(databaseFile): \(error)") }
    }

    private func databaseFileLines() throws -> [String]? {
        guard FileManager.default.fileExists(atPath: databaseFile) else { return nil }
        return try String(contentsOfFile: databaseFile, encoding: .utf8).split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
    }

    /// `ledger.database`: the URL (no password), then the hash of the market's first event,
    /// by which a database holding another market is told apart.
    static func databaseFileText(url: PostgresURL, genesis: String) -> String { "\(url)\ngenesis \(genesis)\n" }

    /// The first event's hash this directory knows its market by: recorded in
    /// ledger.database, or read from its own ledger.sqlite.
    func knownGenesis() throws -> String? {
        if let line = try databaseFileLines()?.first(where: { $0.hasPrefix("genesis ") }) { return String(line.dropFirst(8)) }
        guard FileManager.default.fileExists(atPath: ledgerPath) else { return nil }
        return try SQLiteLedgerStore(path: ledgerPath).read { try $0.events(after: 0, limit: 1) }.first?.hash
    }

    /// The ledger's store, checked to hold this market's ledger.
    public func openStore() throws -> any LedgerStore {
        guard let url = try databaseURL() else { return try SQLiteLedgerStore(path: ledgerPath) }
        let store = try PostgresLedgerStore(url: url)
        guard let genesis = try store.read({ try $0.events(after: 0, limit: 1) }).first else {
            throw LedgerError.refused("\(url) holds no market yet; create one with tessera market init --database \(url)")
        }
        guard case let .genesis(g) = try LedgerAction.decode(kind: genesis.kind, payload: genesis.payload) else {
            throw LedgerError.corrupt("\(url): event 1 is \(genesis.kind), not the genesis")
        }
        if let known = try knownGenesis(), known != genesis.hash {
            throw LedgerError.refused("\(url) holds another market: its first event is \(genesis.hash.prefix(12)), \(path)'s market began with \(known.prefix(12))")
        }
        let mine = try ContentHash.sha256(file: policyPath)
        guard g.policySHA256 == mine else {
            throw LedgerError.refused("\(url) holds another market: its genesis names policy \(g.policySHA256.prefix(12)), \(path)'s market.toml is \(mine.prefix(12))")
        }
        return store
    }

    /// The market's rules (every file checked).
    public func rules() throws -> MarketPolicyFolder { try MarketPolicyFolder(path: policyFolder) }
    public func policy() throws -> MarketPolicy { try MarketPolicy.load(policyPath) }
    public func proofPolicy() throws -> ProofPolicy { try ProofPolicy.load(policyPath) }
    public func library() throws -> ExpertLibrary { try ExpertLibrary(directory: libraryPath) }

    /// Opens the ledger; the market must have been created.
    public func open() throws -> Ledger {
        guard exists || database != nil else {
            throw LedgerError.refused("\(path) is not a market (no ledger.sqlite or ledger.database); create it with tessera market init")
        }
        return try Ledger(store: try openStore(), policy: try policy())
    }

    /// Creates a market: checks every input first (rules, library, keys, an empty target),
    /// then copies the rules and the library and records the genesis event, signed by the
    /// operator, giving the publisher the genesis units of every expert's current version,
    /// and opens every domain of the rules.
    /// With `database`, the ledger goes to that PostgreSQL database, which must hold no
    /// ledger yet; the directory records its URL (without a password) in `ledger.database`.
    public static func create(at path: String, policyFolder: String, library: String, operatorKey: ParticipantKey,
                              publisher: String, at time: Int64, database: String? = nil) throws -> Ledger {
        let fm = FileManager.default
        let market = MarketDirectory(path: path, database: database)
        guard !market.exists else { throw LedgerError.refused("\(path) already holds a market") }
        // The database is reached and found empty before anything is copied.
        let postgres = try database.map { text -> PostgresLedgerStore in
            let store = try PostgresLedgerStore(url: try PostgresURL(text))
            if let first = try store.read({ try $0.head() }) {
                throw LedgerError.refused("\(store.url) already holds a ledger (\(first.seq) events); a new market needs an empty database")
            }
            return store
        }
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
            let store: any LedgerStore = try postgres ?? SQLiteLedgerStore(path: market.ledgerPath)
            let ledger = try Ledger(store: store, policy: rules.ledger)
            let policyHash = try ContentHash.sha256(file: market.policyPath)
            var actions = [try SignedAction(.genesis(.init(at: time, publisher: publisher,
                                                            experts: lib.manifest.experts.map { ExpertRef(layer: $0.layer, expert: $0.expert, version: $0.head.hash) },
                                                            policySHA256: policyHash)), key: operatorKey)]
            for d in rules.domains { actions.append(try SignedAction(.openDomain(.init(at: time, name: d.name)), key: operatorKey)) }
            // The database is written last: the one step that removing files cannot undo (and
            // it is one transaction); the directory's file names it once it holds the market.
            try ledger.append(actions)
            if let postgres {
                let genesis = try postgres.read { try $0.events(after: 0, limit: 1) }.first?.hash ?? ""
                try AtomicFile.write(Array(databaseFileText(url: postgres.url, genesis: genesis).utf8), to: market.databaseFile)
            }
            return ledger
        } catch {
            // Nothing half-made stays behind: a retry starts from the same empty place.
            for made in [market.ledgerPath, market.ledgerPath + "-wal", market.ledgerPath + "-shm", market.databaseFile, market.policyFolder, market.libraryPath]
            where (made as NSString).standardizingPath != (library as NSString).standardizingPath {
                try? fm.removeItem(atPath: made)
            }
            throw error
        }
    }
}

extension MarketDirectory {
    public struct LedgerMove: Sendable {
        public var events: Int64
        public var from: String
        public var to: String
        /// Where the old copy was left (renamed), for the SQLite file.
        public var keptAs: String?
    }

    /// Moves the market's ledger to `destination` (a PostgreSQL URL of an empty database, or
    /// `sqlite` for the directory's own ledger.sqlite): copied in one transaction, verified,
    /// and only then does the directory name the new home. The old copy is left where it
    /// was (an SQLite file renamed to ledger.sqlite.moved-SECONDS; rows in a database).
    public func moveLedger(to destination: String, progress: (Int64) -> Void = { _ in }) throws -> LedgerMove {
        let fm = FileManager.default
        let policy = try policy()
        let source = try openStore()
        let fromName = try databaseURL()?.description ?? ledgerPath
        let target: any LedgerStore
        let toName: String
        if destination == "sqlite" {
            guard try databaseURL() != nil else { throw LedgerError.refused("\(path)'s ledger already is its ledger.sqlite") }
            guard !fm.fileExists(atPath: ledgerPath) else { throw LedgerError.refused("\(ledgerPath) exists; move it away first") }
            target = try SQLiteLedgerStore(path: ledgerPath)
            toName = ledgerPath
        } else {
            let url = try PostgresURL(destination)
            if let current = try databaseURL(), current == url { throw LedgerError.refused("\(path)'s ledger already is in \(url)") }
            target = try PostgresLedgerStore(url: url)
            toName = url.description
        }
        do {
            let events = try LedgerCopy.copy(from: source, to: target, progress: progress)
            let report = try Ledger.verify(store: target, policy: policy)
            guard report.ok else {
                throw LedgerError.corrupt("the copy in \(toName) does not verify: event \(report.firstBadEvent ?? 0): \(report.problem ?? "")")
            }
            var kept: String?
            if destination == "sqlite" {
                if fm.fileExists(atPath: databaseFile) { try fm.removeItem(atPath: databaseFile) }
            } else {
                let genesis = try target.read { try $0.events(after: 0, limit: 1) }.first?.hash ?? ""
                try AtomicFile.write(Array(Self.databaseFileText(url: try PostgresURL(destination), genesis: genesis).utf8), to: databaseFile)
                if fm.fileExists(atPath: ledgerPath) {
                    let old = ledgerPath + ".moved-\(Int(Date().timeIntervalSince1970))"
                    for suffix in ["", "-wal", "-shm"] where fm.fileExists(atPath: ledgerPath + suffix) {
                        try fm.moveItem(atPath: ledgerPath + suffix, toPath: old + suffix)
                    }
                    kept = old
                }
            }
            return LedgerMove(events: events, from: fromName, to: toName, keptAs: kept)
        } catch {
            // A half-made SQLite target is removed; a PostgreSQL copy is one transaction.
            if destination == "sqlite" {
                for suffix in ["", "-wal", "-shm"] { try? fm.removeItem(atPath: ledgerPath + suffix) }
            }
            throw error
        }
    }
}
