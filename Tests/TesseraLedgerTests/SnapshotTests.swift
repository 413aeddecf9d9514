import Foundation
import Testing
@testable import TesseraEngine
@testable import TesseraLibrary
@testable import TesseraLedger
import TesseraCore
import TesseraTestSupport

@Suite struct SnapshotTests {
    /// Snapshots equal the state replayed from the events, a reopened ledger starts from
    /// the latest one, and a snapshot edited behind the ledger's back fails verify.
    @Test(arguments: StoreKind.tested) func snapshotsMatchTheReplayedState(_ store: StoreKind) throws {
        let db = try TestDatabase(store)
        let (actions, _) = try SyntheticLedger.actions(count: 450)
        let ledger = try Ledger(store: try db.store(), policy: SyntheticLedger.policy, snapshotInterval: 100)
        var k = 0
        while k < actions.count {
            try ledger.append(Array(actions[k..<min(actions.count, k + 37)]))
            k += 37
        }
        let live = try ledger.currentState()
        let snap = try #require(try ledger.store.read { try $0.snapshot(atOrBefore: .max) })
        #expect(snap.seq == live.seq / 100 * 100)
        var replayed = LedgerState(policy: SyntheticLedger.policy)
        for e in try ledger.events(since: 0, limit: Int(snap.seq)) {
            _ = try replayed.apply(try SignedAction(action: try LedgerAction.decode(kind: e.kind, payload: e.payload), actor: e.actor, signature: e.signature),
                                   seq: e.seq, hash: e.hash, checkSignature: false)
        }
        #expect(snap.data.starts(with: LedgerState.snapshotMagic))
        #expect(try LedgerState(snapshot: snap.data, seq: snap.seq, policy: SyntheticLedger.policy) == replayed)
        // One state, one encoding: re-encoding the decoded state gives the same bytes.
        #expect(try replayed.snapshotBytes() == [UInt8](snap.data))
        let reopened = try Ledger(store: try db.store(), policy: SyntheticLedger.policy)
        #expect(try reopened.currentState() == live)
        #expect(try Ledger.verify(store: ledger.store, policy: SyntheticLedger.policy).ok)
        // Large amounts survive exactly.
        #expect(live.rounds["r"]?.closesAt == Int64.max / 2)
        var edited = replayed
        _ = try edited.apply(actions[5], seq: edited.seq + 1, hash: String(repeating: "f", count: 64), checkSignature: false)
        try ledger.store.write { try $0.saveSnapshot(seq: snap.seq, data: Data(try edited.snapshotBytes())) }
        let v = try Ledger.verify(store: ledger.store, policy: SyntheticLedger.policy)
        #expect(!v.ok && v.firstBadEvent == snap.seq, "\(v)")
        // A JSON snapshot written by an earlier version is still read and checked.
        try ledger.store.write { try $0.saveSnapshot(seq: snap.seq, data: try JSONEncoder().encode(replayed)) }
        #expect(try Ledger.verify(store: ledger.store, policy: SyntheticLedger.policy).ok)
        #expect(try Ledger(store: try db.store(), policy: SyntheticLedger.policy).currentState() == live)
        // A version-1 snapshot (before the ledger kept its clock) is read without one and verified.
        let v1 = try replayed.snapshotBytes(version: 1)
        #expect(v1.starts(with: LedgerState.snapshotMagicV1) && replayed.clock != nil)
        var withoutClock = replayed
        withoutClock.clock = nil
        #expect(try LedgerState(snapshot: Data(v1), seq: snap.seq, policy: SyntheticLedger.policy) == withoutClock)
        try ledger.store.write { try $0.saveSnapshot(seq: snap.seq, data: Data(v1)) }
        #expect(try Ledger.verify(store: ledger.store, policy: SyntheticLedger.policy).ok)
    }

    @Test func damagedSnapshotsAreErrorsNamingTheEventNeverCrashes() throws {
        var state = LedgerState(policy: SyntheticLedger.policy)
        let (actions, _) = try SyntheticLedger.actions(count: 300)
        for (i, a) in actions.enumerated() { _ = try state.apply(a, seq: Int64(i + 1), hash: String(repeating: "a", count: 64), checkSignature: false) }
        let bytes = try state.snapshotBytes()
        #expect(try LedgerState(snapshot: Data(bytes), seq: 7, policy: SyntheticLedger.policy) == state)
        for cut in [0, 10, LedgerState.snapshotMagic.count + 3, bytes.count / 2, bytes.count - 1] {
            #expect { try LedgerState(snapshot: Data(bytes.prefix(cut)), seq: 7, policy: SyntheticLedger.policy) } throws: { "\($0)".contains("snapshot at event 7") }
        }
        var rng = SplitMix64(seed: 5)
        for _ in 0..<300 {
            var flipped = bytes
            let at = LedgerState.snapshotMagic.count + Int(rng.next() % UInt64(bytes.count - LedgerState.snapshotMagic.count))
            flipped[at] ^= UInt8(1 + rng.next() % 255)
            if let decoded = try? LedgerState(snapshot: Data(flipped), seq: 7, policy: SyntheticLedger.policy) {
                #expect(decoded != state, "a flipped byte at \(at) decoded to the same state")
            }
        }
        var other = SyntheticLedger.policy
        other.quorum += 1
        #expect { try LedgerState(snapshot: Data(bytes), seq: 7, policy: other) } throws: { "\($0)".contains("another policy") }
        #expect { try LedgerState(snapshot: Data(bytes + [0]), seq: 7, policy: SyntheticLedger.policy) } throws: { "\($0)".contains("left over") }
    }
}
