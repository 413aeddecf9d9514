import Foundation
import GRDB
import Testing
@testable import TesseraEngine
@testable import TesseraLibrary
@testable import TesseraLedger
import TesseraCore
import TesseraTestSupport

@Suite struct MigrationTests {
    @Test func aLedgerWrittenUnderTheFirstSchemaIsCarriedOverWhole() throws {
        let dir = TemporaryDirectory()
        let path = dir.sub("ledger.sqlite")
        let (actions, owner) = try SyntheticLedger.actions(count: 400)
        do {
            let pool = try DatabasePool(path: path)
            try SQLiteLedgerStore.migrator.migrate(pool, upTo: "v1")
            try pool.write { db in try writeChain(actions, into: SQLiteLedgerStore.Access(db: db)) }
            #expect(try pool.read { db in try Bool.fetchOne(db, sql: "SELECT sql LIKE '%WITHOUT ROWID%' FROM sqlite_master WHERE name = 'payouts'") } == false)
        }
        let ledger = try Ledger(store: try SQLiteLedgerStore(path: path), policy: SyntheticLedger.policy)
        #expect(try ledger.store.read { try $0.eventCount() } == Int64(actions.count))
        #expect(try Ledger.verify(store: ledger.store, policy: SyntheticLedger.policy).ok)
        #expect(try !ledger.shares(owner: owner).holdings.isEmpty)
        let pool = try DatabasePool(path: path)
        #expect(try pool.read { db in try Bool.fetchOne(db, sql: "SELECT sql LIKE '%WITHOUT ROWID%' FROM sqlite_master WHERE name = 'payouts'") } == true)
        #expect(try pool.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM sqlite_master WHERE name IN ('payouts_event', 'payouts_seq', 'payout_totals_recipient', 'claims_seq')") } == 0)
    }
}
