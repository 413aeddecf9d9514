/// GPT-2's byte-level alphabet: every byte as a printable character, so a BPE vocabulary
/// of strings covers any byte sequence. Bytes that print (33-126, 161-172, 174-255) stand
/// for themselves; the others take the code points from 256 upward, in byte order.
enum ByteLevel {
    static let byteToScalar: [Unicode.Scalar] = {
        var table = [Unicode.Scalar](repeating: " ", count: 256)
        var next: UInt32 = 256
        for b in 0..<256 {
            if (33...126).contains(b) || (161...172).contains(b) || (174...255).contains(b) {
                table[b] = Unicode.Scalar(UInt32(b))!
            } else {
                table[b] = Unicode.Scalar(next)!
                next += 1
            }
        }
        return table
    }()

    static let scalarToByte: [UInt32: UInt8] = {
        var map: [UInt32: UInt8] = [:]
        for (b, s) in byteToScalar.enumerated() { map[s.value] = UInt8(b) }
        return map
    }()

    /// A piece of text as the byte-level characters of its UTF-8 bytes.
    static func encode(_ piece: Substring.UnicodeScalarView) -> [String] {
        String(piece).utf8.map { String(Character(byteToScalar[Int($0)])) }
    }

    /// The bytes byte-level text stands for; characters outside the alphabet are kept as their UTF-8.
    static func decode(_ text: String) -> [UInt8] {
        var out: [UInt8] = []
        for s in text.unicodeScalars {
            if let b = scalarToByte[s.value] { out.append(b) } else { out += Array(String(s).utf8) }
        }
        return out
    }

    /// GPT-2's pre-tokenization, the regular expression
    /// `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
    /// written out as the scanner it amounts to (the alternatives in order, leftmost first):
    /// a regular-expression engine costs more than the BPE it feeds.
    static func split(_ text: Substring.UnicodeScalarView) -> [Substring.UnicodeScalarView] {
        let s = Array(text)
        func run(from j: Int, _ test: (Unicode.Scalar) -> Bool) -> Int {
            var k = j
            while k < s.count && test(s[k]) { k += 1 }
            return k
        }
        func next(_ i: Int) -> Int {
            if s[i] == "'", i + 1 < s.count {
                let one = String(Character(s[i + 1])), two = i + 2 < s.count ? one + String(Character(s[i + 2])) : ""
                if ["s", "t", "m", "d"].contains(one) { return i + 2 }
                if ["re", "ve", "ll"].contains(two) { return i + 3 }
            }
            // ` ?\p{L}+`, ` ?\p{N}+`, ` ?[^\s\p{L}\p{N}]+`: an optional U+0020, then a run of one class.
            let j = s[i] == " " && i + 1 < s.count && !isSpace(s[i + 1]) ? i + 1 : i
            if !isSpace(s[j]) {
                let c = s[j]
                return isLetter(c) ? run(from: j, isLetter)
                    : isNumber(c) ? run(from: j, isNumber)
                    : run(from: j) { !isSpace($0) && !isLetter($0) && !isNumber($0) }
            }
            // Whitespace: all of it before the end of the text; before anything else, all
            // but its last character (which goes with what follows), unless it is one character.
            let end = run(from: i, isSpace)
            return end == s.count || end - i == 1 ? end : end - 1
        }
        return pieces(text, count: s.count, next: next)
    }

    /// `text` cut at the ends `next` gives, from the start: pieces as views of the text.
    static func pieces(_ text: Substring.UnicodeScalarView, count: Int, next: (Int) -> Int) -> [Substring.UnicodeScalarView] {
        var out: [Substring.UnicodeScalarView] = []
        var i = 0
        var start = text.startIndex
        while i < count {
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
}

/// Qwen2's (and Qwen3's) pre-tokenization, the Split expression
/// `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
/// as a scanner, like GPT-2's above. Its alternatives cover every character, so an
/// isolated split has no gaps between matches.
enum QwenSplit {
    static let pattern = #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#

    static func split(_ text: Substring.UnicodeScalarView) -> [Substring.UnicodeScalarView] {
        let s = Array(text)
        func isBreak(_ c: Unicode.Scalar) -> Bool { c == "\r" || c == "\n" }
        func run(from j: Int, _ test: (Unicode.Scalar) -> Bool) -> Int {
            var k = j
            while k < s.count && test(s[k]) { k += 1 }
            return k
        }
        func next(_ i: Int) -> Int {
            let c = s[i]
            if c == "'", i + 1 < s.count {
                let a = Character(s[i + 1]).lowercased(), b = i + 2 < s.count ? Character(s[i + 2]).lowercased() : ""
                if ["s", "t", "m", "d"].contains(a) { return i + 2 }
                if ["re", "ve", "ll"].contains(a + b) { return i + 3 }
            }
            // [^\r\n\p{L}\p{N}]?\p{L}+
            if ByteLevel.isLetter(c) { return run(from: i, ByteLevel.isLetter) }
            if !isBreak(c), !ByteLevel.isNumber(c), i + 1 < s.count, ByteLevel.isLetter(s[i + 1]) { return run(from: i + 1, ByteLevel.isLetter) }
            if ByteLevel.isNumber(c) { return i + 1 }
            // ` ?[^\s\p{L}\p{N}]+[\r\n]*`
            let j = c == " " && i + 1 < s.count ? i + 1 : i
            if j < s.count, !ByteLevel.isSpace(s[j]), !ByteLevel.isLetter(s[j]), !ByteLevel.isNumber(s[j]) {
                let end = run(from: j) { !ByteLevel.isSpace($0) && !ByteLevel.isLetter($0) && !ByteLevel.isNumber($0) }
                return run(from: end, isBreak)
            }
            // Whitespace: through its last line break if it has one; else as GPT-2's.
            let end = run(from: i, ByteLevel.isSpace)
            if let lastBreak = (i..<end).last(where: { isBreak(s[$0]) }) { return lastBreak + 1 }
            return end == s.count || end - i == 1 ? end : end - 1
        }
        return ByteLevel.pieces(text, count: s.count, next: next)
    }
}
