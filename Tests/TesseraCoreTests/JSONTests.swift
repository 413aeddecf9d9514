import Foundation
import Testing
@testable import TesseraCore

/// The one JSON parser everything goes through (safetensors headers, manifests, delta
/// headers, bundles, verdicts, ledger payloads), in the style of JSONTestSuite: documents
/// that must parse (y_), that must be refused (n_), and our choices for the ones the RFC
/// leaves to implementations (i_).
@Suite struct JSONParserTests {
    static func parse(_ text: String) throws -> JSONValue { try JSONValue.parse(Data(text.utf8)) }
    static func parse(bytes: [UInt8]) throws -> JSONValue { try JSONValue.parse(Data(bytes)) }

    @Test(arguments: [
        ("[]", JSONValue.array([])),
        ("{}", .object([])),
        (" [1, -1, 0, -0] ", .array([.integer(1), .integer(-1), .integer(0), .integer(0)])),
        ("[1.5e3, 1E-2, 0.5, -0.0]", .array([.number(1500), .number(0.01), .number(0.5), .number(-0.0)])),
        ("\"\\u00e9\\ud83d\\ude00\\n\\/\"", .string("é😀\n/")),
        ("{\"a\":{\"b\":[true,false,null]}}", .object([("a", .object([("b", .array([.bool(true), .bool(false), .null]))]))])),
        ("9223372036854775807", .integer(Int64.max)),
        ("-9223372036854775808", .integer(Int64.min)),
        ("\"\u{7F}\u{2028}\"", .string("\u{7F}\u{2028}")),
    ])
    func accepts(_ text: String, _ value: JSONValue) throws {
        #expect(try Self.parse(text) == value)
    }

    /// (document, a fragment of the error)
    @Test(arguments: [
        ("01", "leading zero"),
        ("-01", "leading zero"),
        ("[00]", "leading zero"),
        ("1.", "digits expected after '.'"),
        (".5", "unexpected character"),
        ("+1", "unexpected character"),
        ("1e", "exponent"),
        ("1e400", "out of range"),
        ("-1e400", "out of range"),
        ("\"\\ud800\"", "unpaired surrogate"),
        ("\"\\ud800\\u0041\"", "unpaired surrogate"),
        ("\"\\udc00\"", "invalid unicode escape"),
        ("\"\\x41\"", "unknown escape"),
        ("\"a\tb\"", "control character"),
        ("{\"a\":1,\"a\":2}", "duplicate key \"a\""),
        ("{\"a\":1,}", "expected a string key"),
        ("[1,]", "unexpected character"),
        ("[1 2]", "expected ','"),
        ("{\"a\" 1}", "expected ':'"),
        ("{'a':1}", "expected a string key"),
        ("[1]x", "trailing characters"),
        ("[1][2]", "trailing characters"),
        ("", "unexpected end of input"),
        ("   ", "unexpected end of input"),
        ("tru", "expected 'true'"),
        ("nul", "expected 'null'"),
        ("NaN", "unexpected character"),
        ("Infinity", "unexpected character"),
        ("\"abc", "unterminated string"),
        ("[1", "unterminated array"),
        ("{\"a\":1", "unterminated object"),
    ])
    func refuses(_ text: String, _ reason: String) {
        #expect { try Self.parse(text) } throws: { "\($0)".contains(reason) || { print("\(text): \($0)"); return false }($0) }
    }

    @Test func refusesInvalidUTF8AndNesting() {
        // A lone continuation byte, an overlong encoding, a surrogate encoded in UTF-8.
        for bad in [[0x22, 0x80, 0x22], [0x22, 0xC0, 0xAF, 0x22], [0x22, 0xED, 0xA0, 0x80, 0x22]] as [[UInt8]] {
            #expect { try Self.parse(bytes: bad) } throws: { "\($0)".contains("not valid UTF-8") }
        }
        // A byte-order mark is not JSON.
        #expect(throws: JSONParseError.self) { try Self.parse(bytes: [0xEF, 0xBB, 0xBF] + Array("[]".utf8)) }
        // Nesting is bounded, so hostile input cannot exhaust the stack.
        let deep = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        #expect { try Self.parse(deep) } throws: { "\($0)".contains("nesting deeper than 64") }
        let ok = String(repeating: "[", count: 64) + String(repeating: "]", count: 64)
        #expect(throws: Never.self) { try Self.parse(ok) }
        #expect(throws: JSONParseError.self) { try Self.parse(String(repeating: "[", count: 65) + String(repeating: "]", count: 65)) }
    }

