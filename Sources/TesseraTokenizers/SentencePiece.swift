/// The parts of `tokenizers` that SentencePiece-style files (Llama, Mixtral, DeepSeek's
/// older ones) use: normalizers that turn spaces into "▁", the Metaspace pre-tokenizer,
/// and the decoder steps that undo them.
enum Normalization: Sendable, Equatable {
    case nfc, nfkc
    /// Prepend: the text, when not empty, gets this in front.
    case prepend(String)
    /// Replace with a literal pattern (a regular-expression pattern is refused).
    case replace(String, String)

    func apply(_ text: String) -> String {
        switch self {
        case .nfc: return text.precomposedStringWithCanonicalMapping
        case .nfkc: return text.precomposedStringWithCompatibilityMapping
        case let .prepend(p): return text.isEmpty ? text : p + text
        case let .replace(pattern, content): return text.replacingOccurrences(of: pattern, with: content)
        }
    }
}

/// Metaspace: spaces become the replacement character, which is prepended to the text
/// (always, or only to the text's first part, or never) and, with `split`, starts each word.
/// Everything here works on Unicode scalars, as `tokenizers` works on Rust chars: Swift's
/// Characters would join "▁" with a following zero-width joiner into one.
struct Metaspace: Sendable, Equatable {
    enum Scheme: String, Sendable { case always, first, never }
    let replacement: Unicode.Scalar
    let scheme: Scheme
    let split: Bool

    /// `atStart`: this part begins the original text (no added token before it).
    func words(_ text: String, atStart: Bool) -> [String] {
        var t = String.UnicodeScalarView(text.unicodeScalars.map { $0 == " " ? replacement : $0 })
        let prepend = scheme == .always || (scheme == .first && atStart)
        if prepend, t.first != replacement { t.insert(replacement, at: t.startIndex) }
        guard split else { return t.isEmpty ? [] : [String(t)] }
        // tokenizers' MergedWithNext: each replacement character starts a new word.
        var out: [String] = []
        var current = String.UnicodeScalarView()
        for c in t {
            if c == replacement, !current.isEmpty { out.append(String(current)); current = String.UnicodeScalarView() }
            current.append(c)
        }
        if !current.isEmpty { out.append(String(current)) }
        return out
    }
}

/// One step of a `tokenizers` decoder chain over the token strings.
enum DecoderStep: Sendable, Equatable {
    case replace(String, String)
    /// "<0xNN>" tokens back to bytes; a run that is not UTF-8 becomes one U+FFFD per byte.
    case byteFallback
    case fuse
    /// Up to `start` leading and `stop` trailing `content` characters off each token.
    case strip(Unicode.Scalar, start: Int, stop: Int)
    /// The replacement back to spaces; the first token's first one dropped unless the
    /// scheme is never.
    case metaspace(Unicode.Scalar, Metaspace.Scheme)

    func apply(_ tokens: [String]) -> [String] {
        switch self {
        case let .replace(pattern, content):
            return tokens.map { $0.replacingOccurrences(of: pattern, with: content) }
        case .byteFallback:
            var out: [String] = []
            var bytes: [UInt8] = []
            func flush() {
                guard !bytes.isEmpty else { return }
                if let s = String(validating: bytes, as: UTF8.self) { out.append(s) } else { out += Array(repeating: "\u{FFFD}", count: bytes.count) }
                bytes = []
            }
            for token in tokens {
                if let b = Self.fallbackByte(token) { bytes.append(b); continue }
                flush()
                out.append(token)
            }
            flush()
            return out
        case .fuse:
            return [tokens.joined()]
        case let .strip(content, start, stop):
            return tokens.map { token in
                var chars = Array(token.unicodeScalars)
                var head = 0
                while head < start, head < chars.count, chars[head] == content { head += 1 }
                chars.removeFirst(head)
                var tail = 0
                while tail < stop, let last = chars.last, last == content { chars.removeLast(); tail += 1 }
                return String(String.UnicodeScalarView(chars))
            }
        case let .metaspace(replacement, scheme):
            return tokens.enumerated().map { i, token in
                var out = String.UnicodeScalarView()
                for (j, c) in token.unicodeScalars.enumerated() {
                    if c == replacement {
                        if !(i == 0 && j == 0 && scheme != .never) { out.append(" ") }
                    } else {
                        out.append(c)
                    }
                }
                return String(out)
            }
        }
    }

    /// The byte of a "<0xNN>" token (two upper- or lower-case hex digits).
    static func fallbackByte(_ token: String) -> UInt8? {
        let u = Array(token.utf8)
        guard u.count == 6, u[0] == UInt8(ascii: "<"), u[1] == UInt8(ascii: "0"), u[2] == UInt8(ascii: "x"), u[5] == UInt8(ascii: ">") else { return nil }
        return UInt8(String(decoding: u[3...4], as: UTF8.self), radix: 16)
    }
}
