import Foundation
import Testing
import TesseraBenchmarks
import TesseraTestSupport

/// The endpoint's load benchmark, at its smallest: a real `tessera serve --serve-model`
/// process, two clients streaming one completion each; every token is counted from the
/// completions' usage and the first token comes before the end of its request.
@Suite(.serialized) struct CompletionsBenchmarkTests {
    @Test func twoClientsStreamTheirCompletions() async throws {
        guard FileManager.default.isExecutableFile(atPath: ReferenceFixtures.binary) else {
            Issue.record("tessera binary not found at \(ReferenceFixtures.binary); build it first (swift build) or set TESSERA_BIN")
            return
        }
        let r = try await CompletionsBenchmark.run(binary: ReferenceFixtures.binary, policy: ReferenceFixtures.marketRules,
                                                   clients: 2, perClient: 1, maxBatch: 2) { _ in }
        #expect(r.requests == 2)
        #expect(r.completionTokens == 2 * CompletionsBenchmark.newTokens)
        #expect(r.ttftP50Ms > 0 && r.ttftP50Ms <= r.requestP50Ms)
        #expect(r.tokensPerSecond > 0)
    }
}