    /// Numbers past Int64 are read as doubles (the RFC allows any range); decoding one into
    /// an integer field is then an error instead of a silent rounding.
    @Test func numbersBeyondInt64() throws {
        #expect(try Self.parse("9223372036854775808") == .number(9_223_372_036_854_775_808))
        #expect(try Self.parse("123456789012345678901234567890") == .number(1.2345678901234568e29))
        struct Amount: Decodable { var amount: Int64 }
        #expect { try StrictJSON.decode(Amount.self, from: Data("{\"amount\":9223372036854775808}".utf8), file: "a.json") }
            throws: { "\($0)".contains("a.json") && "\($0)".contains("amount") }
        #expect(try StrictJSON.decode(Amount.self, from: Data("{\"amount\":9007199254740992.0}".utf8), file: "a.json").amount == 9_007_199_254_740_992)
        #expect { try StrictJSON.decode(Amount.self, from: Data("{\"amount\":1.5}".utf8), file: "a.json") } throws: { "\($0)".contains("amount = 1.5") }
    }
}

/// RFC 8785 canonical form: sorted members (by UTF-16 code units), ECMAScript numbers,
/// minimal escapes. The examples are the RFC's own where it gives them.
@Suite struct CanonicalJSONTests {
    @Test(arguments: [
        (0.0, "0"), (-0.0, "0"), (1.0, "1"), (-1.5, "-1.5"), (0.1, "0.1"), (1e21, "1e+21"), (1e20, "100000000000000000000"),
        (123456789012345680000.0, "123456789012345680000"), (1e-6, "0.000001"), (1e-7, "1e-7"), (5e-324, "5e-324"),
        (1.7976931348623157e308, "1.7976931348623157e+308"), (4.5, "4.5"), (2e-3, "0.002"), (0.000001234, "0.000001234"),
        (333333333.33333329, "333333333.3333333"), (1e23, "1e+23"), (-1e-7, "-1e-7"), (100.0, "100"), (12.34e10, "123400000000"),
    ])
    func numbersAsECMAScriptPrintsThem(_ x: Double, _ text: String) {
        #expect(ES6Number.format(x) == text)
    }

    @Test func rfc8785Example() throws {
        // RFC 8785 §3.2.2, with the integers it shows as JSON integers.
        let input = #"{"numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001], "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/", "literals": [null, true, false]}"#
        let expected = #"{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\u000f\nA'B\"\\\\\"/"}"#
        #expect(try JSONValue.parse(Data(input.utf8)).canonicalText == expected)
    }

    @Test func membersSortByUTF16CodeUnits() throws {
        // RFC 8785 §3.2.3's sorting example: "\r", "1", "\u0080", "ö", "€", "😀", "\ufb33".
        let value = JSONValue.object([("\u{20AC}", .string("Euro Sign")), ("\r", .string("Carriage Return")),
                                      ("\u{FB33}", .string("Hebrew Letter Dalet With Dagesh")), ("1", .string("One")),
                                      ("\u{1F600}", .string("Emoji: Grinning Face")), ("\u{0080}", .string("Control")),
                                      ("\u{00F6}", .string("Latin Small Letter O With Diaeresis"))])
        let keys = value.canonicalText.split(separator: ",").map { $0.split(separator: ":")[0] }
        #expect(keys.map { String($0).replacingOccurrences(of: "{", with: "") } ==
                ["\"\\r\"", "\"1\"", "\"\u{0080}\"", "\"\u{00F6}\"", "\"\u{20AC}\"", "\"\u{1F600}\"", "\"\u{FB33}\""])
    }

    @Test func escapesAreMinimal() {
        let s = JSONValue.string("\u{08}\u{0C}\u{01}\u{1F}\u{7F}é\u{2028}/\"\\")
        #expect(s.canonicalText == "\"\\b\\f\\u0001\\u001f\u{7F}é\u{2028}/\\\"\\\\\"")
    }

    @Test func canonicalTextRoundTripsAndIsStable() throws {
        var rng = SplitMix64(seed: 7)
        func random(_ depth: Int) -> JSONValue {
            switch rng.next() % (depth > 3 ? 5 : 7) {
            case 0: return .null
            case 1: return .bool(rng.next() % 2 == 0)
            case 2: return .integer(Int64(bitPattern: rng.next()))
            case 3: return .number((rng.uniform() - 0.5) * pow(10, Double(Int(rng.next() % 40)) - 20))
            case 4: return .string(String((0..<Int(rng.next() % 6)).map { _ in Character(Unicode.Scalar(UInt8(rng.next() % 128))) }))
            case 5: return .array((0..<Int(rng.next() % 4)).map { _ in random(depth + 1) })
            default:
                var keys = Set<String>()
                return .object((0..<Int(rng.next() % 4)).compactMap { i in
                    let k = "k\(rng.next() % 10)"
                    return keys.insert(k).inserted ? (k, random(depth + 1)) : nil
                })
            }
        }
        for _ in 0..<500 {
            let v = random(0)
            let text = v.canonicalText
            let back = try JSONValue.parse(Data(text.utf8))
            #expect(back.canonicalText == text)
            #expect(try JSONValue.parse(Data(v.prettyText().utf8)).canonicalText == text)
        }
    }
}

