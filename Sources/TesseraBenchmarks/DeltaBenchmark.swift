import Dispatch
import Foundation
import TesseraCore
import TesseraEngine
import TesseraLibrary
import TesseraLedger
import TesseraProof
import TesseraTestSupport

/// Size and speed of delta encoding on a synthetic expert update: gate, up and down of an
/// expert (width × hidden each), base weights N(0, 0.02²), update Δ = N(0, 0.001²) on
/// every weight plus 2% of weights moved by N(0, 0.01²), a heavy-tailed mix like the
/// updates fine-tuning produces.
public struct DeltaBenchmark: Encodable, Sendable {
    public var float32Bytes: Int
    public var sparseBytes: Int
    public var sparseRatio: Double
    public var sparseRelativeL2: Double
    public var sparseEncodeMBps: Double
    public var sparseDecodeMBps: Double
    public var losslessBytes: Int
    public var losslessRatio: Double
    public var losslessEncodeMBps: Double
    public var losslessDecodeMBps: Double
    public var density: Double

    enum CodingKeys: String, CodingKey {
        case density
        case float32Bytes = "float32_bytes"
        case sparseBytes = "sparse_bytes"
        case sparseRatio = "sparse_ratio"
        case sparseRelativeL2 = "sparse_relative_l2"
        case sparseEncodeMBps = "sparse_encode_mb_per_s"
        case sparseDecodeMBps = "sparse_decode_mb_per_s"
        case losslessBytes = "lossless_bytes"
        case losslessRatio = "lossless_ratio"
        case losslessEncodeMBps = "lossless_encode_mb_per_s"
        case losslessDecodeMBps = "lossless_decode_mb_per_s"
    }

    public var text: String {
        String(format: """
            synthetic expert update: %.1f MB of fp32 weights
            sparse (density %.4f): %d bytes, %.1f× smaller, relative L2 error %.3f; encode %.0f MB/s, decode %.0f MB/s of fp32 weights
            lossless (bf16 XOR + zstd): %d bytes, %.1f× smaller; encode %.0f MB/s, decode %.0f MB/s
            """, Double(float32Bytes) / 1e6, density, sparseBytes, sparseRatio, sparseRelativeL2, sparseEncodeMBps, sparseDecodeMBps,
                      losslessBytes, losslessRatio, losslessEncodeMBps, losslessDecodeMBps)
    }

    public static func run(width: Int, hidden: Int, density: Double) throws -> DeltaBenchmark {
        let (base, new) = SyntheticDelta.update(width: width, hidden: hidden, dtype: .f32, seed: 5)
        let header = DeltaHeader(format: DeltaHeader.formatName, layer: 0, expert: 0, base: String(repeating: "0", count: 64),
                                 encoding: .sparse, modelType: "synthetic", configSHA256: String(repeating: "0", count: 64), tensors: [])
        let fp32 = base.tensors.reduce(0) { $0 + $1.values.count * 4 }
        let dir = NSTemporaryDirectory() + "tessera-delta-bench-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }

        func time(_ body: () throws -> Void) rethrows -> Double { try EngineBenchmark.bestTime(3, body) }
        // Encode speed: Δ, selection, quantisation, packing and zstd (no error statistics).
        var sparsePayloads: [[UInt8]] = []
        let options = DeltaOptions(encoding: .sparse, density: density)
        let keep = max(1, Int((Double(options.chunk) * density).rounded(.up)))
        let sparseEncode = try time {
            sparsePayloads = try zip(base.tensors, new.tensors).map { b, n in
                var d = [Float](repeating: 0, count: b.values.count)
                for i in d.indices { d[i] = n.values[i] - b.values[i] }
                return try Zstd.compress(SparseCodec.encode(d, chunk: options.chunk, keep: keep))
            }
        }
        let sparseDecode = try time {
            for (b, z) in zip(base.tensors, sparsePayloads) {
                let raw = try z.withUnsafeBytes { try Zstd.decompress($0, expectedSize: SparseCodec.payloadSize(count: b.values.count, chunk: options.chunk, keep: keep), what: b.name) }
                var v = try SparseCodec.decode(raw, count: b.values.count, chunk: options.chunk, keep: keep, what: b.name)
                for i in v.indices { v[i] += b.values[i] }
            }
        }
        let sparse = try DeltaCodec.encode(base: base, new: new, header: header, options: options)

        // Lossless on bf16 weights, the dtype checkpoints ship in.
        let (b16, n16) = SyntheticDelta.update(width: width, hidden: hidden, dtype: .bf16, seed: 5)
        var losslessPayloads: [[UInt8]] = []
        let losslessEncode = try time {
            losslessPayloads = try zip(b16.tensors, n16.tensors).map { b, n in
                let x = zip(DeltaCodec.storageBytes(b.values, .bf16), DeltaCodec.storageBytes(n.values, .bf16)).map { $0 ^ $1 }
                return try Zstd.compress(x)
            }
        }
        let losslessDecode = try time {
            for (b, z) in zip(b16.tensors, losslessPayloads) {
                let raw = try z.withUnsafeBytes { try Zstd.decompress($0, expectedSize: b.values.count * 2, what: b.name) }
                _ = DeltaCodec.decodeStorage(zip(DeltaCodec.storageBytes(b.values, .bf16), raw).map { $0 ^ $1 }, .bf16)
            }
        }
        let losslessBytes = losslessPayloads.reduce(0) { $0 + $1.count }
        let mb = Double(fp32) / 1e6
        return DeltaBenchmark(
            float32Bytes: fp32, sparseBytes: sparse.stats.compressedBytes, sparseRatio: sparse.stats.ratio,
            sparseRelativeL2: sparse.stats.relativeL2, sparseEncodeMBps: mb / sparseEncode, sparseDecodeMBps: mb / sparseDecode,
            losslessBytes: losslessBytes, losslessRatio: Double(fp32) / Double(losslessBytes),
            losslessEncodeMBps: mb / losslessEncode, losslessDecodeMBps: mb / losslessDecode, density: density)
    }
}
