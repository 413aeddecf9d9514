import Foundation
import Testing
@testable import TesseraEngine
@testable import TesseraLibrary
@testable import TesseraLedger
import TesseraCore
import TesseraTestSupport

/// Batch signature checking must still name the exact first event whose signature is bad,
/// wherever it falls in a page and in whichever core's share of it.
@Suite struct SignatureVerifyTests {
    /// Writes the actions as a correctly linked chain (bypassing the rules' signature check),
    /// with the signatures at `forged` swapped for another event's, and verifies it.
    static func verify(forged: [Int], in kind: StoreKind = .sqlite) throws -> VerifyReport {
        let db = try TestDatabase(kind)
        let store = try db.store()
        let (actions, _) = try SyntheticLedger.actions(count: 320)
        try store.write { w in
            try writeChain(actions, into: w) { i in forged.contains(i) ? actions[i - 1].signature : actions[i].signature }
        }
        return try Ledger.verify(store: store, policy: SyntheticLedger.policy)
    }

    @Test(arguments: StoreKind.tested) func theFirstForgedSignatureIsNamedWhereverItFalls(_ kind: StoreKind) throws {
        #expect(try Self.verify(forged: [], in: kind).ok)
        for forged in [[40], [250], [250, 300], [100, 250]] {
            let report = try Self.verify(forged: forged, in: kind)
            #expect(!report.ok && report.firstBadEvent == Int64(forged[0] + 1) && (report.problem ?? "").contains("bad signature"), "\(forged): \(report)")
        }
    }

    @Test func aBatchWithOneBadSignatureIsRefusedNamingIt() throws {
        let (actions, _) = try SyntheticLedger.actions(count: 200)
        #expect(SignedAction.firstBadSignature(actions, parallel: true) == nil)
        var bad = actions
        bad[150] = try SignedAction(action: bad[150].action, actor: bad[150].actor, signature: bad[149].signature)
        bad[170] = try SignedAction(action: bad[170].action, actor: bad[170].actor, signature: "zz")
        #expect(SignedAction.firstBadSignature(bad, parallel: true) == 150)
        #expect(SignedAction.firstBadSignature(Array(bad[151...]), parallel: false) == 19)
        #expect { try Ledger.checkSignatures(bad, parallel: true) } throws: { "\($0)".contains("bad signature by \(bad[150].actor.prefix(16))") }
    }
}
