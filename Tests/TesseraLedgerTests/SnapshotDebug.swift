import Foundation
import Testing
@testable import TesseraEngine
@testable import TesseraLibrary
@testable import TesseraLedger

@Suite struct SnapshotTests {
    /// Snapshots equal the state replayed from the events, a reopened ledger starts from
    /// the latest one, and a snapshot edited behind the ledger's back fails verify.
    @Test func snapshotsMatchTheReplayedState() throws {
        let dir = TempDir()
        let (actions, _) = try LedgerBenchmark.actions(count: 450)
        let ledger = try Ledger(store: try SQLiteLedgerStore(path: dir.sub("l.sqlite")), policy: LedgerBenchmark.policy, snapshotInterval: 100)
        var k = 0
        while k < actions.count {
            try ledger.append(Array(actions[k..<min(actions.count, k + 37)]))
            k += 37
        }
        let live = try ledger.currentState()
        let snap = try #require(try ledger.store.read { try $0.snapshot(atOrBefore: .max) })
        #expect(snap.seq == live.seq / 100 * 100)
        var replayed = LedgerState(policy: LedgerBenchmark.policy)
        for e in try ledger.events(since: 0, limit: Int(snap.seq)) {
            _ = try replayed.apply(try SignedAction(action: try LedgerAction.decode(kind: e.kind, payload: e.payload), actor: e.actor, signature: e.signature),
                                   seq: e.seq, hash: e.hash, checkSignature: false)
        }
        #expect(try JSONDecoder().decode(LedgerState.self, from: snap.data) == replayed)
        let reopened = try Ledger(store: try SQLiteLedgerStore(path: dir.sub("l.sqlite")), policy: LedgerBenchmark.policy)
        #expect(try reopened.currentState() == live)
        #expect(try Ledger.verify(store: ledger.store, policy: LedgerBenchmark.policy).ok)
        // Large amounts survive canonical JSON exactly (no rounding through Double).
        #expect(live.rounds["r"]?.closesAt == Int64.max / 2)
        var edited = try JSONDecoder().decode(LedgerState.self, from: snap.data)
        _ = try edited.apply(actions[5], seq: edited.seq + 1, hash: String(repeating: "f", count: 64), checkSignature: false)
        try ledger.store.write { try $0.saveSnapshot(seq: snap.seq, data: try JSONEncoder().encode(edited)) }
        let v = try Ledger.verify(store: ledger.store, policy: LedgerBenchmark.policy)
        #expect(!v.ok && v.firstBadEvent == snap.seq, "\(v)")
    }
}
