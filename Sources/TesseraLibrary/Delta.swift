import Foundation
import TesseraEngine
import TesseraCore

/// An update to one expert against a named base version, carried in a safetensors file:
/// one U8 tensor of zstd-compressed payload per expert tensor, and the description in the
/// `tessera.delta` metadata entry.
public struct DeltaHeader: Codable, Sendable, Equatable {
    public static let formatName = "tessera-delta/1"

    public enum Encoding: String, Codable, Sendable, CaseIterable {
        /// New weights XOR base weights in the expert's own dtype, zstd-compressed: exact.
        case lossless
        /// Per chunk, the top-k |Δ| (Δ in float32) with 12-bit packed indices and int8
        /// values scaled per chunk, zstd-compressed.
        case sparse
        /// Δ as a sum of `rank` outer products with 8- or 4-bit factors (`LowRankCodec`),
        /// zstd-compressed.
        case lowRank = "low_rank"
    }

    public struct Tensor: Codable, Sendable, Equatable {
        /// The tensor's name inside the expert shard.
        public var name: String
        public var dtype: DType
        public var shape: [Int]
        /// Size of the payload before compression.
        public var rawBytes: Int
        /// Sparse only: elements per chunk and entries kept per full chunk.
        public var chunk: Int?
        public var keep: Int?
        /// Low-rank only: components and bits per factor code.
        public var rank: Int?
        public var bits: Int?
        /// SHA-256 of the compressed payload, so a damaged delta is caught on its own,
        /// not only inside a bundle.
        public var payloadSHA256: String = ""

        /// Elements the shape holds; nil when a dimension is negative or the product does not
        /// fit an Int (a header written to make the reader trap).
        public var checkedCount: Int? {
            var n = 1
            for d in shape {
                guard d >= 0 else { return nil }
                let (p, overflow) = n.multipliedReportingOverflow(by: d)
                if overflow { return nil }
                n = p
            }
            return n
        }
        /// Elements the shape holds (saturating; headers read from files are bounded by `read`).
        public var count: Int { checkedCount ?? .max }
        enum CodingKeys: String, CodingKey {
            case name, dtype, shape, chunk, keep, rank, bits
            case rawBytes = "raw_bytes"
            case payloadSHA256 = "payload_sha256"
        }
    }

    public var format: String
    public var layer: Int
    public var expert: Int
    /// The version hash this delta applies to.
    public var base: String
    public var encoding: Encoding
    public var modelType: String
    public var configSHA256: String
    public var tensors: [Tensor]

    public init(format: String, layer: Int, expert: Int, base: String, encoding: Encoding, modelType: String, configSHA256: String, tensors: [Tensor]) {
        self.format = format; self.layer = layer; self.expert = expert; self.base = base; self.encoding = encoding
        self.modelType = modelType; self.configSHA256 = configSHA256; self.tensors = tensors
    }

    public var id: ExpertID { ExpertID(layer: layer, expert: expert) }
    /// Bytes of the expert in float32: what the compression ratio is measured against.
    public var float32Bytes: Int { tensors.reduce(0) { $0 + $1.count * 4 } }

    enum CodingKeys: String, CodingKey {
        case format, layer, expert, base, encoding, tensors
        case modelType = "model_type"
        case configSHA256 = "config_sha256"
    }
}

public struct DeltaOptions: Sendable {
    public var encoding: DeltaHeader.Encoding
    /// Sparse: fraction of each chunk's entries kept.
    public var density: Double
    /// Sparse: elements per chunk (at most 4096, so indices fit 12 bits).
    public var chunk: Int
    public var zstdLevel: Int32
    /// Low-rank: components per tensor and bits per factor code (4 or 8).
    public var rank: Int
    public var factorBits: Int

    public init(encoding: DeltaHeader.Encoding = .sparse, density: Double = 1.0 / 64, chunk: Int = 4096, zstdLevel: Int32 = 3,
                rank: Int = 4, factorBits: Int = 8) {
        self.encoding = encoding
        self.density = density
        self.chunk = chunk
        self.zstdLevel = zstdLevel
        self.rank = rank
        self.factorBits = factorBits
    }

    /// The largest rank `encode` accepts (`read` bounds a file's by its matrices' sides).
    public static let maxRank = LowRankAdapters.maxRank