/// Decoding `Decodable` types from the strict parser's values.
@Suite struct StrictDecoderTests {
    struct Inner: Codable, Equatable { var x: Int; var tag: String? }
    struct Outer: Codable, Equatable {
        var name: String
        var items: [Inner]
        var scale: Float
        var seed: UInt64
        var table: [String: Int]
        var blob: JSONValue
    }

    @Test func roundTripsThroughTheEncoder() throws {
        let o = Outer(name: "a", items: [Inner(x: 1, tag: nil), Inner(x: -2, tag: "t")], scale: 0.001, seed: 1 << 52,
                      table: ["b": 2, "a": 1], blob: .array([.null, .string("s")]))
        let text = try JSONOutput.compact(o)
        #expect(text.contains("\"scale\":0.001"))
        #expect(!text.contains("\"tag\":null"))
        #expect(try StrictJSON.decode(Outer.self, from: Data(text.utf8), file: "o.json", rejectUnknownKeys: true) == o)
        #expect(try StrictJSON.decode(Outer.self, from: Data(try JSONOutput.pretty(o)), file: "o.json") == o)
    }

    @Test func errorsNameTheFileTheFieldAndTheValue() {
        let good = #"{"name":"a","items":[{"x":1}],"scale":1,"seed":2,"table":{},"blob":{"free":{"form":1}}}"#
        #expect(throws: Never.self) { try StrictJSON.decode(Outer.self, from: Data(good.utf8), file: "o.json", rejectUnknownKeys: true) }
        let cases: [(String, String)] = [
            (good.replacingOccurrences(of: #""x":1"#, with: #""x":"1""#), #"o.json: items[0].x = "1" must be an integer"#),
            (good.replacingOccurrences(of: #""name":"a","#, with: ""), "o.json: missing key name"),
            (good.replacingOccurrences(of: #""x":1"#, with: #""x":1,"y":2"#), "o.json: items[0].y = 2: unknown key; known here: tag, x"),
            (good.replacingOccurrences(of: #""seed":2"#, with: #""seed":-2"#), "o.json: seed = -2"),
            (good.replacingOccurrences(of: #""scale":1"#, with: #""scale":1e300"#), "o.json: scale = 1e+300"),
            (good.replacingOccurrences(of: #""items":[{"x":1}]"#, with: #""items":{}"#), "o.json: items = {} must be an array"),
            (good.replacingOccurrences(of: #""name":"a""#, with: #""name":"a","name":"b""#), "o.json: invalid JSON at byte"),
        ]
        for (text, message) in cases {
            #expect { try StrictJSON.decode(Outer.self, from: Data(text.utf8), file: "o.json", rejectUnknownKeys: true) }
                throws: { "\($0)".contains(message) || { print("\(message) ← \($0)"); return false }($0) }
        }
        // Unknown keys are accepted when not asked to refuse them.
        let extra = good.replacingOccurrences(of: #""x":1"#, with: #""x":1,"y":2"#)
        #expect(throws: Never.self) { try StrictJSON.decode(Outer.self, from: Data(extra.utf8), file: "o.json") }
    }
}

@Suite struct ExpertIDTests {
    @Test func parsesTheCommandLineForm() throws {
        #expect(try ExpertID(parsing: "3:12") == ExpertID(layer: 3, expert: 12))
        #expect(try ExpertID.parseList("0:1, 2:3") == [ExpertID(layer: 0, expert: 1), ExpertID(layer: 2, expert: 3)])
        for bad in ["3", "3:", ":3", "-1:2", "1:-2", "1:2:3", "a:b", "1:2 ", "99999999999:1", "+1:2"] {
            #expect(throws: CoreError.self, "\(bad)") { try ExpertID(parsing: bad) }
        }
    }
}
