import Foundation
import Testing
import TesseraCore
import TesseraTestSupport
@testable import TesseraTokenizers

/// Against Hugging Face `tokenizers`: fixtures made by scripts/make_tokenizer_fixtures.py
/// (small tokenizers trained in the families' styles, and what `tokenizers` answered for
/// texts in many scripts).
@Suite struct TokenizerTests {
    static let directory = (ReferenceFixtures.projectRoot as NSString).appendingPathComponent("Tests/Fixtures/tokenizers")

    struct Case: Decodable { var text: String; var ids: [Int]; var decoded: String }

    @Test(arguments: ["bytelevel-bpe", "qwen2-bpe", "qwen2-bpe-template", "sentencepiece-bpe", "metaspace-bpe",
                            "deepseek-bpe", "o200k-bpe", "digits-bpe", "digit-runs-bpe", "single-word-bpe"]) func idsAndDecodingEqualTokenizers(_ name: String) throws {
        let tokenizer = try Tokenizer(path: (Self.directory as NSString).appendingPathComponent(name + ".json"))
        let data = try Data(contentsOf: URL(fileURLWithPath: (Self.directory as NSString).appendingPathComponent(name + ".expected.json")))
        let cases = try JSONDecoder().decode([Case].self, from: data)
        #expect(cases.count >= 10)
        for c in cases {
            let ids = try tokenizer.encode(c.text)
            #expect(ids == c.ids, "\(c.text.debugDescription)")
            #expect(tokenizer.decode(c.ids) == c.decoded, "\(c.text.debugDescription)")
        }
    }

    /// GPT-2's pre-tokenization on the cases its regular expression is known for.
    @Test func byteLevelSplitFollowsTheRegularExpression() {
        func split(_ s: String) -> [String] { GPT2Split.split(s[...].unicodeScalars).map { String($0) } }
        #expect(split("Hello world") == ["Hello", " world"])
        #expect(split("a  b") == ["a", " ", " b"])
        #expect(split("it's") == ["it", "'s"])
        #expect(split("x   ") == ["x", "   "])
        #expect(split("12abc!!  \n") == ["12", "abc", "!!", "  \n"])
        #expect(split("\tword") == ["\t", "word"])
    }

    /// An Isolated split by `regex`, written from its matches: the reference the scanners
    /// are checked against.
    static func isolatedPieces(_ text: String, _ regex: Regex<AnyRegexOutput>) -> [String] {
        let sub = Substring(text)
        var pieces: [String] = []
        var last = sub.startIndex
        for m in sub.matches(of: regex) where !m.range.isEmpty {
            if m.range.lowerBound > last { pieces.append(String(sub[last..<m.range.lowerBound])) }
            pieces.append(String(sub[m.range]))
            last = m.range.upperBound
        }
        if last < sub.endIndex { pieces.append(String(sub[last...])) }
        return pieces
    }

    /// The o200k scanner against the expression itself (run by Swift's Regex, which gives
    /// tokenizers' ids on the fixtures) on random strings over the scalars where its
    /// backtracking matters: modifier and other letters and marks, which are both "upper"
    /// and "lower", titlecase, digits past three, slashes and breaks after punctuation.
    @Test func o200kScannerEqualsItsExpression() throws {
        let regex = try Regex(O200kSplit.pattern).matchingSemantics(.unicodeScalar)
        let alphabet = ["a", "Z", "ǅ", "ʰ", "中", "\u{301}", "\u{903}", "ß", "Ж", "ж", "1", "٣", "½", " ", "  ", "\t", "\n", "\r\n", "\u{a0}",
                        "'", "'S", "'ll", "'RE", "!", "/", "-", "🙂", "\u{200d}", "x'd", "AB", "ab"]
        var rng = SplitMix64(seed: 11)
        for _ in 0..<3000 {
            let text = (0..<Int(rng.next() % 16 + 1)).map { _ in alphabet[Int(rng.next() % UInt64(alphabet.count))] }.joined()
            let scanned = O200kSplit.split(text[...].unicodeScalars).map { String($0) }
            #expect(scanned == Self.isolatedPieces(text, regex), "\(text.unicodeScalars.map { String($0.value, radix: 16) })")
        }
    }