    /// Why these options cannot encode a delta, or nil.
    public var problem: String? {
        switch encoding {
        case .lossless: return nil
        case .sparse:
            if chunk <= 0 || chunk > 4096 { return "delta chunk \(chunk) must be in 1...4096" }
            if !(density > 0 && density <= 1) { return "delta density \(density) must be in (0, 1]" }
        case .lowRank:
            if rank < 1 || rank > Self.maxRank { return "delta rank \(rank) must be in 1...\(Self.maxRank)" }
            if !LowRankCodec.allowedBits.contains(factorBits) { return "delta factor bits \(factorBits) must be 4 or 8" }
        }
        return nil
    }
}

/// How faithfully a delta carries an update.
public struct DeltaStats: Sendable, Encodable {
    public var compressedBytes: Int
    public var float32Bytes: Int
    public var ratio: Double { Double(float32Bytes) / Double(max(compressedBytes, 1)) }
    /// ‖Δ̂ − Δ‖ / ‖Δ‖ and max |Δ̂ − Δ| against the true update Δ = new − base.
    public var relativeL2: Double
    public var maxAbs: Double

    enum CodingKeys: String, CodingKey {
        case ratio
        case compressedBytes = "compressed_bytes"
        case float32Bytes = "float32_bytes"
        case relativeL2 = "relative_l2"
        case maxAbs = "max_abs"
    }
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(compressedBytes, forKey: .compressedBytes)
        try c.encode(float32Bytes, forKey: .float32Bytes)
        try c.encode(ratio, forKey: .ratio)
        try c.encode(relativeL2, forKey: .relativeL2)
        try c.encode(maxAbs, forKey: .maxAbs)
    }
}

/// One expert's weights as Float, by shard tensor name, with the dtype and shape each
/// is stored in.
public struct ExpertWeights: Sendable {
    public var tensors: [(name: String, dtype: DType, shape: [Int], values: [Float])]

    public init(tensors: [(name: String, dtype: DType, shape: [Int], values: [Float])]) { self.tensors = tensors }

    public func values(_ name: String) -> [Float]? { tensors.first { $0.name == name }?.values }
}

public enum DeltaCodec {
    public static let metadataKey = "tessera.delta"

    /// Encodes new − base. `residual` (sparse only) is error feedback from the previous
    /// round, added to Δ before selection; the new residual is returned.
    public static func encode(base: ExpertWeights, new: ExpertWeights, header template: DeltaHeader, options: DeltaOptions,
                              residual: [String: [Float]]? = nil) throws -> (records: [TensorRecord], header: DeltaHeader, stats: DeltaStats, residual: [String: [Float]]) {
        if let problem = options.problem { throw LibraryError(problem) }
        var header = template
        header.encoding = options.encoding
        header.tensors = []
        var records: [TensorRecord] = []
        var newResidual: [String: [Float]] = [:]
        var errSq: Double = 0, refSq: Double = 0, maxAbs: Double = 0
        var compressed = 0
        for b in base.tensors {
            guard let n = new.tensors.first(where: { $0.name == b.name }) else { throw LibraryError("new weights lack tensor \(b.name)") }
            guard n.values.count == b.values.count else {
                throw LibraryError("new weights for \(b.name) have \(n.values.count) values, expected \(b.values.count)")
            }
            if let bad = n.values.firstIndex(where: { !$0.isFinite }) {
                throw LibraryError("new weights for \(b.name) hold a non-finite value at element \(bad)")
            }
            var entry = DeltaHeader.Tensor(name: b.name, dtype: b.dtype, shape: b.shape, rawBytes: 0)
            let payload: [UInt8]
            let decoded: [Float]
            if options.encoding == .lossless {
                let baseBytes = storageBytes(b.values, b.dtype), newBytes = storageBytes(n.values, b.dtype)
                payload = zip(baseBytes, newBytes).map { $0 ^ $1 }
                decoded = decodeStorage(newBytes, b.dtype)
            } else {
                let delta = difference(new: n.values, base: b.values, residual: residual?[b.name])
                let approx: [Float]
                if options.encoding == .sparse {
                    let keep = max(1, Int((Double(options.chunk) * options.density).rounded(.up)))
                    entry.chunk = options.chunk
                    entry.keep = keep
                    payload = SparseCodec.encode(delta, chunk: options.chunk, keep: keep)
                    approx = try SparseCodec.decode(payload, count: delta.count, chunk: options.chunk, keep: keep, what: b.name)
                } else {
                    guard let (m, cols) = LowRankCodec.matrixShape(b.shape) else { throw LibraryError("tensor \(b.name) has no matrix shape: \(b.shape)") }
                    let rank = min(options.rank, m, cols)
                    entry.rank = rank
                    entry.bits = options.factorBits
                    payload = LowRankCodec.encode(delta, m: m, n: cols, rank: rank, bits: options.factorBits)
                    approx = try LowRankCodec.decode(payload, m: m, n: cols, rank: rank, bits: options.factorBits, what: b.name)
                }
                // What the validators will apply is the decoded payload: the residual and the
                // statistics are taken against it, not against the encoder's own arithmetic.
                newResidual[b.name] = zip(delta, approx).map { $0 - $1 }
                decoded = applying(approx, to: b.values, dtype: b.dtype)
            }
            for i in decoded.indices {
                let truth = Double(n.values[i]) - Double(b.values[i])
                let err = (Double(decoded[i]) - Double(b.values[i])) - truth
                errSq += err * err
                refSq += truth * truth
                maxAbs = max(maxAbs, abs(err))
            }
            entry.rawBytes = payload.count
            let z = try Zstd.compress(payload, level: options.zstdLevel)
            entry.payloadSHA256 = ContentHash.sha256(z)
            compressed += z.count
            records.append(TensorRecord(name: b.name, dtype: .u8, shape: [z.count], bytes: z))
            header.tensors.append(entry)
        }
        let stats = DeltaStats(compressedBytes: compressed, float32Bytes: header.float32Bytes,
                               relativeL2: refSq > 0 ? (errSq / refSq).squareRoot() : (errSq > 0 ? .infinity : 0), maxAbs: maxAbs)
        return (records, header, stats, newResidual)
    }

