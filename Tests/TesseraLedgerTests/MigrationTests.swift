import Foundation
import GRDB
import Testing
@testable import TesseraEngine
@testable import TesseraLibrary
@testable import TesseraLedger

@Suite struct MigrationTests {
    @Test func aLedgerWrittenUnderTheFirstSchemaIsCarriedOverWhole() throws {
        let dir = TempDir()
        let path = dir.sub("ledger.sqlite")
        let (actions, owner) = try LedgerBenchmark.actions(count: 400)
        do {
            let pool = try DatabasePool(path: path)
            try SQLiteLedgerStore.migrator.migrate(pool, upTo: "v1")
            var state = LedgerState(policy: LedgerBenchmark.policy)
            try pool.write { db in
                let w = SQLiteLedgerStore.Access(db: db)
                for (i, a) in actions.enumerated() {
                    let seq = Int64(i + 1)
                    let hash = Ledger.eventHash(seq: seq, kind: a.action.kind, payload: a.payload, actor: a.actor, signature: a.signature, prev: state.headHash)
                    try w.append(StoredEvent(seq: seq, kind: a.action.kind, payload: a.payload, actor: a.actor, signature: a.signature, prevHash: state.headHash,
                                             hash: hash, idempotencyKey: Ledger.idempotencyKey(kind: a.action.kind, payload: a.payload, actor: a.actor), at: a.action.at))
                    try w.upsert(try state.apply(a, seq: seq, hash: hash, checkSignature: false))
                }
            }
            #expect(try pool.read { db in try Bool.fetchOne(db, sql: "SELECT sql LIKE '%WITHOUT ROWID%' FROM sqlite_master WHERE name = 'payouts'") } == false)
        }
        let ledger = try Ledger(store: try SQLiteLedgerStore(path: path), policy: LedgerBenchmark.policy)
        #expect(try ledger.store.read { try $0.eventCount() } == Int64(actions.count))
        #expect(try Ledger.verify(store: ledger.store, policy: LedgerBenchmark.policy).ok)
        #expect(try !ledger.shares(owner: owner).holdings.isEmpty)
        let pool = try DatabasePool(path: path)
        #expect(try pool.read { db in try Bool.fetchOne(db, sql: "SELECT sql LIKE '%WITHOUT ROWID%' FROM sqlite_master WHERE name = 'payouts'") } == true)
        #expect(try pool.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM sqlite_master WHERE name IN ('payouts_event', 'payouts_seq', 'payout_totals_recipient', 'claims_seq')") } == 0)
    }
}
