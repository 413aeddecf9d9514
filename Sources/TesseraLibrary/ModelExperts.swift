import Foundation
import TesseraEngine
import TesseraCore

extension ExpertLibrary {
    /// One tensor of an expert as the engine sees it: its model tensor, its name in a
    /// float shard (`name`, or `name[e]` for a fused tensor's slice), the dtype a float
    /// shard stores it in, and where the expert's values start inside the model's tensor.
    /// For an MXFP4 weight also the names of its original blocks and scales slices, which
    /// the split's versions hold instead; versions made later hold the weight in bf16,
    /// which every MXFP4 value fits exactly.
    struct ExpertSlot {
        var modelTensor: String
        /// The whole model tensor's shape, as the manifest records it.
        var modelShape: [Int]
        var name: String
        var dtype: DType
        var shape: [Int]
        var elementOffset: Int
        var mxfp4: (blocks: String, scales: String)?
        var count: Int { shape.reduce(1, *) }
    }

    func expertSlots(_ id: ExpertID) throws -> [ExpertSlot] {
        let entries = manifest.tensors.filter { $0.layer == id.layer && ($0.expert == id.expert || $0.placement == .expertSlices) }
        guard manifest.entry(id) != nil, !entries.isEmpty else { throw LibraryError("expert \(id) is not in library \(directory)") }
        return entries.compactMap { entry in
            let sliced = entry.placement == .expertSlices
            guard let part = entry.mxfp4 else {
                let shape = sliced ? Array(entry.shape.dropFirst()) : entry.shape
                return ExpertSlot(modelTensor: entry.name, modelShape: entry.shape, name: Self.shardTensorName(entry, expert: id.expert), dtype: entry.dtype,
                                  shape: shape, elementOffset: sliced ? id.expert * shape.reduce(1, *) : 0)
            }
            guard part.half == .blocks else { return nil }
            let shape = Array(part.weightShape.dropFirst())
            return ExpertSlot(modelTensor: part.weight, modelShape: part.weightShape, name: "\(part.weight)[\(id.expert)]", dtype: .bf16, shape: shape,
                              elementOffset: id.expert * shape.reduce(1, *),
                              mxfp4: ("\(MXFP4.blocksName(part.weight))[\(id.expert)]", "\(MXFP4.scalesName(part.weight))[\(id.expert)]"))
        }
    }

    /// Expert `id`'s weights as stored in `shard`, by float-shard name: a float tensor as
    /// it is, an MXFP4 pair decoded. Refuses a shard without the expert's tensors, naming
    /// the shard and tensor.
    func readExpert(_ id: ExpertID, from shard: SafetensorsFile) throws -> ExpertWeights {
        try ExpertWeights(tensors: expertSlots(id).map { slot in
            (slot.name, slot.dtype, slot.shape, try readSlot(slot, from: shard))
        })
    }

    func readSlot(_ slot: ExpertSlot, from shard: SafetensorsFile) throws -> [Float] {
        var values = [Float](repeating: 0, count: slot.count)
        try values.withUnsafeMutableBufferPointer { try readSlot(slot, from: shard, into: $0.baseAddress!) }
        return values
    }

