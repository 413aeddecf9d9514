import Foundation
import Testing
@testable import TesseraEngine
@testable import TesseraLibrary
@testable import TesseraLedger
#if canImport(Glibc)
import Glibc
#endif

/// SIGKILLs a process appending batches to a market at spread-out moments: after every
/// kill the ledger verifies and holds whole batches only.
@Suite(.serialized) struct LedgerKillTests {
    static var projectRoot: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
    }
    static var binary: String { ProcessInfo.processInfo.environment["TESSERA_BIN"] ?? projectRoot + "/.build/debug/tessera" }

    @Test func killedWritersLeaveWholeBatchesThatVerify() throws {
        guard FileManager.default.isExecutableFile(atPath: Self.binary) else {
            Issue.record("tessera binary not found at \(Self.binary); build it first (swift build) or set TESSERA_BIN")
            return
        }
        let dir = TempDir()
        let market = MarketDirectory(path: dir.sub("market"))
        try FileManager.default.createDirectory(atPath: market.domainsPath, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: Self.projectRoot + "/Market/market.toml", toPath: market.policyPath)
        let policy = try market.policy()
        let op = ParticipantKey.generate()
        try op.save(to: dir.sub("op.key"))
        let ledger = try Ledger(store: try SQLiteLedgerStore(path: market.ledgerPath), policy: policy)
        try ledger.append(try SignedAction(.genesis(.init(at: 1, publisher: op.publicHex, experts: [ExpertRef(layer: 0, expert: 0, version: fakeHash("v"))],
                                                           policySHA256: fakeHash("p"))), key: op))
        var previous = try ledger.store.read { try $0.eventCount() }
        var interrupted = 0
        for i in 0..<10 {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: Self.binary)
            p.arguments = ["ledger", "stress", "--market", market.path, "--key", dir.sub("op.key"), "--count", "4000", "--batch", "250", "--at", String(1000 * (i + 1))]
            p.standardOutput = FileHandle.nullDevice
            p.standardError = FileHandle.nullDevice
            try p.run()
            usleep(UInt32(150_000 + i * 90_000))
            kill(p.processIdentifier, SIGKILL)
            p.waitUntilExit()
            let report = try Ledger.verify(store: try SQLiteLedgerStore(path: market.ledgerPath), policy: policy)
            #expect(report.ok, "after kill \(i): \(report.problem ?? "")")
            let count = try ledger.store.read { try $0.eventCount() }
            #expect((count - previous) % 250 == 0, "a batch of 250 was cut: \(count - previous) new events")
            if count - previous < 4000 { interrupted += 1 }
            previous = count
        }
        #expect(interrupted > 0, "no kill landed while the writer was working")
    }
}
