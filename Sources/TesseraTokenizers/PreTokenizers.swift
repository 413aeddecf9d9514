/// The pre-tokenizers' expressions, each written out as the scanner it amounts to (the
/// alternatives in order, leftmost first): a regular-expression engine costs more than the
/// BPE it feeds. Both are made of the same runs, which `ScalarScanner` holds.
struct ScalarScanner {
    let s: [Unicode.Scalar]

    init(_ text: Substring.UnicodeScalarView) { s = Array(text) }

    /// The end of the run of scalars passing `test` from `j`.
    func run(from j: Int, _ test: (Unicode.Scalar) -> Bool) -> Int {
        var k = j
        while k < s.count && test(s[k]) { k += 1 }
        return k
    }

    /// `'s|'t|'re|'ve|'m|'ll|'d` at `i`: its end, or nil.
    func contraction(at i: Int, ignoringCase: Bool) -> Int? {
        guard s[i] == "'", i + 1 < s.count else { return nil }
        func fold(_ c: Unicode.Scalar) -> String { ignoringCase ? Character(c).lowercased() : String(Character(c)) }
        let one = fold(s[i + 1])
        if ["s", "t", "m", "d"].contains(one) { return i + 2 }
        if i + 2 < s.count, ["re", "ve", "ll"].contains(one + fold(s[i + 2])) { return i + 3 }
        return nil
    }

    /// `\s+(?!\S)|\s+` from the whitespace at `i`: all of it before the end of the text;
    /// before anything else, all but its last scalar (which goes with what follows), unless
    /// it is one scalar.
    func whitespace(from i: Int) -> Int {
        let end = run(from: i, Self.isSpace)
        return end == s.count || end - i == 1 ? end : end - 1
    }

    /// The text cut at the ends `next` gives, from the start: pieces as views of the text.
    func pieces(of text: Substring.UnicodeScalarView, next: (Int) -> Int) -> [Substring.UnicodeScalarView] {
        var out: [Substring.UnicodeScalarView] = []
        var i = 0
        var start = text.startIndex
        while i < s.count {
            let end = next(i)
            let endIndex = text.index(start, offsetBy: end - i)
            out.append(text[start..<endIndex])
            start = endIndex
            i = end
        }
        return out
    }

    static func isSpace(_ c: Unicode.Scalar) -> Bool { c.properties.isWhitespace }
    static func isLetter(_ c: Unicode.Scalar) -> Bool {
        switch c.properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter: return true
        default: return false
        }
    }
    static func isNumber(_ c: Unicode.Scalar) -> Bool {
        switch c.properties.generalCategory {
        case .decimalNumber, .letterNumber, .otherNumber: return true
        default: return false
        }
    }
    /// `[^\s\p{L}\p{N}]`
    static func isOther(_ c: Unicode.Scalar) -> Bool { !isSpace(c) && !isLetter(c) && !isNumber(c) }
    static func isBreak(_ c: Unicode.Scalar) -> Bool { c == "\r" || c == "\n" }
}

/// GPT-2's pre-tokenization (the ByteLevel pre-tokenizer's own expression)
/// `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`.
enum GPT2Split {
    static func split(_ text: Substring.UnicodeScalarView) -> [Substring.UnicodeScalarView] {
        let scan = ScalarScanner(text), s = scan.s
        return scan.pieces(of: text) { i in
            if let end = scan.contraction(at: i, ignoringCase: false) { return end }
            // ` ?\p{L}+`, ` ?\p{N}+`, ` ?[^\s\p{L}\p{N}]+`: an optional U+0020, then a run of one class.
            let j = s[i] == " " && i + 1 < s.count && !ScalarScanner.isSpace(s[i + 1]) ? i + 1 : i
            if ScalarScanner.isSpace(s[j]) { return scan.whitespace(from: i) }
            let c = s[j]
            return ScalarScanner.isLetter(c) ? scan.run(from: j, ScalarScanner.isLetter)
                : ScalarScanner.isNumber(c) ? scan.run(from: j, ScalarScanner.isNumber)
                : scan.run(from: j, ScalarScanner.isOther)
        }
    }
}

/// Qwen2's (and Qwen3's) pre-tokenization, the Split expression below. Its alternatives
/// cover every scalar, so an isolated split has no gaps between matches.
enum QwenSplit {
    static let pattern = #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#

