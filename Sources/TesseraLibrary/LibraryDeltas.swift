import Foundation
import TesseraEngine
import TesseraCore

extension ExpertLibrary {
    /// The weights of one version of an expert, by shard tensor name.
    public func expertWeights(_ id: ExpertID, version: String? = nil) throws -> (hash: String, weights: ExpertWeights) {
        guard let entry = manifest.entry(id) else { throw LibraryError("expert \(id) is not in library \(directory)") }
        let hash = try version.map { try resolveVersion(id, $0) } ?? entry.head.hash
        let shard = try openShard(hash, what: "expert \(id) version \(hash.prefix(12))")
        return (hash, try readExpert(id, from: shard))
    }

    /// An expert's tensors taken from a Hugging Face checkpoint of the same model (for
    /// instance one fine-tuned elsewhere), converted to the library's dtypes and named as
    /// in the expert's shard.
    public func expertWeights(_ id: ExpertID, fromCheckpoint dir: String) throws -> ExpertWeights {
        let files = try CheckpointFiles(directory: dir)
        var out: [(name: String, dtype: DType, shape: [Int], values: [Float])] = []
        for slot in try expertSlots(id) {
            let per = slot.count
            var values = [Float](repeating: 0, count: per)
            // Only this expert's slice of a fused tensor is read and converted.
            if let info = files.info(slot.modelTensor), info.dtype.isFloatingPoint {
                guard info.shape == slot.modelShape else {
                    throw LibraryError("\(dir): tensor \(slot.modelTensor) has shape \(info.shape), the library's is \(slot.modelShape)")
                }
                let all = files.bytes(slot.modelTensor)!
                if per > 0 {
                    values.withUnsafeMutableBufferPointer { convertToFloat(all.baseAddress! + slot.elementOffset * info.dtype.byteSize, dtype: info.dtype, count: per, into: $0.baseAddress!) }
                }
            } else if slot.mxfp4 != nil, let blocks = files.info(MXFP4.blocksName(slot.modelTensor)), let scales = files.info(MXFP4.scalesName(slot.modelTensor)),
                      blocks.dtype == .u8, blocks.shape == MXFP4.blocksShape(slot.modelShape), scales.dtype == .u8, scales.shape == MXFP4.scalesShape(slot.modelShape) {
                let bad = values.withUnsafeMutableBufferPointer {
                    MXFP4.decodeExpert(id.expert, ofBlocks: files.bytes(MXFP4.blocksName(slot.modelTensor))!,
                                       scales: files.bytes(MXFP4.scalesName(slot.modelTensor))!, shape: slot.modelShape, into: $0.baseAddress!)
                }
                if let bad { throw LibraryError("\(dir): \(slot.modelTensor) of expert \(id) decodes to a non-finite value at element \(bad)") }
            } else {
                throw LibraryError("\(dir): no floating-point tensor \(slot.modelTensor)\(slot.mxfp4 == nil ? "" : " and no MXFP4 blocks and scales of its shape")")
            }
            let stored = DeltaCodec.decodeStorage(DeltaCodec.storageBytes(values, slot.dtype), slot.dtype)
            out.append((slot.name, slot.dtype, slot.shape, stored))
        }
        guard !out.isEmpty else { throw LibraryError("expert \(id) has no tensors in library \(directory)") }
        return ExpertWeights(tensors: out)
    }