    /// Writes the slot's values into `out` (room for `slot.count` floats).
    func readSlot(_ slot: ExpertSlot, from shard: SafetensorsFile, into out: UnsafeMutablePointer<Float>) throws {
        if let info = shard.tensors[slot.name] {
            guard info.dtype == slot.dtype, info.shape == slot.shape else {
                throw LibraryError("shard \(shard.path): tensor \(slot.name) is \(info.dtype.rawValue) \(info.shape), not \(slot.dtype.rawValue) \(slot.shape)")
            }
            if slot.count > 0 { convertToFloat(shard.bytes(of: info).baseAddress!, dtype: info.dtype, count: slot.count, into: out) }
            if let bad = (0..<slot.count).first(where: { !out[$0].isFinite }) {
                throw LibraryError("shard \(shard.path): tensor \(slot.name) holds a non-finite value at element \(bad)")
            }
            return
        }
        guard let (blocksName, scalesName) = slot.mxfp4, let blocks = shard.tensors[blocksName], let scales = shard.tensors[scalesName] else {
            throw LibraryError("shard \(shard.path): tensor \(slot.name) is missing")
        }
        let (inputs, outputs) = (slot.shape[0], slot.shape[1])
        guard blocks.dtype == .u8, blocks.shape == MXFP4.expertBlocksShape(inputs: inputs, outputs: outputs),
              scales.dtype == .u8, scales.shape == MXFP4.expertScalesShape(inputs: inputs, outputs: outputs) else {
            throw LibraryError("shard \(shard.path): \(blocksName) and \(scalesName) are not the MXFP4 blocks U8 \(MXFP4.expertBlocksShape(inputs: inputs, outputs: outputs)) and scales U8 \(MXFP4.expertScalesShape(inputs: inputs, outputs: outputs))")
        }
        if let bad = MXFP4.decodeExpert(blocks: shard.bytes(of: blocks), scales: shard.bytes(of: scales), inputs: inputs, outputs: outputs, into: out) {
            throw LibraryError("shard \(shard.path): \(slot.name) decodes to a non-finite value at element \(bad)")
        }
    }

    /// Expert `id` as a model in memory holds it (after training, say), rounded to the
    /// library's storage dtypes and named as in its shard.
    public func expertWeights(_ id: ExpertID, from model: MoEModel) throws -> ExpertWeights {
        try ExpertWeights(tensors: expertSlots(id).map { slot in
            guard let index = model.layout.indexByName[slot.modelTensor] else {
                throw LibraryError("the model has no tensor \(slot.modelTensor) of expert \(id)")
            }
            let base = model.layout.tensors[index].offset + slot.elementOffset
            let values = FrozenWeights.array(model.parameters.pointer + base, count: slot.count)
            return (slot.name, slot.dtype, slot.shape, DeltaCodec.decodeStorage(DeltaCodec.storageBytes(values, slot.dtype), slot.dtype))
        })
    }

    /// Writes expert weights (named as in a shard) into a model in memory.
    public func setExpert(_ id: ExpertID, _ weights: ExpertWeights, in model: MoEModel) throws {
        for slot in try expertSlots(id) {
            guard let index = model.layout.indexByName[slot.modelTensor], let values = weights.values(slot.name),
                  values.count == slot.count else {
                throw LibraryError("expert \(id): tensor \(slot.name) is missing or not of shape \(slot.shape)")
            }
            let dst = model.parameters.pointer + model.layout.tensors[index].offset + slot.elementOffset
            FrozenWeights.thaw(dst, count: values.count, keep: false)
            for (i, v) in values.enumerated() { dst[i] = v }
        }
    }
}

extension ExpertWeights {
    /// All values in tensor order, as one vector (for norms and cosines).
    public var flattened: [Float] { tensors.flatMap(\.values) }
}

extension ExpertLibrary {
    /// Stores `weights` as a new version of expert `id` on top of `parent` (its current
    /// version) and returns the new version's hash. The shard is written before the
    /// manifest names it, so a crash leaves at most an unreferenced shard.
    @discardableResult
    public func storeVersion(_ id: ExpertID, weights: ExpertWeights, parent: String, producedBy: [String], origin: String) throws -> String {
        let slots = try expertSlots(id)
        let tensors = try slots.map { slot -> StreamedTensor in
            guard let values = weights.values(slot.name), values.count == slot.count else {
                throw LibraryError("expert \(id): tensor \(slot.name) is missing or not of shape \(slot.shape)")
            }
            guard values.allSatisfy(\.isFinite) else { throw LibraryError("expert \(id): tensor \(slot.name) holds a non-finite value") }
            return StreamedTensor(TensorRecord(name: slot.name, shape: slot.shape, floats: values, as: slot.dtype))
        }
        let meta = Self.expertMetadata(id, parent: parent, configSHA256: manifest.configSHA256, modelType: manifest.modelType)
        let hash = try Self.storeShard(tensors, metadata: meta, in: shardsDirectory)
        try addVersion(id, hash: hash, parent: parent, producedBy: producedBy, origin: origin)
        return hash
    }
}