    /// DeepSeek's three scanners against their expressions (Swift's Regex, which gives
    /// tokenizers' ids on the fixtures and the real file) on random strings over digits of
    /// several scripts, CJK and other ideographs, ASCII punctuation before letters, marks,
    /// symbols, breaks, controls and spaces; and both the real file and the trained one use them.
    @Test func deepSeekScannersEqualTheirExpressions() throws {
        let alphabet = ["1", "23", "٣", "½", "中", "か", "カ", "龥", "한", "'s", ".com", "_x", "a", "Q", "é", "\u{301}", "Ж", "€", "©", "🙂",
                        "!", "(", "-", " ", "  ", "\t", "\n", "\r\n", "\u{1}", "\u{a0}", "/", "x'LL"]
        let cases: [(String, (Substring.UnicodeScalarView) -> [Substring.UnicodeScalarView])] = [
            (DeepSeekSplit.digitsPattern, DeepSeekSplit.splitDigits), (DeepSeekSplit.cjkPattern, DeepSeekSplit.splitCJK),
            (DeepSeekSplit.mainPattern, DeepSeekSplit.splitMain)]
        var rng = SplitMix64(seed: 12)
        for (pattern, scanner) in cases {
            let regex = try Regex(pattern).matchingSemantics(.unicodeScalar)
            for _ in 0..<2000 {
                let text = (0..<Int(rng.next() % 14 + 1)).map { _ in alphabet[Int(rng.next() % UInt64(alphabet.count))] }.joined()
                #expect(scanner(text[...].unicodeScalars).map { String($0) } == Self.isolatedPieces(text, regex), "\(pattern.prefix(12)) \(text.unicodeScalars.map { String($0.value, radix: 16) })")
            }
        }
        for file in [Self.directory + "/deepseek-bpe.json"] {
            guard case let .pipeline(p) = try Tokenizer(path: file).preTokenizer else { Issue.record("\(file): not a pipeline"); continue }
            #expect(p.steps.map { "\($0)" } == ["deepSeekDigits", "deepSeekCJK", "deepSeekMain"])
        }
    }

    /// Components this reader does not implement are refused by name.
    @Test func unsupportedComponentsAreNamed() throws {
        let path = (Self.directory as NSString).appendingPathComponent("bytelevel-bpe.json")
        let original = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any])
        let edits: [(([String: Any]) -> [String: Any], String)] = [
            ({ var j = $0; j["normalizer"] = ["type": "BertNormalizer"]; return j }, "normalizer BertNormalizer"),
            ({ var j = $0; j["normalizer"] = ["type": "Replace", "pattern": ["Regex": "\\s+"], "content": " "]; return j }, "normalizer Replace with a Regex pattern"),
            ({ var j = $0; j["pre_tokenizer"] = ["type": "Digits", "individual_digits": true]; return j }, "pre_tokenizer Digits"),
            ({ var j = $0; j["decoder"] = ["type": "WordPiece"]; return j }, "decoder WordPiece"),
            ({ var j = $0; var m = j["model"] as! [String: Any]; m["byte_fallback"] = true; j["model"] = m; return j }, "byte_fallback after a byte-level pre-tokenizer"),
            ({ var j = $0; j["pre_tokenizer"] = ["type": "Sequence", "pretokenizers": [["type": "Split", "pattern": ["Regex": "\\w+"], "behavior": "Removed", "invert": false],
                                                                                         ["type": "ByteLevel", "use_regex": false]]]; return j }, "Split with behavior Removed"),
            ({ var j = $0; j["pre_tokenizer"] = ["type": "Sequence", "pretokenizers": [["type": "Split", "pattern": ["Regex": "(unclosed"], "behavior": "Isolated", "invert": false],
                                                                                         ["type": "ByteLevel", "use_regex": false]]]; return j }, "is not an expression this reader can run"),
            ({ var j = $0; j["pre_tokenizer"] = ["type": "Sequence", "pretokenizers": [["type": "Whitespace"], ["type": "ByteLevel", "use_regex": false]]]; return j },
             "pre_tokenizer Whitespace inside a Sequence"),
            ({ var j = $0; j["pre_tokenizer"] = ["type": "Sequence", "pretokenizers": [["type": "Digits"], ["type": "Metaspace"]]]; return j }, "then ByteLevel"),
            ({ var j = $0; j["pre_tokenizer"] = ["type": "Metaspace"]; return j }, "pre_tokenizer Metaspace needs a one-character replacement"),
            ({ var j = $0; j["post_processor"] = ["type": "TemplateProcessing"]; return j }, "post_processor TemplateProcessing lacks"),
            ({ var j = $0; j["post_processor"] = ["type": "RobertaProcessing"]; return j }, "post_processor RobertaProcessing"),
            ({ var j = $0; var m = j["model"] as! [String: Any]; m["dropout"] = 0.1; j["model"] = m; return j }, "dropout"),
            ({ var j = $0; var m = j["model"] as! [String: Any]; m["type"] = "Unigram"; j["model"] = m; return j }, "model Unigram"),
        ]
        for (edit, fragment) in edits {
            let data = try JSONSerialization.data(withJSONObject: edit(original))
            #expect { try Tokenizer(json: data, file: "t.json") } throws: { "\($0)".contains(fragment) }
        }
        #expect { try Tokenizer(json: Data("[1,2]".utf8), file: "t.json") } throws: { "\($0)".contains("t.json") }
    }
}