    /// Δ = new − base, plus the residual carried from the previous round (error feedback).
    static func difference(new: [Float], base: [Float], residual: [Float]?) -> [Float] {
        var delta = [Float](repeating: 0, count: base.count)
        for i in delta.indices { delta[i] = new[i] - base[i] }
        if let residual { for i in delta.indices { delta[i] += residual[i] } }
        return delta
    }

    /// The base plus an approximation of Δ, rounded to the dtype the expert is stored in.
    static func applying(_ approx: [Float], to base: [Float], dtype: DType) -> [Float] {
        var values = base
        for i in values.indices { values[i] += approx[i] }
        return decodeStorage(storageBytes(values, dtype), dtype)
    }

    public static func write(_ records: [TensorRecord], header: DeltaHeader, to path: String) throws {
        try SafetensorsWriter.write(records, metadata: ["format": "pt", metadataKey: try JSONOutput.compact(header)], to: path)
    }

    /// Reads and checks a delta file's description and payload sizes.
    public static func read(_ path: String) throws -> (file: SafetensorsFile, header: DeltaHeader) {
        let file = try SafetensorsFile(path: path)
        guard let text = file.metadata[metadataKey] else { throw LibraryError("\(path): not a Tessera delta (no \(metadataKey) metadata)") }
        let header: DeltaHeader
        do { header = try StrictJSON.decode(DeltaHeader.self, from: Data(text.utf8), file: "\(metadataKey) metadata", rejectUnknownKeys: true) } catch {
            throw LibraryError("\(path): delta description is not valid: \(error)")
        }
        guard header.format == DeltaHeader.formatName else { throw LibraryError("\(path): delta format \(header.format) is not \(DeltaHeader.formatName)") }
        guard ContentHash.isValid(header.base) else { throw LibraryError("\(path): base \(header.base) is not a SHA-256 hex digest") }
        for t in header.tensors {
            guard let info = file.tensors[t.name], info.dtype == .u8, info.shape.count == 1 else {
                throw LibraryError("\(path): payload for \(t.name) is missing or not a U8 vector")
            }
            guard ContentHash.sha256(file.bytes(of: info)) == t.payloadSHA256 else {
                throw LibraryError("\(path): payload for \(t.name) is corrupt (its SHA-256 does not match the description)")
            }
            guard let n = t.checkedCount, n <= 1 << 34 else { throw LibraryError("\(path): tensor \(t.name) has an invalid shape \(t.shape)") }
            _ = n
            let expected: Int
            switch header.encoding {
            case .lossless: expected = t.count * t.dtype.byteSize
            case .sparse:
                guard let chunk = t.chunk, let keep = t.keep, chunk > 0, chunk <= 4096, keep > 0, keep <= chunk else {
                    throw LibraryError("\(path): tensor \(t.name) lacks a valid chunk and keep")
                }
                expected = SparseCodec.payloadSize(count: t.count, chunk: chunk, keep: keep)
            case .lowRank:
                guard let rank = t.rank, let bits = t.bits, let (m, cols) = LowRankCodec.matrixShape(t.shape), rank >= 1, rank <= min(m, cols),
                      let size = LowRankCodec.payloadSize(m: m, n: cols, rank: rank, bits: bits) else {
                    throw LibraryError("\(path): tensor \(t.name) lacks a valid rank (1...min of its matrix's sides) and bits (4 or 8)")
                }
                expected = size
            }
            guard t.rawBytes == expected else {
                throw LibraryError("\(path): tensor \(t.name) declares \(t.rawBytes) payload bytes, its shape and encoding need \(expected)")
            }
        }
        guard Set(file.names) == Set(header.tensors.map(\.name)) else {
            throw LibraryError("\(path): payload tensors do not match the description")
        }
        return (file, header)
    }

