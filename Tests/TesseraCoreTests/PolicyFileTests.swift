import Foundation
import Testing
import TesseraCore

/// Policy files reach toml++ (inside TOMLKit), which aborts the process on an assertion
/// for a table header whose key starts with another character (found by scripts/fuzz).
/// Such lines, and keys outside ASCII, are refused first, naming the line; text in values
/// and comments is free.
@Suite struct PolicyFileTests {
    @Test func nonASCIIKeysAreRefusedBeforeTheParserSeesThem() throws {
        for (text, line, why) in [("[fees]\nx = 1\n[\u{8A}proof_of_loss]\n", 3, "is not a table header"), ("[ (TOML 1.0). Read by x\n", 1, "is not a table header"),
                                  ("[fees]\nvalidätor_bps = 5\n", 2, "holds a character outside ASCII"), ("[caf\u{E9}]\n", 1, "is not a table header")] {
            #expect { try PolicyFile.parse(text, file: "m.toml") } throws: { "\($0)".contains("m.toml:\(line): ") && "\($0)".contains(why) }
        }
        // Lines inside multi-line arrays and strings are values, not headers.
        let arrays = try PolicyFile.parse("[a]\nxs = [\n  [1, 2],\n  [3],\n]\ns = \"\"\"\n[not a header\n\"\"\"\n[b.c]\ny = 'q[' # [\n", file: "m.toml")
        #expect(arrays["a"]?["xs"]?.arrayValue?.count == 2 && arrays["b"]?["c"]?["y"]?.stringValue == "q[")
        let fine = try PolicyFile.parse("# café\n[fees]\nname = \"Zürich = ok\" # ü\nbps = 5\n", file: "m.toml")
        #expect(fine["fees"]?["name"]?.stringValue == "Zürich = ok")
        #expect(fine["fees"]?["bps"]?.intValue == 5)
    }
}
