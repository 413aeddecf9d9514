import Foundation
import TesseraCore

/// A randomly initialised checkpoint of any size, written tensor by tensor so that memory
/// stays at one chunk whatever the model's size: presets of real models in bf16 are tens
/// of gigabytes, more than this machine holds. Values follow `initializeRandomly`'s rule
/// (norm weights 1, biases 0, the rest normal × std), each tensor from its own seed, and
/// files are split at `maxShardBytes` with an index, as Hugging Face shards checkpoints.
public struct RandomCheckpoint {
    public struct File {
        public var name: String
        public var tensors: [StreamedTensor]
        public var bytes: Int
    }

    public let config: ModelConfig
    public let files: [File]
    public let parameterCount: Int
    public var totalBytes: Int { files.reduce(0) { $0 + $1.bytes } }

    /// `dtype` is the dtype of every tensor; `mxfp4Experts` (gpt-oss) stores the routed
    /// experts' weights in MXFP4 instead, as the released checkpoints do.
    public init(config: ModelConfig, dtype: DType, mxfp4Experts: Bool = false, seed: UInt64, std: Float = 0.02,
                maxShardBytes: Int = 5_000_000_000) throws {
        guard dtype.isFloatingPoint else { throw EngineError.checkpoint("dtype \(dtype.rawValue) is not a floating-point dtype") }
        var c = config
        if mxfp4Experts {
            guard c.family == .gptOss, c.hiddenSize % 32 == 0, c.expertWidth % 32 == 0 else {
                throw EngineError.checkpoint("MXFP4 experts need a gpt_oss model with hidden_size and intermediate_size multiples of 32")
            }
            c.mxfp4Experts = true
        }
        self.config = c
        let layout = WeightLayout(config: c, expertLayout: .perExpert)
        var tensors: [StreamedTensor] = []
        for (index, slot) in layout.tensors.enumerated() {
            let seed = seed &+ UInt64(index + 1) &* 0x9E37_79B9_7F4A_7C15
            let kind: Kind = slot.name.hasSuffix("norm.weight") ? .ones : slot.name.hasSuffix(".bias") ? .zeros : .normal(std)
            if slot.mxfp4 {
                for half in [MXFP4Half.blocks, .scales] {
                    let name = half == .blocks ? MXFP4.blocksName(slot.name) : MXFP4.scalesName(slot.name)
                    let shape = half == .blocks ? MXFP4.blocksShape(slot.shape) : MXFP4.scalesShape(slot.shape)
                    tensors.append(StreamedTensor(name: name, dtype: .u8, shape: shape) { sink in
                        try Self.emitMXFP4(shape: slot.shape, half: half, kind: kind, seed: seed, sink: sink)
                    })
                }
            } else {
                tensors.append(StreamedTensor(name: slot.name, dtype: dtype, shape: slot.shape) { sink in
                    try Self.emit(count: slot.count, dtype: dtype, kind: kind, seed: seed, sink: sink)
                })
            }
        }
        parameterCount = layout.tensors.reduce(0) { $0 + $1.count }
        var groups: [[StreamedTensor]] = [[]]
        var sizes = [0]
        for t in tensors {
            if sizes[sizes.count - 1] > 0, sizes[sizes.count - 1] + t.byteCount > maxShardBytes {
                groups.append([])
                sizes.append(0)
            }
            groups[groups.count - 1].append(t)
            sizes[sizes.count - 1] += t.byteCount
        }
        files = groups.indices.map { i in
            File(name: groups.count == 1 ? "model.safetensors" : String(format: "model-%05d-of-%05d.safetensors", i + 1, groups.count),
                 tensors: groups[i], bytes: sizes[i])
        }
    }

