@preconcurrency import Crypto
import Foundation
import TesseraEngine
import TesseraLibrary
import TesseraCore
import TesseraTokenizers

/// Turns text into token windows (bytes as tokens for a byte-vocabulary model, or a
/// Hugging Face tokenizer's ids with its end-of-text token between documents) and
/// splits it into a public training part and a held-out part by a keyed hash of each
/// document: who does not hold the key cannot tell which documents were held out.
public enum Corpus {
    public enum Separator: String, Sendable, CaseIterable {
        /// fortune files: documents separated by lines holding a single "%".
        case fortune
        /// documents separated by blank lines.
        case paragraph
    }

    public struct Options: Sendable {
        public var seq: Int
        public var heldOutBps: Int
        public var key: [UInt8]
        public var separator: Separator
        /// Tokens are this tokenizer's ids (nil: UTF-8 bytes), documents joined by `endOfText`.
        public var tokenizer: Tokenizer?
        public var endOfText: Int?
        public init(seq: Int, heldOutBps: Int, key: [UInt8], separator: Separator, tokenizer: Tokenizer? = nil, endOfText: Int? = nil) {
            self.seq = seq; self.heldOutBps = heldOutBps; self.key = key; self.separator = separator
            self.tokenizer = tokenizer; self.endOfText = endOfText
        }
    }

    public struct Input: Codable, Sendable, Equatable {
        public var path: String
        public var bytes: Int
        public var sha256: String
    }

    public struct Report: Codable, Sendable, Equatable {
        public var inputs: [Input]
        public var seq: Int
        public var heldOutBps: Int
        public var documents: Int
        public var trainDocuments: Int
        public var heldOutDocuments: Int
        public var trainWindows: Int
        public var heldOutWindows: Int
        public var trainBytes: Int
        public var heldOutBytes: Int
        /// SHA-256 of the held-out token file: what a validator commits to.
        public var heldOutSHA256: String
        /// SHA-256 of the tokenizer.json the tokens come from (absent: UTF-8 bytes).
        public var tokenizerSHA256: String?

        enum CodingKeys: String, CodingKey {
            case inputs, seq, documents
            case heldOutBps = "held_out_bps"
            case trainDocuments = "train_documents"
            case heldOutDocuments = "held_out_documents"
            case trainWindows = "train_windows"
            case heldOutWindows = "held_out_windows"
            case trainBytes = "train_bytes"
            case heldOutBytes = "held_out_bytes"
            case heldOutSHA256 = "held_out_sha256"
            case tokenizerSHA256 = "tokenizer_sha256"
        }
    }

