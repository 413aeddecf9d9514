import Foundation
import TesseraCore
import TesseraTokenizers

/// Text to token ids and back for a served model: its Hugging Face tokenizer when it has
/// one (tokenizer.json beside the checkpoint or in the library), else UTF-8 bytes.
public struct TextVocabulary: Sendable {
    public let tokenizer: Tokenizer?
    /// The token that ends a generation (the tokenizer's end-of-text; none for bytes).
    public let endOfText: Int32?

    public static let bytes = TextVocabulary(tokenizer: nil, endOfText: nil)

    public init(tokenizer: Tokenizer?, endOfText: Int32?) {
        self.tokenizer = tokenizer
        self.endOfText = endOfText
    }

    /// The vocabulary of a checkpoint directory or library: `DIR/tokenizer.json` when it
    /// exists, its end-of-text from tokenizer_config.json's eos_token or `<|endoftext|>`.
    public static func of(directory: String) throws -> TextVocabulary {
        let path = (directory as NSString).appendingPathComponent("tokenizer.json")
        guard FileManager.default.fileExists(atPath: path) else { return .bytes }
        let tokenizer = try Tokenizer(path: path)
        var names = ["<|endoftext|>"]
        let configPath = (directory as NSString).appendingPathComponent("tokenizer_config.json")
        if let data = FileManager.default.contents(atPath: configPath),
           case .object(let fields)? = try? JSONValue.parse(data) {
            switch fields.first(where: { $0.0 == "eos_token" })?.1 {
            case .string(let s)?: names.insert(s, at: 0)
            case .object(let o)?: if case .string(let s)? = o.first(where: { $0.0 == "content" })?.1 { names.insert(s, at: 0) }
            default: break
            }
        }
        let eot = names.lazy.compactMap { tokenizer.id(of: $0) }.first.map { Int32($0) }
        return TextVocabulary(tokenizer: tokenizer, endOfText: eot)
    }

    public func encode(_ text: String) throws -> [Int32] {
        guard let tokenizer else { return text.utf8.map { Int32($0) } }
        return try tokenizer.encode(text).map { Int32($0) }
    }

    /// The text of `ids`; with `complete`, only up to the last whole UTF-8 character, so
    /// that a stream never shows half of one.
    public func decode(_ ids: [Int32], complete: Bool = false) -> String {
        if let tokenizer {
            let text = tokenizer.decode(ids.map { Int($0) })
            return complete && text.hasSuffix("\u{FFFD}") ? String(text.dropLast()) : text
        }
        var bytes = ids.map { UInt8(truncatingIfNeeded: $0) }
        if complete { bytes.removeLast(Self.incompleteTail(bytes)) }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Bytes at the end of `bytes` that begin a UTF-8 character not yet complete.
    static func incompleteTail(_ bytes: [UInt8]) -> Int {
        var i = bytes.count
        while i > 0, bytes.count - i < 3, bytes[i - 1] & 0xC0 == 0x80 { i -= 1 }
        guard i > 0 else { return 0 }
        let lead = bytes[i - 1], have = bytes.count - i + 1
        let need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1
        return have < need ? have : 0
    }
}
