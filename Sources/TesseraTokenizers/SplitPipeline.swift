import Foundation
import TesseraCore

/// A `Sequence` pre-tokenizer of Split and Digits steps ending in ByteLevel, as DeepSeek's
/// and gpt-oss's files have it: each step cuts every piece the previous one made, then
/// ByteLevel maps each piece's bytes (and, with `use_regex`, cuts it again by GPT-2's
/// expression). Qwen2's, gpt-oss's (o200k) and DeepSeek's expressions run as scanners; any other runs on Swift's
/// `Regex` over Unicode scalars, as Oniguruma runs over code points in `tokenizers`: it is
/// slower than the scanners (whitepaper-notes/tokenizers.md has the figures), but writing
/// a scanner per expression does not scale to the families' long ones.
struct SplitPipeline: @unchecked Sendable {
    enum Step {
        case qwen
        case o200k
        case deepSeekDigits, deepSeekCJK, deepSeekMain
        case regex(Regex<AnyRegexOutput>)
        /// `individual`: every digit its own piece; otherwise runs of digits.
        case digits(individual: Bool)
    }

    let steps: [Step]
    /// The final ByteLevel's `use_regex` (GPT-2's expression on each piece).
    let byteLevelRegex: Bool
    /// The final ByteLevel's `add_prefix_space`, applied to each piece it receives.
    let addPrefixSpace: Bool

    /// Reads `pretokenizers` (all but the last Split or Digits, the last ByteLevel).
    init(_ parts: [JSONValue], bad: (String) -> Error) throws {
        guard let last = parts.last, last["type"]?.stringValue == "ByteLevel", parts.count >= 2 else {
            throw bad("pre_tokenizer Sequence of \(parts.map { $0["type"]?.stringValue ?? "?" }) is not supported (Split and Digits steps, then ByteLevel, are)")
        }
        var steps: [Step] = []
        for part in parts.dropLast() {
            switch part["type"]?.stringValue {
            case "Split":
                guard let pattern = part["pattern"]?["Regex"]?.stringValue else {
                    throw bad("pre_tokenizer Split with a string pattern is not supported (a Regex pattern is)")
                }
                guard part["behavior"]?.stringValue == "Isolated", !(part["invert"]?.boolValue ?? false) else {
                    throw bad("pre_tokenizer Split with behavior \(part["behavior"]?.stringValue ?? "?")\((part["invert"]?.boolValue ?? false) ? ", inverted," : "") is not supported (Isolated is)")
                }
                if pattern == QwenSplit.pattern {
                    steps.append(.qwen)
                } else if pattern == O200kSplit.pattern {
                    steps.append(.o200k)
                } else if pattern == DeepSeekSplit.digitsPattern {
                    steps.append(.deepSeekDigits)
                } else if pattern == DeepSeekSplit.cjkPattern {
                    steps.append(.deepSeekCJK)
                } else if DeepSeekSplit.isMainPattern(pattern) {
                    steps.append(.deepSeekMain)
                } else {
                    do {
                        steps.append(.regex(try Regex(pattern).matchingSemantics(.unicodeScalar)))
                    } catch {
                        throw bad("pre_tokenizer Split pattern \(pattern.prefix(120)) is not an expression this reader can run: \(error)")
                    }
                }
            case "Digits":
                steps.append(.digits(individual: part["individual_digits"]?.boolValue ?? false))
            default:
                throw bad("pre_tokenizer \(part["type"]?.stringValue ?? "?") inside a Sequence is not supported (Split, Digits, then ByteLevel are)")
            }
        }
        self.steps = steps
        byteLevelRegex = last["use_regex"]?.boolValue ?? true
        addPrefixSpace = last["add_prefix_space"]?.boolValue ?? false
    }

    func words(_ text: Substring.UnicodeScalarView) -> [Substring.UnicodeScalarView] {
        var pieces = [text]
        for step in steps { pieces = pieces.flatMap { split($0, step) } }
        guard addPrefixSpace || byteLevelRegex else { return pieces }
        return pieces.flatMap { piece -> [Substring.UnicodeScalarView] in
            var p = piece
            if addPrefixSpace, p.first != " " { p = (" " + String(p))[...].unicodeScalars }
            return byteLevelRegex ? GPT2Split.split(p) : [p]
        }
    }

    /// One step on one piece, Isolated: the matches and the text between them, in order.
    func split(_ piece: Substring.UnicodeScalarView, _ step: Step) -> [Substring.UnicodeScalarView] {
        switch step {
        case .qwen:
            return QwenSplit.split(piece)
        case .o200k:
            return O200kSplit.split(piece)
        case .deepSeekDigits: return DeepSeekSplit.splitDigits(piece)
        case .deepSeekCJK: return DeepSeekSplit.splitCJK(piece)
        case .deepSeekMain: return DeepSeekSplit.splitMain(piece)
        case let .digits(individual):
            var out: [Substring.UnicodeScalarView] = []
            var i = piece.startIndex
            while i < piece.endIndex {
                let digit = Self.isNumeric(piece[i])
                var j = piece.index(after: i)
                if !(digit && individual) {
                    while j < piece.endIndex, Self.isNumeric(piece[j]) == digit { j = piece.index(after: j) }
                }
                out.append(piece[i..<j])
                i = j
            }
            return out
        case let .regex(regex):
            let text = Substring(piece)
            var out: [Substring.UnicodeScalarView] = []
            var last = text.startIndex
            for match in text.matches(of: regex) where !match.range.isEmpty {
                if match.range.lowerBound > last { out.append(text[last..<match.range.lowerBound].unicodeScalars) }
                out.append(text[match.range].unicodeScalars)
                last = match.range.upperBound
            }
            if last < text.endIndex { out.append(text[last...].unicodeScalars) }
            return out
        }
    }

    /// Rust's `char::is_numeric`, which `tokenizers`' Digits uses: Nd, Nl and No.
    static func isNumeric(_ c: Unicode.Scalar) -> Bool {
        switch c.properties.generalCategory {
        case .decimalNumber, .letterNumber, .otherNumber: return true
        default: return false
        }
    }
}