    static func split(_ text: Substring.UnicodeScalarView) -> [Substring.UnicodeScalarView] {
        let scan = ScalarScanner(text), s = scan.s
        return scan.pieces(of: text) { i in
            if let end = scan.contraction(at: i, ignoringCase: true) { return end }
            let c = s[i]
            // [^\r\n\p{L}\p{N}]?\p{L}+
            if ScalarScanner.isLetter(c) { return scan.run(from: i, ScalarScanner.isLetter) }
            if !ScalarScanner.isBreak(c), !ScalarScanner.isNumber(c), i + 1 < s.count, ScalarScanner.isLetter(s[i + 1]) {
                return scan.run(from: i + 1, ScalarScanner.isLetter)
            }
            if ScalarScanner.isNumber(c) { return i + 1 }
            // ` ?[^\s\p{L}\p{N}]+[\r\n]*`
            let j = c == " " && i + 1 < s.count ? i + 1 : i
            if ScalarScanner.isOther(s[j]) { return scan.run(from: scan.run(from: j, ScalarScanner.isOther), ScalarScanner.isBreak) }
            // `\s*[\r\n]+`: through the run's last line break; else as GPT-2's whitespace.
            let end = scan.run(from: i, ScalarScanner.isSpace)
            if let lastBreak = (i..<end).last(where: { ScalarScanner.isBreak(s[$0]) }) { return lastBreak + 1 }
            return scan.whitespace(from: i)
        }
    }
}

/// gpt-oss's (o200k) pre-tokenization, the Split expression below. Its alternatives cover
/// every scalar too. "Upper" is [\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}], "lower" [\p{Ll}\p{Lm}\p{Lo}\p{M}]:
/// modifier and other letters and marks are both, which is where backtracking matters.
enum O200kSplit {
    static let pattern = #"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+"#

    static func isMark(_ c: Unicode.Scalar) -> Bool {
        switch c.properties.generalCategory {
        case .nonspacingMark, .spacingMark, .enclosingMark: return true
        default: return false
        }
    }
    static func isUpper(_ c: Unicode.Scalar) -> Bool {
        switch c.properties.generalCategory {
        case .uppercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter, .nonspacingMark, .spacingMark, .enclosingMark: return true
        default: return false
        }
    }
    static func isLower(_ c: Unicode.Scalar) -> Bool {
        switch c.properties.generalCategory {
        case .lowercaseLetter, .modifierLetter, .otherLetter, .nonspacingMark, .spacingMark, .enclosingMark: return true
        default: return false
        }
    }

    static func split(_ text: Substring.UnicodeScalarView) -> [Substring.UnicodeScalarView] {
        let scan = ScalarScanner(text), s = scan.s
        func withContraction(_ end: Int) -> Int {
            end < s.count ? scan.contraction(at: end, ignoringCase: true) ?? end : end
        }
        // upper* lower+ from j: the longest upper run that still leaves a lower scalar after it.
        func upperThenLower(_ j: Int) -> Int? {
            guard j < s.count else { return nil }
            let upperEnd = scan.run(from: j, isUpper)
            var k = upperEnd
            while k >= j {
                if k < s.count, isLower(s[k]) { return withContraction(scan.run(from: k, isLower)) }
                k -= 1
            }
            return nil
        }
        // upper+ lower* from j.
        func upperThenMaybeLower(_ j: Int) -> Int? {
            guard j < s.count, isUpper(s[j]) else { return nil }
            return withContraction(scan.run(from: scan.run(from: j, isUpper), isLower))
        }
        return scan.pieces(of: text) { i in
            let c = s[i]
            let prefixable = !ScalarScanner.isBreak(c) && !ScalarScanner.isLetter(c) && !ScalarScanner.isNumber(c)
            if prefixable, let end = upperThenLower(i + 1) { return end }
            if let end = upperThenLower(i) { return end }
            if prefixable, let end = upperThenMaybeLower(i + 1) { return end }
            if let end = upperThenMaybeLower(i) { return end }
            // \p{N}{1,3}
            if ScalarScanner.isNumber(c) { return min(scan.run(from: i, ScalarScanner.isNumber), i + 3) }
            // ` ?[^\s\p{L}\p{N}]+[\r\n/]*`
            let j = c == " " && i + 1 < s.count && ScalarScanner.isOther(s[i + 1]) ? i + 1 : i
            if ScalarScanner.isOther(s[j]) {
                return scan.run(from: scan.run(from: j, ScalarScanner.isOther)) { ScalarScanner.isBreak($0) || $0 == "/" }
            }
            // `\s*[\r\n]+`: through the run's last line break; else `\s+(?!\S)|\s+`.
            let end = scan.run(from: i, ScalarScanner.isSpace)
            if let lastBreak = (i..<end).last(where: { ScalarScanner.isBreak(s[$0]) }) { return lastBreak + 1 }
            return scan.whitespace(from: i)
        }
    }
}

/// DeepSeek's pre-tokenization (V2's and V3's tokenizer.json): three Isolated Splits, on
/// runs of up to three digits, on runs of CJK ideographs and kana, then on the main
/// expression below, whose alternatives do not cover every scalar (a digit or a control
/// character alone matches none), so text between matches is a piece of its own, as
/// tokenizers' Isolated split leaves it.
enum DeepSeekSplit {
    static let digitsPattern = #"\p{N}{1,3}"#
    static let cjkPattern = "[\u{4E00}-\u{9FA5}\u{3040}-\u{309F}\u{30A0}-\u{30FF}]+"
    static let mainPattern = ##"[!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+| ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"##

