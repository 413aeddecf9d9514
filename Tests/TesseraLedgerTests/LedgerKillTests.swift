import Foundation
import Testing
@testable import TesseraLedger
import TesseraCore
import TesseraTestSupport

/// SIGKILLs a process appending batches to a ledger at named places — inside a batch's
/// transaction before it commits, and just after a commit — and checks that the ledger
/// always verifies and holds whole batches only: the batches committed before the kill,
/// never part of the one in flight.
@Suite(.serialized) struct LedgerKillTests {
    @Test(arguments: StoreKind.tested) func killedWritersLeaveWholeBatchesThatVerify(_ kind: StoreKind) throws {
        guard FileManager.default.isExecutableFile(atPath: ReferenceFixtures.binary) else {
            Issue.record("tessera binary not found at \(ReferenceFixtures.binary); build it first (swift build) or set TESSERA_BIN")
            return
        }
        let dir = TemporaryDirectory("ledger-kill")
        let db = try TestDatabase(kind, in: dir)
        let market = dir.sub("market")
        try FileManager.default.createDirectory(atPath: market + "/policy/domains", withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: ReferenceFixtures.marketRules + "/market.toml", toPath: market + "/policy/market.toml")
        let policy = try MarketPolicy.load(market + "/policy/market.toml")
        let op = ParticipantKey.generate()
        try op.save(to: dir.sub("op.key"))
        // The market directory names its ledger: the SQLite file in it, or the PostgreSQL
        // database its ledger.database file names.
        let store: any LedgerStore
        if let url = db.url {
            try AtomicFile.write(Array("\(url)\n".utf8), to: market + "/ledger.database")
            store = try db.store()
        } else {
            store = try SQLiteLedgerStore(path: market + "/ledger.sqlite")
        }
        let ledger = try Ledger(store: store, policy: policy)
        try ledger.append(try SignedAction(.genesis(.init(at: 1, publisher: op.publicHex, experts: [ExpertRef(layer: 0, expert: 0, version: fakeHash("v"))],
                                                           policySHA256: try ContentHash.sha256(file: market + "/policy/market.toml"))), key: op))
        var previous = try ledger.store.read { try $0.eventCount() }
        let batch: Int64 = 50
        // (crash point, batches of this run committed before the kill)
        let plan = [("ledger.commit#1", 0), ("ledger.committed#1", 1), ("ledger.commit#3", 2), ("ledger.committed#4", 4), ("ledger.commit#6", 5)]
        for (i, (point, committed)) in plan.enumerated() {
            let (outcome, stderr) = try CrashRun.run(["ledger", "stress", "--market", market, "--key", dir.sub("op.key"), "--count", "400",
                                                      "--batch", String(batch), "--at", String(1000 * (i + 1))], crashAt: point)
            #expect(outcome == .killed, "\(point): \(outcome) \(stderr)")
            let report = try Ledger.verify(store: try db.url == nil ? SQLiteLedgerStore(path: market + "/ledger.sqlite") : db.store(), policy: policy)
            #expect(report.ok, "after the kill at \(point): \(report.problem ?? "")")
            let count = try ledger.store.read { try $0.eventCount() }
            #expect(count - previous == Int64(committed) * batch, "killed at \(point): \(count - previous) new events")
            previous = count
        }
        // The ledger takes appends again after all of that.
        let (outcome, _) = try CrashRun.run(["ledger", "stress", "--market", market, "--key", dir.sub("op.key"), "--count", "100",
                                              "--batch", String(batch), "--at", "99000"])
        #expect(outcome == .exited(0))
        #expect(try ledger.store.read { try $0.eventCount() } == previous + 100)
    }
}