    /// Documents of a text, trimmed, empty ones dropped.
    public static func documents(_ text: String, separator: Separator) -> [String] {
        var docs: [String] = []
        var current: [Substring] = []
        func flush() {
            let doc = current.joined(separator: "\n").trimmingCharacters(in: .whitespacesAndNewlines)
            if !doc.isEmpty { docs.append(doc) }
            current.removeAll()
        }
        // By newline characters, not "\n" alone: "\r\n" is one Character in Swift, and a file with
        // Windows line endings would otherwise be one line (one document).
        for line in text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline) {
            let boundary: Bool
            switch separator {
            case .fortune: boundary = line.trimmingCharacters(in: .whitespaces) == "%"
            case .paragraph: boundary = line.trimmingCharacters(in: .whitespaces).isEmpty
            }
            if boundary { flush() } else { current.append(line) }
        }
        flush()
        return docs
    }

    /// True when the keyed hash of the document puts it in the held-out part.
    public static func isHeldOut(_ document: String, key: [UInt8], bps: Int) -> Bool {
        isHeldOut(bytes: Array(document.utf8), key: key, bps: bps)
    }

    static func isHeldOut(bytes: [UInt8], key: [UInt8], bps: Int) -> Bool {
        let mac = HMAC<SHA256>.authenticationCode(for: bytes, using: SymmetricKey(data: key))
        let v = Array(mac).prefix(8).reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        return Int(v % 10_000) < bps
    }

    /// Token windows [n, seq] of a stream of documents, each as `tokens` gives it, with
    /// `separator` between them; the tail shorter than a window is dropped. `bytes` counts
    /// the documents' UTF-8 and `separatorBytes` for each separator.
    static func windows(_ docs: [String], seq: Int, separator: [Int64], separatorBytes: Int,
                        tokens: (String) throws -> [Int64]) rethrows -> (ids: [Int64], count: Int, bytes: Int) {
        var stream: [Int64] = []
        var bytes = 0
        for (i, d) in docs.enumerated() {
            if i > 0 { stream += separator; bytes += separatorBytes }
            stream += try tokens(d)
            bytes += d.utf8.count
        }
        let n = seq > 0 ? stream.count / seq : 0
        return (Array(stream.prefix(n * seq)), n, bytes)
    }

    /// Byte-token windows [n, seq] of a stream of documents joined by a blank line.
    public static func windows(_ docs: [String], seq: Int) -> (ids: [Int64], count: Int, bytes: Int) {
        windows(docs, seq: seq, separator: [0x0A, 0x0A], separatorBytes: 2) { $0.utf8.map { Int64($0) } }
    }

    /// Files named directly, and for a directory its regular files (not symlinks, which in
    /// Debian's fortune directories point into other languages' folders), skipping fortune
    /// index files (`.dat`) and the `.u8` duplicates; sorted by name, so the order is fixed.
    public static func expandInputs(_ inputs: [String]) throws -> [String] {
        let fm = FileManager.default
        var out: [String] = []
        for path in inputs {
            var isDir: ObjCBool = false
            guard fm.fileExists(atPath: path, isDirectory: &isDir) else { throw LibraryError("\(path): no such file or directory") }
            guard isDir.boolValue else { out.append(path); continue }
            let names = try fm.contentsOfDirectory(atPath: path).sorted()
            for name in names where !name.hasSuffix(".dat") && !name.hasSuffix(".u8") && !name.hasPrefix(".") {
                let full = (path as NSString).appendingPathComponent(name)
                let attrs = try fm.attributesOfItem(atPath: full)
                if attrs[.type] as? FileAttributeType == .typeRegular { out.append(full) }
            }
        }
        guard !out.isEmpty else { throw LibraryError("no text files in \(inputs.joined(separator: ", "))") }
        return out
    }

    /// Reads the inputs, splits and writes `train.safetensors`, `heldout.safetensors` (each
    /// an int64 `input_ids` [windows, seq]) and `corpus.json` into `out`.
    public static func build(inputs: [String], options o: Options, out: String) throws -> Report {
        guard o.seq >= 2 else { throw LibraryError("--seq \(o.seq) must be at least 2") }
        guard (1...9_999).contains(o.heldOutBps) else { throw LibraryError("--held-out-bps \(o.heldOutBps) must be in 1...9999") }
        guard o.key.count >= 16 else { throw LibraryError("the held-out key must be at least 16 bytes") }
        guard !inputs.isEmpty else { throw LibraryError("no input files") }
        if let tokenizer = o.tokenizer {
            guard let eot = o.endOfText, eot >= 0, eot < tokenizer.vocabularySize else {
                throw LibraryError("a tokenizer corpus needs the end-of-text token's id (within the tokenizer's \(tokenizer.vocabularySize) ids)")
            }
        }
        var docs: [String] = []
        var recorded: [Input] = []
        for path in try expandInputs(inputs) {
            guard let data = FileManager.default.contents(atPath: path) else { throw LibraryError("\(path): cannot read") }
            guard let text = String(data: data, encoding: .utf8) else { throw LibraryError("\(path): not UTF-8 text") }
            recorded.append(Input(path: path, bytes: data.count, sha256: ContentHash.sha256(Array(data))))
            docs += documents(text, separator: o.separator)
        }
        var held: [String] = [], train: [String] = []
        for d in docs {
            if isHeldOut(d, key: o.key, bps: o.heldOutBps) { held.append(d) } else { train.append(d) }
        }
        let t: (ids: [Int64], count: Int, bytes: Int), h: (ids: [Int64], count: Int, bytes: Int)
        var metadata = ["format": "pt"]
        if let tokenizer = o.tokenizer, let eot = o.endOfText {
            let tokens = { (d: String) in try tokenizer.encode(d).map { Int64($0) } }
            t = try windows(train, seq: o.seq, separator: [Int64(eot)], separatorBytes: 0, tokens: tokens)
            h = try windows(held, seq: o.seq, separator: [Int64(eot)], separatorBytes: 0, tokens: tokens)
            metadata["tessera.tokenizer_sha256"] = tokenizer.contentHash
        } else {
            t = windows(train, seq: o.seq)
            h = windows(held, seq: o.seq)
        }
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        let trainPath = (out as NSString).appendingPathComponent("train.safetensors")
        let heldPath = (out as NSString).appendingPathComponent("heldout.safetensors")
        try SafetensorsWriter.write([TensorRecord(name: "input_ids", shape: [t.count, o.seq], int64s: t.ids)], metadata: metadata, to: trainPath)
        try SafetensorsWriter.write([TensorRecord(name: "input_ids", shape: [h.count, o.seq], int64s: h.ids)], metadata: metadata, to: heldPath)
        let report = Report(inputs: recorded, seq: o.seq, heldOutBps: o.heldOutBps, documents: docs.count,
                            trainDocuments: train.count, heldOutDocuments: held.count, trainWindows: t.count, heldOutWindows: h.count,
                            trainBytes: t.bytes, heldOutBytes: h.bytes, heldOutSHA256: try ContentHash.sha256(file: heldPath),
                            tokenizerSHA256: o.tokenizer?.contentHash)
        try AtomicFile.write(try JSONOutput.pretty(report), to: (out as NSString).appendingPathComponent("corpus.json"))
        return report
    }

    /// For models with their own tokenizer: splits already-tokenized windows (a safetensors
    /// file with int64 `input_ids` [n, seq], made by any tokenizer) into training and
    /// held-out windows by the keyed hash of each window's token ids.
    public static func splitTokenWindows(_ input: String, heldOutBps: Int, key: [UInt8], out: String) throws -> Report {
        guard (1...9_999).contains(heldOutBps) else { throw LibraryError("--held-out-bps \(heldOutBps) must be in 1...9999") }
        guard key.count >= 16 else { throw LibraryError("the held-out key must be at least 16 bytes") }
        let windows = try TokenWindows.load(path: input)
        var train: [Int32] = [], held: [Int32] = []
        for i in 0..<windows.count {
            let slice = windows.ids[(i * windows.seq)..<((i + 1) * windows.seq)]
            var bytes: [UInt8] = []
            for id in slice { withUnsafeBytes(of: Int64(id).littleEndian) { bytes += $0 } }
            if isHeldOut(bytes: bytes, key: key, bps: heldOutBps) { held += slice } else { train += slice }
        }
        let trainWindows = TokenWindows(seq: windows.seq, ids: train, origin: input)
        let heldWindows = TokenWindows(seq: windows.seq, ids: held, origin: input)
        let trainCount = trainWindows.count, heldCount = heldWindows.count
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        let heldPath = (out as NSString).appendingPathComponent("heldout.safetensors")
        try trainWindows.write(to: (out as NSString).appendingPathComponent("train.safetensors"))
        try heldWindows.write(to: heldPath)
        let data = FileManager.default.contents(atPath: input) ?? Data()
        let report = Report(inputs: [Input(path: input, bytes: data.count, sha256: ContentHash.sha256(Array(data)))], seq: windows.seq,
                            heldOutBps: heldOutBps, documents: windows.count, trainDocuments: trainCount, heldOutDocuments: heldCount,
                            trainWindows: trainCount, heldOutWindows: heldCount, trainBytes: trainCount * windows.seq * 8,
                            heldOutBytes: heldCount * windows.seq * 8, heldOutSHA256: try ContentHash.sha256(file: heldPath))
        try AtomicFile.write(try JSONOutput.pretty(report), to: (out as NSString).appendingPathComponent("corpus.json"))
        return report
    }
}
