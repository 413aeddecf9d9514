import Foundation
import TesseraEngine
import TesseraLibrary
import TesseraCore

/// Token windows [count, seq] of one corpus part, as `tessera corpus` writes them.
public struct TokenWindows: Sendable {
    public let seq: Int
    public let count: Int
    public let ids: [Int32]
    /// Where the windows came from, for error messages and reports.
    public let origin: String
    /// The tokenizer.json hash `tessera corpus` recorded (nil: the byte vocabulary).
    public let tokenizerSHA256: String?

    public init(seq: Int, ids: [Int32], origin: String, tokenizerSHA256: String? = nil) {
        self.seq = seq
        self.count = seq > 0 ? ids.count / seq : 0
        self.ids = ids
        self.origin = origin
        self.tokenizerSHA256 = tokenizerSHA256
    }

    public static func load(path: String) throws -> TokenWindows {
        let file = try SafetensorsFile(path: path)
        let batch = try TokenBatch.load(file: file, path: path)
        return TokenWindows(seq: batch.seq, ids: batch.ids, origin: path, tokenizerSHA256: file.metadata["tessera.tokenizer_sha256"])
    }

    /// Refuses these windows for `library` when they were made with another vocabulary.
    public func requireVocabulary(of library: ExpertLibrary) throws {
        try library.requireVocabulary(ofTokenFile: origin, tokenizerSHA256: tokenizerSHA256)
    }

    /// Writes the windows as int64 `input_ids` [count, seq], the format `load` reads.
    public func write(to path: String) throws {
        try SafetensorsWriter.write([TensorRecord(name: "input_ids", shape: [count, seq], int64s: ids.map(Int64.init))], to: path)
    }

    /// The windows at `indices`, as one batch.
    public func batch(_ indices: [Int]) throws -> TokenBatch {
        var out: [Int32] = []
        out.reserveCapacity(indices.count * seq)
        for i in indices {
            guard i >= 0, i < count else { throw EngineError.invalidInput("\(origin): window \(i) is outside 0..<\(count)") }
            out += ids[(i * seq)..<((i + 1) * seq)]
        }
        return try TokenBatch(batch: indices.count, seq: seq, ids: out)
    }

    /// The first `n` windows (all when n is nil or larger).
    public func prefix(_ n: Int?) -> TokenWindows {
        let k = max(0, min(n ?? count, count))
        return TokenWindows(seq: seq, ids: Array(ids.prefix(k * seq)), origin: origin, tokenizerSHA256: tokenizerSHA256)
    }

    /// `n` windows evenly spaced through the whole set (all when n ≥ count): a sample that
    /// covers every source file, where a prefix would cover only the first ones.
    public func spread(_ n: Int) -> TokenWindows {
        guard n < count else { return self }
        var out: [Int32] = []
        for j in 0..<n {
            let i = j * count / n
            out += ids[(i * seq)..<((i + 1) * seq)]
        }
        return TokenWindows(seq: seq, ids: out, origin: "\(origin) (\(n) spread windows)", tokenizerSHA256: tokenizerSHA256)
    }

    /// Windows whose index modulo `parts` equals `part`: disjoint shares for several users.
    public func share(_ part: Int, of parts: Int) -> TokenWindows {
        var out: [Int32] = []
        for i in stride(from: part, to: count, by: parts) { out += ids[(i * seq)..<((i + 1) * seq)] }
        return TokenWindows(seq: seq, ids: out, origin: "\(origin) (share \(part + 1) of \(parts))", tokenizerSHA256: tokenizerSHA256)
    }

    /// These windows followed by `other`'s (same window length required).
    public func appending(_ other: TokenWindows) throws -> TokenWindows {
        guard other.seq == seq else { throw EngineError.invalidInput("\(other.origin): windows of \(other.seq) tokens cannot join windows of \(seq)") }
        guard other.tokenizerSHA256 == tokenizerSHA256 else {
            throw EngineError.invalidInput("\(other.origin): made with another vocabulary than \(origin); both must come from the same tokenizer")
        }
        return TokenWindows(seq: seq, ids: ids + other.ids, origin: "\(origin) + \(other.origin)", tokenizerSHA256: tokenizerSHA256)
    }

    /// SHA-256 over the token ids as little-endian int64, the bytes of the safetensors tensor.
    public var contentHash: String {
        var bytes = [UInt8]()
        bytes.reserveCapacity(ids.count * 8)
        for id in ids { withUnsafeBytes(of: Int64(id).littleEndian) { bytes += $0 } }
        return ContentHash.sha256(bytes)
    }
}

extension TokenWindows {
    /// Runs the model over the windows in batches of `batch` (the last one smaller) and
    /// calls `body` after each forward pass with the run and the windows it covered.
    public func forEachBatch(model: MoEModel, batch: Int, matmul: MatmulPrecision = .machineDefault,
                             _ body: (ModelRun, Range<Int>) throws -> Void) throws {
        guard batch > 0 else { throw EngineError.invalidInput("batch \(batch) must be positive") }
        var run: ModelRun?
        var start = 0
        while start < count {
            let n = min(batch, count - start)
            if run?.batch != n {
                run = ModelRun(model: model, batch: n, seq: seq, training: false)
                run!.matmul = matmul
            }
            try run!.forward(try self.batch(Array(start..<(start + n))))
            try body(run!, start..<(start + n))
            start += n
        }
    }
}

/// Per-window mean next-token losses of a model over windows, in order; bit-identical run
/// after run.
public func windowLosses(model: MoEModel, windows: TokenWindows, batch: Int = 8, matmul: MatmulPrecision = .machineDefault) throws -> [Double] {
    var out: [Double] = []
    out.reserveCapacity(windows.count)
    try windows.forEachBatch(model: model, batch: batch, matmul: matmul) { run, range in
        out += EvaluationSet.rowMeans(run, rows: range.count, seq: windows.seq)
    }
    return out
}

public func mean(_ xs: [Double]) -> Double { xs.isEmpty ? 0 : xs.reduce(0, +) / Double(xs.count) }