    /// The real files spell \r and \n in the expression as the characters themselves (JSON
    /// escapes), files written from a raw string as escapes: the same expression.
    static func isMainPattern(_ pattern: String) -> Bool {
        pattern == mainPattern || pattern == mainPattern.replacingOccurrences(of: "\\r", with: "\r").replacingOccurrences(of: "\\n", with: "\n")
    }

    static func isCJK(_ c: Unicode.Scalar) -> Bool {
        (0x4E00...0x9FA5).contains(c.value) || (0x3040...0x309F).contains(c.value) || (0x30A0...0x30FF).contains(c.value)
    }
    static func isPunctuationOrSymbol(_ c: Unicode.Scalar) -> Bool {
        switch c.properties.generalCategory {
        case .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation, .initialPunctuation, .finalPunctuation,
             .otherPunctuation, .mathSymbol, .currencySymbol, .modifierSymbol, .otherSymbol: return true
        default: return false
        }
    }
    static func isLetterOrMark(_ c: Unicode.Scalar) -> Bool { ScalarScanner.isLetter(c) || O200kSplit.isMark(c) }
    static func isASCIILetter(_ c: Unicode.Scalar) -> Bool { (0x41...0x5A).contains(c.value) || (0x61...0x7A).contains(c.value) }
    static let asciiPunctuation = Set(##"!"#$%&'()*+,-./:;<=>?@[\]^_`{|}~"##.unicodeScalars)

    /// Isolated: the matches `match` finds, leftmost first, and the text between them.
    static func isolated(_ text: Substring.UnicodeScalarView, match: (ScalarScanner, Int) -> Int?) -> [Substring.UnicodeScalarView] {
        let scan = ScalarScanner(text), s = scan.s
        var out: [Substring.UnicodeScalarView] = []
        var cuts: [(Int, Int)] = []
        var i = 0, gapStart = 0
        while i < s.count {
            if let end = match(scan, i), end > i {
                if i > gapStart { cuts.append((gapStart, i)) }
                cuts.append((i, end))
                i = end
                gapStart = end
            } else {
                i += 1
            }
        }
        if s.count > gapStart { cuts.append((gapStart, s.count)) }
        var index = text.startIndex
        for (a, b) in cuts {
            let end = text.index(index, offsetBy: b - a)
            out.append(text[index..<end])
            index = end
        }
        return out
    }

    static func splitDigits(_ text: Substring.UnicodeScalarView) -> [Substring.UnicodeScalarView] {
        isolated(text) { scan, i in ScalarScanner.isNumber(scan.s[i]) ? min(scan.run(from: i, ScalarScanner.isNumber), i + 3) : nil }
    }

    static func splitCJK(_ text: Substring.UnicodeScalarView) -> [Substring.UnicodeScalarView] {
        isolated(text) { scan, i in isCJK(scan.s[i]) ? scan.run(from: i, isCJK) : nil }
    }

    static func splitMain(_ text: Substring.UnicodeScalarView) -> [Substring.UnicodeScalarView] {
        isolated(text) { scan, i in
            let s = scan.s, c = s[i]
            // [ASCII punctuation][A-Za-z]+
            if asciiPunctuation.contains(c), i + 1 < s.count, isASCIILetter(s[i + 1]) { return scan.run(from: i + 1, isASCIILetter) }
            // [^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+
            let prefixable = !ScalarScanner.isBreak(c) && !ScalarScanner.isLetter(c) && !isPunctuationOrSymbol(c)
            if prefixable, i + 1 < s.count, isLetterOrMark(s[i + 1]) { return scan.run(from: i + 1, isLetterOrMark) }
            if isLetterOrMark(c) { return scan.run(from: i, isLetterOrMark) }
            // ` ?[\p{P}\p{S}]+[\r\n]*`
            let j = c == " " && i + 1 < s.count && isPunctuationOrSymbol(s[i + 1]) ? i + 1 : i
            if isPunctuationOrSymbol(s[j]) { return scan.run(from: scan.run(from: j, isPunctuationOrSymbol), ScalarScanner.isBreak) }
            // `\s*[\r\n]+|\s+(?!\S)|\s+`
            guard ScalarScanner.isSpace(c) else { return nil }
            let end = scan.run(from: i, ScalarScanner.isSpace)
            if let lastBreak = (i..<end).last(where: { ScalarScanner.isBreak(s[$0]) }) { return lastBreak + 1 }
            return scan.whitespace(from: i)
        }
    }
}