    /// Writes the files, their index when there are several, and `configJSON` into `directory`.
    public func write(to directory: String, configJSON: String, progress: ProgressBar? = nil) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        for file in files {
            let counted = file.tensors.map { t in
                StreamedTensor(name: t.name, dtype: t.dtype, shape: t.shape) { sink in
                    try t.emit { piece in
                        try sink(piece)
                        progress?.advance(by: Double(piece.count))
                    }
                }
            }
            try SafetensorsWriter.write(streamed: counted, to: (directory as NSString).appendingPathComponent(file.name))
        }
        if files.count > 1 {
            let map = files.flatMap { f in f.tensors.map { ($0.name, JSONValue.string(f.name)) } }.sorted { $0.0 < $1.0 }
            let index = JSONValue.object([("metadata", .object([("total_size", .integer(Int64(totalBytes)))])), ("weight_map", .object(map))])
            try AtomicFile.write(Array(index.serialized().utf8), to: (directory as NSString).appendingPathComponent("model.safetensors.index.json"))
        }
        try AtomicFile.write(Array(configJSON.utf8), to: (directory as NSString).appendingPathComponent("config.json"))
    }

    enum Kind { case ones, zeros, normal(Float) }
    enum MXFP4Half { case blocks, scales }

    static let chunk = 1 << 20

    /// Values of a tensor, chunk by chunk; each chunk has its own generator, so the two
    /// halves of a chunk are drawn on two threads with the same result as on one.
    static func fill(_ p: UnsafeMutablePointer<Float>, count: Int, kind: Kind, seed: UInt64, chunkIndex: Int) {
        switch kind {
        case .ones: p.update(repeating: 1, count: count)
        case .zeros: p.update(repeating: 0, count: count)
        case let .normal(std):
            let halves = count > 4096 ? 2 : 1
            let per = (count + halves - 1) / halves
            Parallel.forEach(halves) { h in
                let start = h * per, end = min(count, start + per)
                var rng = SplitMix64(seed: seed ^ (UInt64(chunkIndex * 2 + h + 1) &* 0xD6E8_FEB8_6659_FD93))
                var i = start
                while i < end {
                    // Box–Muller, both outputs.
                    let u1 = Float(rng.next() >> 40) * 0x1p-24 + 0x1p-25, u2 = Float(rng.next() >> 40) * 0x1p-24
                    let r = (-2 * logf(u1)).squareRoot() * std, a = 2 * Float.pi * u2
                    p[i] = r * cosf(a)
                    if i + 1 < end { p[i + 1] = r * sinf(a) }
                    i += 2
                }
            }
        }
    }

    static func emit(count: Int, dtype: DType, kind: Kind, seed: UInt64, sink: (UnsafeRawBufferPointer) throws -> Void) throws {
        var values = [Float](repeating: 0, count: min(count, chunk))
        var bytes: [UInt8] = []
        bytes.reserveCapacity(min(count, chunk) * dtype.byteSize)
        var done = 0, chunkIndex = 0
        while done < count {
            let n = min(chunk, count - done)
            values.withUnsafeMutableBufferPointer { fill($0.baseAddress!, count: n, kind: kind, seed: seed, chunkIndex: chunkIndex) }
            bytes.removeAll(keepingCapacity: true)
            values.withUnsafeBufferPointer { encodeFloats(UnsafeBufferPointer(rebasing: $0[0..<n]), as: dtype, into: &bytes) }
            try bytes.withUnsafeBytes { try sink($0) }
            done += n
            chunkIndex += 1
        }
    }

    /// One half of an MXFP4 weight [E, in, out]: each expert's values drawn (the same for
    /// both halves) and quantised.
    static func emitMXFP4(shape: [Int], half: MXFP4Half, kind: Kind, seed: UInt64, sink: (UnsafeRawBufferPointer) throws -> Void) throws {
        let (experts, inputs, outputs) = (shape[0], shape[1], shape[2])
        var values = [Float](repeating: 0, count: inputs * outputs)
        for e in 0..<experts {
            values.withUnsafeMutableBufferPointer { fill($0.baseAddress!, count: inputs * outputs, kind: kind, seed: seed, chunkIndex: e) }
            let encoded = values.withUnsafeBufferPointer { MXFP4.encode($0, inputs: inputs, outputs: outputs) }
            try (half == .blocks ? encoded.blocks : encoded.scales).withUnsafeBytes { try sink($0) }
        }
    }
}
