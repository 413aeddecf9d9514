import Foundation
import TesseraCore

/// A Hugging Face `tokenizer.json`, reproduced exactly for the components read here:
/// byte-level BPE (GPT-2, Qwen, OLMoE style) with the ByteLevel pre-tokenizer or Qwen2's
/// Split before it; SentencePiece-style BPE (Llama, Mixtral) over characters with
/// byte_fallback and fuse_unk, after the Prepend/Replace normalizers or the Metaspace
/// pre-tokenizer; the NFC, NFKC, Prepend, Replace and Sequence normalizers; added and
/// special tokens (matched before anything else, leftmost and longest, with lstrip,
/// rstrip and single_word); TemplateProcessing and ByteLevel post-processors; the ByteLevel decoder and the
/// Replace, ByteFallback, Fuse, Strip and Metaspace decoder steps. Any other component is
/// refused by name rather than tokenized wrongly.
public struct Tokenizer: Sendable {
    struct AddedToken: Sendable {
        let id: Int
        let content: String
        let special: Bool
        let lstrip: Bool, rstrip: Bool
        /// Matches only where no word character (Rust's is_alphanumeric, or "_") touches it.
        let singleWord: Bool
        var scalars: [Unicode.Scalar] { Array(content.unicodeScalars) }
    }

    /// How text between added tokens is cut into words before BPE.
    enum PreTokenizer: Sendable {
        /// ByteLevel with its own expression (GPT-2's).
        case gpt2
        /// Split on Qwen2's expression (isolated), then ByteLevel without an expression.
        case qwen2
        /// None: each text between added tokens is one word of characters (SentencePiece).
        case none
        case metaspace(Metaspace)
        /// Split and Digits steps, then ByteLevel (DeepSeek's, gpt-oss's, Digits files).
        case pipeline(SplitPipeline)

        var isGPT2: Bool { if case .gpt2 = self { return true } else { return false } }
        var byteLevel: Bool {
            switch self {
            case .gpt2, .qwen2, .pipeline: return true
            case .none, .metaspace: return false
            }
        }
    }

    enum Decoder: Sendable {
        case byteLevel
        case steps([DecoderStep])
    }

    /// TemplateProcessing's single-sequence template: special tokens' ids around the text
    /// (nil: the ids are the text's alone).
    let template: [TemplateItem]?
    enum TemplateItem: Sendable { case ids([Int]), text }

    let added: [AddedToken]
    /// Indices into `added` by first scalar, longest first, with each token's scalars:
    /// DeepSeek's file has 1,283 added tokens, and trying each at every position of a text
    /// cost more than the rest of encoding.
    let addedByFirst: [Unicode.Scalar: [(index: Int, scalars: [Unicode.Scalar])]]
    let addPrefixSpace: Bool
    let preTokenizer: PreTokenizer
    /// Applied in order to each text between added tokens.
    let normalizers: [Normalization]
    let decoder: Decoder
    let model: BPEModel
    let idToToken: [Int: String]
    /// SHA-256 of the file: what a library records to refuse token files made with another.
    public let contentHash: String

    public var vocabularySize: Int { (idToToken.keys.max() ?? -1) + 1 }

