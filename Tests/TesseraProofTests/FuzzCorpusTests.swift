import Foundation
import Testing
import TesseraCore
import TesseraTestSupport

/// Every input in the committed fuzz corpora (Fuzz/corpus/TARGET: seeds, and inputs that
/// once crashed a parser) goes through its parser again, in the plainly built
/// `tessera-fuzz`: none may trap. scripts/fuzz runs the coverage-guided fuzzer itself.
@Suite struct FuzzCorpusTests {
    @Test func theCorporaReplayWithoutATrap() throws {
        let binary = ReferenceFixtures.fuzzBinary
        guard FileManager.default.isExecutableFile(atPath: binary) else {
            Issue.record("\(binary) not found; build it first (swift build)")
            return
        }
        let corpora = (ReferenceFixtures.projectRoot as NSString).appendingPathComponent("Fuzz/corpus")
        let targets = try FileManager.default.contentsOfDirectory(atPath: corpora).sorted()
        #expect(targets.count == 17, "\(targets)")
        for t in targets {
            let (outcome, _) = try CrashRun.run([t, (corpora as NSString).appendingPathComponent(t)], binary: binary)
            #expect(outcome == .exited(0), "\(t): \(outcome)")
        }
    }
}