    /// Encodes `new` against the current version of expert `id` and writes the delta.
    public func encodeDelta(_ id: ExpertID, new: ExpertWeights, options: DeltaOptions, to path: String,
                            residualIn: String? = nil, residualOut: String? = nil) throws -> (header: DeltaHeader, stats: DeltaStats) {
        let (hash, base) = try expertWeights(id)
        var residual: [String: [Float]]? = nil
        if let residualIn {
            let file = try SafetensorsFile(path: residualIn)
            var r: [String: [Float]] = [:]
            for t in base.tensors {
                guard let info = file.tensors[t.name], info.dtype == .f32, info.elementCount == t.values.count else {
                    throw LibraryError("\(residualIn): residual for \(t.name) is missing or not float32 of \(t.values.count) values")
                }
                r[t.name] = try file.floats(t.name)
            }
            residual = r
        }
        let template = DeltaHeader(format: DeltaHeader.formatName, layer: id.layer, expert: id.expert, base: hash,
                                   encoding: options.encoding, modelType: manifest.modelType,
                                   configSHA256: manifest.configSHA256, tensors: [])
        let result = try DeltaCodec.encode(base: base, new: new, header: template, options: options, residual: residual)
        try DeltaCodec.write(result.records, header: result.header, to: path)
        if let residualOut, options.encoding != .lossless {
            let records = base.tensors.map { TensorRecord(name: $0.name, shape: $0.shape, floats: result.residual[$0.name]!) }
            try SafetensorsWriter.write(records, to: residualOut)
        }
        return (result.header, result.stats)
    }

    /// Checks a delta against this library: same model, an existing base version of the
    /// named expert, tensors of the expert's names, dtypes and shapes.
    public func checkDelta(_ path: String) throws -> (file: SafetensorsFile, header: DeltaHeader) {
        let (file, header) = try DeltaCodec.read(path)
        guard header.configSHA256 == manifest.configSHA256 else {
            throw LibraryError("\(path): delta is for a different model (config \(header.configSHA256.prefix(12)), library \(manifest.configSHA256.prefix(12)))")
        }
        guard header.modelType == manifest.modelType else {
            throw LibraryError("\(path): delta is for model type \(header.modelType.prefix(40)), library \(manifest.modelType)")
        }
        guard let entry = manifest.entry(header.id) else { throw LibraryError("\(path): expert \(header.id) is not in library \(directory)") }
        guard entry.versions.contains(where: { $0.hash == header.base }) else {
            throw LibraryError("\(path): base version \(header.base.prefix(12)) of expert \(header.id) is not in library \(directory)")
        }
        return (file, header)
    }

    /// Reconstructs the weights a delta describes, from its base version.
    public func decodeDelta(_ path: String) throws -> (header: DeltaHeader, weights: ExpertWeights) {
        let (header, _, weights) = try decodeDeltaWithBase(path)
        return (header, weights)
    }

    /// `decodeDelta`, also returning the base it was decoded against (for norms and
    /// deltas, without reading the base's shard again).
    public func decodeDeltaWithBase(_ path: String) throws -> (header: DeltaHeader, base: ExpertWeights, weights: ExpertWeights) {
        let (file, header) = try checkDelta(path)
        let (_, base) = try expertWeights(header.id, version: header.base)
        return (header, base, try DeltaCodec.decode(file, header: header, base: base))
    }

    /// Applies a delta: the result becomes the expert's new current version. Refused
    /// unless the delta names the current version as its base.
    @discardableResult
    public func applyDelta(_ path: String, producedBy: [String]) throws -> String {
        let (file, header) = try checkDelta(path)
        guard let entry = manifest.entry(header.id), entry.head.hash == header.base else {
            throw LibraryError("\(path): delta is against version \(header.base.prefix(12)) of expert \(header.id), but its current version is \(manifest.entry(header.id)!.head.hash.prefix(12)); refusing to apply")
        }
        let (_, base) = try expertWeights(header.id, version: header.base)
        let new = try DeltaCodec.decode(file, header: header, base: base)
        let tensors = new.tensors.map { t in
            StreamedTensor(TensorRecord(name: t.name, shape: t.shape, floats: t.values, as: t.dtype))
        }
        let meta = Self.expertMetadata(header.id, parent: header.base, configSHA256: manifest.configSHA256, modelType: manifest.modelType)
        let hash = try Self.storeShard(tensors, metadata: meta, in: shardsDirectory)
        CrashPoint.reach("apply.shard")
        try addVersion(header.id, hash: hash, parent: header.base, producedBy: producedBy, origin: "delta \(header.encoding.rawValue)")
        return hash
    }
}