    /// PATH is a tokenizer.json or a directory holding one.
    public init(path: String) throws {
        var isDirectory: ObjCBool = false
        let file = FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) && isDirectory.boolValue
            ? (path as NSString).appendingPathComponent("tokenizer.json") : path
        guard let data = FileManager.default.contents(atPath: file) else { throw TokenizerError("\(file): cannot be read") }
        try self.init(json: data, file: file)
    }

    public init(json data: Data, file: String) throws {
        func bad(_ why: String) -> TokenizerError { TokenizerError("\(file): \(why)") }
        let root: JSONValue
        do { root = try JSONValue.parse(data) } catch { throw bad("not valid JSON (\(error))") }
        func type(_ v: JSONValue?) -> String? { v?["type"]?.stringValue }
        func isNull(_ v: JSONValue?) -> Bool { v == nil || v == .null }
        func flag(_ v: JSONValue?, _ key: String) -> Bool { v?[key]?.boolValue ?? false }

        func normalizer(_ n: JSONValue) throws -> [Normalization] {
            switch type(n) {
            case "NFC": return [.nfc]
            case "NFKC": return [.nfkc]
            case "Prepend":
                guard let p = n["prepend"]?.stringValue else { throw bad("normalizer Prepend lacks its prepend string") }
                return [.prepend(p)]
            case "Replace":
                guard let pattern = n["pattern"]?["String"]?.stringValue, let content = n["content"]?.stringValue else {
                    throw bad("normalizer Replace with a Regex pattern is not supported (a String pattern is)")
                }
                return [.replace(pattern, content)]
            case "Sequence": return try (n["normalizers"]?.arrayValue ?? []).flatMap(normalizer)
            default: throw bad("normalizer \(type(n) ?? "?") is not supported (NFC, NFKC, Prepend, Replace and Sequence are)")
            }
        }
        normalizers = isNull(root["normalizer"]) ? [] : try normalizer(root["normalizer"]!)
        func metaspace(_ m: JSONValue, _ what: String) throws -> Metaspace {
            guard let r = m["replacement"]?.stringValue, r.unicodeScalars.count == 1, let replacement = r.unicodeScalars.first else {
                throw bad("\(what) Metaspace needs a one-character replacement")
            }
            // Older files spell the scheme as add_prefix_space.
            let spelled = m["prepend_scheme"]?.stringValue ?? ((m["add_prefix_space"]?.boolValue ?? true) ? "always" : "never")
            guard let scheme = Metaspace.Scheme(rawValue: spelled) else { throw bad("\(what) Metaspace prepend_scheme \(spelled) is not one of always, first, never") }
            return Metaspace(replacement: replacement, scheme: scheme, split: m["split"]?.boolValue ?? true)
        }
        let pre = root["pre_tokenizer"]
        switch type(pre) {
        case nil where isNull(pre):
            preTokenizer = .none
            addPrefixSpace = false
        case "Metaspace":
            preTokenizer = .metaspace(try metaspace(pre!, "pre_tokenizer"))
            addPrefixSpace = false
        case "ByteLevel":
            guard pre?["use_regex"]?.boolValue ?? true else { throw bad("pre_tokenizer ByteLevel without use_regex is not supported alone") }
            preTokenizer = .gpt2
            addPrefixSpace = flag(pre, "add_prefix_space")
        case "Sequence":
            let parts = pre?["pretokenizers"]?.arrayValue ?? []
            // Qwen2's exact pair keeps its own path; any other Split/Digits sequence is a pipeline.
            if parts.count == 2, type(parts[0]) == "Split", type(parts[1]) == "ByteLevel",
               parts[0]["pattern"]?["Regex"]?.stringValue == QwenSplit.pattern,
               parts[0]["behavior"]?.stringValue == "Isolated", !flag(parts[0], "invert"),
               !(parts[1]["use_regex"]?.boolValue ?? true) {
                preTokenizer = .qwen2
                addPrefixSpace = flag(parts[1], "add_prefix_space")
            } else {
                preTokenizer = .pipeline(try SplitPipeline(parts, bad: bad))
                addPrefixSpace = false
            }
        default:
            throw bad("pre_tokenizer \(type(pre) ?? "none") is not supported (ByteLevel, Split then ByteLevel, Metaspace, or none are)")
        }
        func decoderSteps(_ d: JSONValue) throws -> [DecoderStep] {
            switch type(d) {
            case "Sequence": return try (d["decoders"]?.arrayValue ?? []).flatMap(decoderSteps)
            case "Replace":
                guard let pattern = d["pattern"]?["String"]?.stringValue, let content = d["content"]?.stringValue else {
                    throw bad("decoder Replace with a Regex pattern is not supported (a String pattern is)")
                }
                return [.replace(pattern, content)]
            case "ByteFallback": return [.byteFallback]
            case "Fuse": return [.fuse]
            case "Strip":
                guard let c = d["content"]?.stringValue, c.unicodeScalars.count == 1, let content = c.unicodeScalars.first,
                      let start = d["start"]?.intValue, let stop = d["stop"]?.intValue, start >= 0, stop >= 0 else {
                    throw bad("decoder Strip needs one content character and non-negative start and stop")
                }
                return [.strip(content, start: start, stop: stop)]
            case "Metaspace":
                let m = try metaspace(d, "decoder")
                return [.metaspace(m.replacement, m.scheme)]
            default: throw bad("decoder \(type(d) ?? "?") is not supported (ByteLevel, or Sequence of Replace, ByteFallback, Fuse, Strip, Metaspace, is)")
            }
        }
        if isNull(root["decoder"]) {
            decoder = preTokenizer.byteLevel ? .byteLevel : .steps([])
        } else if type(root["decoder"]) == "ByteLevel" {
            guard preTokenizer.byteLevel else { throw bad("decoder ByteLevel does not match a pre-tokenizer that is not byte-level") }
            decoder = .byteLevel
        } else {
            guard !preTokenizer.byteLevel else { throw bad("decoder \(type(root["decoder"]) ?? "?") is not supported with a byte-level pre-tokenizer (ByteLevel is)") }
            decoder = .steps(try decoderSteps(root["decoder"]!))
        }
        // Post-processors: ByteLevel changes offsets only; TemplateProcessing adds ids. A
        // Sequence of those two is read as its parts.
        var processors: [JSONValue] = []
        if let p = root["post_processor"], !isNull(p) { processors = type(p) == "Sequence" ? (p["processors"]?.arrayValue ?? []) : [p] }
        var template: [TemplateItem]?
        for p in processors {
            switch type(p) {
            case "ByteLevel": continue
            case "TemplateProcessing":
                guard template == nil, let single = p["single"]?.arrayValue else { throw bad("post_processor TemplateProcessing lacks its single template") }
                template = try single.map { item in
                    if let seq = item["Sequence"] {
                        guard seq["id"]?.stringValue == "A" else { throw bad("post_processor TemplateProcessing: the single template names sequence \(seq["id"]?.stringValue ?? "?")") }
                        return .text
                    }
                    guard let name = item["SpecialToken"]?["id"]?.stringValue,
                          let ids = p["special_tokens"]?[name]?["ids"]?.arrayValue?.compactMap(\.intValue), !ids.isEmpty else {
                        throw bad("post_processor TemplateProcessing: an item of the single template is neither the sequence nor a known special token")
                    }
                    return .ids(ids)
                }
            default:
                throw bad("post_processor \(type(p) ?? "?") is not supported (ByteLevel and TemplateProcessing are)")
            }
        }
        self.template = template

        guard let m = root["model"], type(m) == "BPE" || (type(m) == nil && m["merges"] != nil) else {
            throw bad("model \(type(root["model"]) ?? "none") is not supported (BPE is)")
        }
        guard isNull(m["dropout"]) else { throw bad("model BPE with dropout is not supported (it is not deterministic)") }
        for key in ["continuing_subword_prefix", "end_of_word_suffix"] where !(isNull(m[key]) || m[key]?.stringValue == "") {
            throw bad("model BPE with \(key) is not supported")
        }
        guard !(flag(m, "byte_fallback") && preTokenizer.byteLevel) else { throw bad("model BPE with byte_fallback after a byte-level pre-tokenizer is not supported") }
        guard let vocabMembers = m["vocab"]?.objectMembers else { throw bad("model.vocab is not an object") }
        var vocab: [String: Int] = [:]
        var idToToken: [Int: String] = [:]
        for (token, value) in vocabMembers {
            guard let id = value.intValue, id >= 0, id < 1 << 24 else { throw bad("model.vocab[\(token.debugDescription)] is not a token id") }
            vocab[token] = id
            idToToken[id] = token
        }
        guard let merges = m["merges"]?.arrayValue else { throw bad("model.merges is not an array") }
        var ranks: [BPEModel.Pair: Int] = [:]
        for (rank, merge) in merges.enumerated() {
            let parts: [String]
            if let text = merge.stringValue {
                parts = text.split(separator: " ", omittingEmptySubsequences: false).map(String.init)
            } else {
                parts = merge.arrayValue?.compactMap(\.stringValue) ?? []
            }
            guard parts.count == 2 else { throw bad("model.merges[\(rank)] is not a pair of symbols") }
            let pair = BPEModel.Pair(left: parts[0], right: parts[1])
            if ranks[pair] == nil { ranks[pair] = rank }
        }
        var unknown: Int?
        if let unk = m["unk_token"]?.stringValue {
            guard let id = vocab[unk] else { throw bad("model.unk_token \(unk.debugDescription) is not in the vocabulary") }
            unknown = id
        }
        var model: BPEModel
        do { model = try BPEModel(vocab: vocab, ranks: ranks, ignoreMerges: flag(m, "ignore_merges"), unknown: unknown) } catch { throw bad("\(error)") }
        model.byteFallback = flag(m, "byte_fallback")
        model.fuseUnknown = flag(m, "fuse_unk")
        model.unknownToken = m["unk_token"]?.stringValue
        self.model = model

        var added: [AddedToken] = []
        for (i, t) in (root["added_tokens"]?.arrayValue ?? []).enumerated() {
            guard let id = t["id"]?.intValue, id >= 0, id < 1 << 24, let content = t["content"]?.stringValue, !content.isEmpty else {
                throw bad("added_tokens[\(i)] lacks an id or content")
            }
            added.append(AddedToken(id: id, content: content, special: flag(t, "special"), lstrip: flag(t, "lstrip"), rstrip: flag(t, "rstrip"),
                                    singleWord: flag(t, "single_word")))
            idToToken[id] = content
        }
        // Longest first, so that a scan taking the first match at a position takes the longest.
        self.added = added.sorted { $0.content.unicodeScalars.count > $1.content.unicodeScalars.count }
        var byFirst: [Unicode.Scalar: [(index: Int, scalars: [Unicode.Scalar])]] = [:]
        for (k, t) in self.added.enumerated() { if let first = t.content.unicodeScalars.first { byFirst[first, default: []].append((k, t.scalars)) } }
        addedByFirst = byFirst
        self.idToToken = idToToken
        contentHash = ContentHash.sha256(Array(data))
    }

    /// `Tokenizer.from_file(path).encode(text).ids` of `tokenizers` (post-processor applied).
    public func encode(_ text: String) throws -> [Int] {
        let ids = try encodeText(text)
        guard let template else { return ids }
        return template.flatMap { item -> [Int] in
            switch item {
            case let .ids(special): return special
            case .text: return ids
            }
        }
    }

    func encodeText(_ text: String) throws -> [Int] {
        var ids: [Int] = []
        // Words repeat: their ids are kept for the rest of the text, as tokenizers' BPE
        // caches words (up to 10,000 of them; past that, new words are not kept).
        // Keyed by the UTF-8 bytes: Swift's String equality is canonical equivalence, and
        // "é" and "e\u{301}" are different words to a byte-level BPE.
        var cache: [[UInt8]: [Int]] = [:]
        func byteLevelWord(_ word: Substring.UnicodeScalarView) throws -> [Int] {
            let key = Array(String(word).utf8)
            if let hit = cache[key] { return hit }
            let found = try model.byteLevelIDs(word)
            if cache.count < 10_000 { cache[key] = found }
            return found
        }
        for segment in segments(text) {
            switch segment {
            case let .added(id): ids.append(id)
            case let .text(piece, atStart):
                var normalized = String(piece)
                for n in normalizers { normalized = n.apply(normalized) }
                var scalars = normalized[...].unicodeScalars
                switch preTokenizer {
                case let .pipeline(pipeline):
                    for word in pipeline.words(scalars) { ids += try byteLevelWord(word) }
                case .gpt2, .qwen2:
                    if addPrefixSpace, let first = scalars.first, !ScalarScanner.isSpace(first) {
                        scalars = (" " + String(scalars))[...].unicodeScalars
                    }
                    let words = preTokenizer.isGPT2 ? GPT2Split.split(scalars) : QwenSplit.split(scalars)
                    for word in words { ids += try byteLevelWord(word) }
                case .none:
                    if !normalized.isEmpty { ids += try model.characterIDs(normalized) }
                case let .metaspace(m):
                    for word in m.words(normalized, atStart: atStart) { ids += try model.characterIDs(word) }
                }
            }
        }
        return ids
    }

    /// The id of a token: an added token's content or a vocabulary entry.
    public func id(of token: String) -> Int? {
        added.first { $0.content == token }?.id ?? model.vocab[token]
    }

    /// `decode(ids, skip_special_tokens=False)` of `tokenizers`: ids it does not know are skipped.
    public func decode(_ ids: [Int]) -> String {
        switch decoder {
        case .byteLevel:
            var bytes: [UInt8] = []
            for id in ids { if let token = idToToken[id] { bytes += ByteLevel.decode(token) } }
            return String(decoding: bytes, as: UTF8.self)
        case let .steps(steps):
            var tokens = ids.compactMap { idToToken[$0] }
            for step in steps { tokens = step.apply(tokens) }
            return tokens.joined()
        }
    }

    /// Rust's `char::is_alphanumeric` (the Alphabetic property, or a number category) or "_".
    static func isWordCharacter(_ c: Unicode.Scalar) -> Bool {
        c == "_" || c.properties.isAlphabetic || ScalarScanner.isNumber(c)
    }

    /// Text between added tokens; `atStart` when it begins the original text.
    enum Segment { case added(Int), text(Substring.UnicodeScalarView, atStart: Bool) }

    /// The text split around added tokens: at each position the longest added token that
    /// starts there, earliest position first; lstrip and rstrip take the whitespace beside it.
    func segments(_ text: String) -> [Segment] {
        let scalars = Array(text.unicodeScalars)
        guard !added.isEmpty else { return scalars.isEmpty ? [] : [.text(text[...].unicodeScalars, atStart: true)] }
        var out: [Segment] = []
        var pending: [Unicode.Scalar] = []
        var pendingStart = 0
        func flush(next: Int) {
            if !pending.isEmpty { out.append(.text(String(String.UnicodeScalarView(pending))[...].unicodeScalars, atStart: pendingStart == 0)) }
            pending = []
            pendingStart = next
        }
        var i = 0
        while i < scalars.count {
            guard let (k, tokenScalars) = addedByFirst[scalars[i]]?.first(where: { _, t in
                      i + t.count <= scalars.count && scalars[i..<(i + t.count)].elementsEqual(t) }) else {
                pending.append(scalars[i])
                i += 1
                continue
            }
            let hit = added[k], length = tokenScalars.count
            // A single_word match inside a word is text, and as in tokenizers' non-overlapping
            // search, no other token is looked for inside it.
            if hit.singleWord, (i > 0 && Self.isWordCharacter(scalars[i - 1]))
                || (i + length < scalars.count && Self.isWordCharacter(scalars[i + length])) {
                pending += tokenScalars
                i += length
                continue
            }
            if hit.lstrip { while let last = pending.last, ScalarScanner.isSpace(last) { pending.removeLast() } }
            flush(next: i)
            out.append(.added(hit.id))
            i += length
            if hit.rstrip { while i < scalars.count, ScalarScanner.isSpace(scalars[i]) { i += 1 } }
            pendingStart = i
        }
        flush(next: i)
        return out
    }
}
