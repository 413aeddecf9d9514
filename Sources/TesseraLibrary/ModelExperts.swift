import Foundation
import TesseraEngine
import TesseraCore

extension ExpertLibrary {
    /// The manifest tensors that hold expert `id`, each with its shard name, shape and
    /// where the expert's values start inside the model's tensor.
    func expertSlots(_ id: ExpertID) throws -> [(entry: LibraryManifest.TensorEntry, name: String, shape: [Int], elementOffset: Int)] {
        let slots = manifest.tensors.filter { $0.layer == id.layer && ($0.expert == id.expert || $0.placement == .expertSlices) }
        guard manifest.entry(id) != nil, !slots.isEmpty else { throw LibraryError("expert \(id) is not in library \(directory)") }
        return slots.map { entry in
            let sliced = entry.placement == .expertSlices
            let shape = sliced ? Array(entry.shape.dropFirst()) : entry.shape
            return (entry, Self.shardTensorName(entry, expert: id.expert), shape, sliced ? id.expert * shape.reduce(1, *) : 0)
        }
    }

    /// Expert `id` as a model in memory holds it (after training, say), rounded to the
    /// library's storage dtypes and named as in its shard.
    public func expertWeights(_ id: ExpertID, from model: MoEModel) throws -> ExpertWeights {
        try ExpertWeights(tensors: expertSlots(id).map { slot in
            guard let index = model.layout.indexByName[slot.entry.name] else {
                throw LibraryError("the model has no tensor \(slot.entry.name) of expert \(id)")
            }
            let base = model.layout.tensors[index].offset + slot.elementOffset
            let values = Array(UnsafeBufferPointer(start: model.parameters.pointer + base, count: slot.shape.reduce(1, *)))
            return (slot.name, slot.entry.dtype, slot.shape, DeltaCodec.decodeStorage(DeltaCodec.storageBytes(values, slot.entry.dtype), slot.entry.dtype))
        })
    }

    /// Writes expert weights (named as in a shard) into a model in memory.
    public func setExpert(_ id: ExpertID, _ weights: ExpertWeights, in model: MoEModel) throws {
        for slot in try expertSlots(id) {
            guard let index = model.layout.indexByName[slot.entry.name], let values = weights.values(slot.name),
                  values.count == slot.shape.reduce(1, *) else {
                throw LibraryError("expert \(id): tensor \(slot.name) is missing or not of shape \(slot.shape)")
            }
            let dst = model.parameters.pointer + model.layout.tensors[index].offset + slot.elementOffset
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
            guard let values = weights.values(slot.name), values.count == slot.shape.reduce(1, *) else {
                throw LibraryError("expert \(id): tensor \(slot.name) is missing or not of shape \(slot.shape)")
            }
            guard values.allSatisfy(\.isFinite) else { throw LibraryError("expert \(id): tensor \(slot.name) holds a non-finite value") }
            return StreamedTensor(TensorRecord(name: slot.name, shape: slot.shape, floats: values, as: slot.entry.dtype))
        }
        let meta = Self.expertMetadata(id, parent: parent, configSHA256: manifest.configSHA256, modelType: manifest.modelType)
        let hash = try Self.storeShard(tensors, metadata: meta, in: shardsDirectory)
        try addVersion(id, hash: hash, parent: parent, producedBy: producedBy, origin: origin)
        return hash
    }
}