    /// Reconstructs the expert's new weights from its base weights and a delta.
    public static func decode(_ file: SafetensorsFile, header: DeltaHeader, base: ExpertWeights) throws -> ExpertWeights {
        var out: [(name: String, dtype: DType, shape: [Int], values: [Float])] = []
        guard Set(base.tensors.map(\.name)) == Set(header.tensors.map(\.name)) else {
            throw LibraryError("\(file.path): delta tensors \(header.tensors.map(\.name)) do not match the expert's \(base.tensors.map(\.name))")
        }
        for t in header.tensors {
            let b = base.tensors.first { $0.name == t.name }!
            guard b.dtype == t.dtype, b.shape == t.shape else {
                throw LibraryError("\(file.path): tensor \(t.name) is \(t.dtype.rawValue) \(t.shape) in the delta but \(b.dtype.rawValue) \(b.shape) in the base")
            }
            let raw = try Zstd.decompress(try file.bytes(of: t.name), expectedSize: t.rawBytes, what: "\(file.path): \(t.name)")
            let values: [Float]
            switch header.encoding {
            case .lossless:
                let baseBytes = storageBytes(b.values, b.dtype)
                values = decodeStorage(zip(baseBytes, raw).map { $0 ^ $1 }, t.dtype)
            case .sparse:
                guard let chunk = t.chunk, let keep = t.keep else { throw LibraryError("\(file.path): tensor \(t.name) lacks a chunk and keep") }
                values = applying(try SparseCodec.decode(raw, count: t.count, chunk: chunk, keep: keep, what: "\(file.path): \(t.name)"),
                                  to: b.values, dtype: t.dtype)
            case .lowRank:
                guard let (m, cols) = LowRankCodec.matrixShape(t.shape), let rank = t.rank, let bits = t.bits else {
                    throw LibraryError("\(file.path): tensor \(t.name) lacks a rank and bits")
                }
                values = applying(try LowRankCodec.decode(raw, m: m, n: cols, rank: rank, bits: bits, what: "\(file.path): \(t.name)"),
                                  to: b.values, dtype: t.dtype)
            }
            if let bad = values.firstIndex(where: { !$0.isFinite }) {
                throw LibraryError("\(file.path): tensor \(t.name) decodes to a non-finite value at element \(bad)")
            }
            out.append((t.name, t.dtype, t.shape, values))
        }
        return ExpertWeights(tensors: out)
    }

    public static func storageBytes(_ values: [Float], _ dtype: DType) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(values.count * dtype.byteSize)
        values.withUnsafeBufferPointer { encodeFloats($0, as: dtype, into: &out) }
        return out
    }

    public static func decodeStorage(_ bytes: [UInt8], _ dtype: DType) -> [Float] {
        let n = bytes.count / dtype.byteSize
        var out = [Float](repeating: 0, count: n)
        bytes.withUnsafeBytes { src in
            out.withUnsafeMutableBufferPointer { convertToFloat(src.baseAddress ?? UnsafeRawPointer(bitPattern: 8)!, dtype: dtype, count: n, into: $0.baseAddress!) }
        }
        return out
    }
}
