import Foundation
import TesseraEngine
import TesseraCore

extension ExpertLibrary {
    /// Loads the model from the library: the trunk plus, for every expert in `resident`
    /// (all when nil), the chosen version (the current one unless `chosen` names another).
    /// A partial model routes tokens among its resident experts only; the parameter pages
    /// of the others are never touched, so they cost no memory.
    /// bf16 matrices stay bf16 in the mapped shards (`keepBF16`, see `FrozenWeights`) until
    /// something trains them.
    public func loadModel(versions chosen: [ExpertID: String] = [:], resident: Set<ExpertID>? = nil,
                          availableMemory: Int? = nil, keepBF16: Bool = MoEModel.keepsBF16) throws -> MoEModel {
        let config = try config()
        // What loading touches: everything but the experts left out, at 4 bytes a float and
        // 2 a weight that stays bf16. Checked before the parameter map exists, so a model
        // this machine cannot hold is refused, not killed.
        let full = WeightLayout(config: config, expertLayout: manifest.expertLayout)
        func staysBF16(_ name: String, _ dtype: DType) -> Bool {
            keepBF16 && dtype == .bf16 && full.indexByName[name].map { MoEModel.mayStayBF16(full.tensors[$0]) } == true
        }
        var touched = full.tensors.reduce(0) { $0 + $1.count * 4 }
        for entry in manifest.tensors where entry.placement == .trunk && staysBF16(entry.name, entry.dtype) {
            touched -= entry.shape.reduce(1, *) * 2
        }
        for e in manifest.experts {
            for slot in try expertSlots(e.id) {
                if !(resident?.contains(e.id) ?? true) {
                    touched -= slot.count * 4
                } else if slot.mxfp4 == nil, staysBF16(slot.modelTensor, slot.dtype) {
                    touched -= slot.count * 2
                }
            }
        }
        try requireMemory(forParameters: touched, what: resident == nil ? "the whole model of \(directory)" : "this partial model of \(directory)",
                          hint: resident == nil ? "load part of it: --resident with the experts you need (at least top-k per layer)" : "keep fewer experts resident",
                          available: availableMemory)
        let model = MoEModel(config: config, layout: manifest.expertLayout)
        let versions = try versions(chosen)
        let layout = model.layout
        if let resident {
            for id in resident where manifest.entry(id) == nil {
                throw LibraryError("expert \(id) is not in library \(directory)")
            }
            var mask: [[Bool]] = []
            for (l, layer) in layout.layers.enumerated() {
                let row = layer.experts.indices.map { resident.contains(ExpertID(layer: l, expert: $0)) }
                if !layer.experts.isEmpty, row.filter({ $0 }).count < config.topK {
                    throw LibraryError("a partial model needs at least \(config.topK) resident experts in every sparse layer (top-k); layer \(l) has \(row.filter { $0 }.count)")
                }
                mask.append(row)
            }
            model.residentExperts = mask
        }
        let trunk = try openShard(manifest.trunk, what: "trunk")
        for entry in manifest.tensors where entry.placement == .trunk {
            try fill(model, entry, from: trunk, inner: entry.name, elementOffset: 0, keepBF16: keepBF16)
        }
        for e in manifest.experts where resident?.contains(e.id) ?? true {
            let hash = versions[e.id]!
            let shard = try openShard(hash, what: "expert \(e.id) version \(hash.prefix(12))")
            for slot in try expertSlots(e.id) {
                guard let index = model.layout.indexByName[slot.modelTensor], model.layout.tensors[index].shape == slot.modelShape else {
                    throw LibraryError("\(manifestPath): tensor \(slot.modelTensor) is not part of a \(config.family.rawValue) model of this config")
                }
                if keepBF16, slot.mxfp4 == nil, slot.dtype == .bf16, let info = shard.tensors[slot.name], info.dtype == .bf16, info.shape == slot.shape {
                    // Stays bf16 in the mapped shard where the model allows (FrozenWeights).
                    try model.setTensor(index, from: shard.bytes(of: info), dtype: .bf16, elementOffset: slot.elementOffset,
                                        origin: shard.path, mappedBy: shard)
                    continue
                }
                let dst = model.parameters.pointer + model.layout.tensors[index].offset + slot.elementOffset
                FrozenWeights.thaw(dst, count: slot.count, keep: false)
                try readSlot(slot, from: shard, into: dst)
                model.sourceDTypes[index] = slot.dtype
            }
        }
        return model
    }

    private func fill(_ model: MoEModel, _ entry: LibraryManifest.TensorEntry, from shard: SafetensorsFile, inner: String, elementOffset: Int,
                      keepBF16: Bool) throws {
        guard let index = model.layout.indexByName[entry.name] else {
            throw LibraryError("\(manifestPath): tensor \(entry.name) is not part of a \(model.config.family.rawValue) model of this config")
        }
        guard let info = shard.tensors[inner], info.shape == entry.shape, info.dtype == entry.dtype,
              entry.shape == model.layout.tensors[index].shape else {
            throw LibraryError("shard \(shard.path): tensor \(inner) is missing or not \(entry.dtype.rawValue) \(entry.shape)")
        }
        try model.setTensor(index, from: shard.bytes(of: info), dtype: info.dtype, elementOffset: elementOffset, origin: shard.path,
                            mappedBy: keepBF16 ? shard : nil)
    }
}

/// Where `tessera eval`, `grad` and the other model commands get their model: a Hugging
/// Face checkpoint directory or an expert library, with optional version choices and,
/// for a library, an optional resident subset of experts.
public enum ModelSource {
    public static func load(_ path: String, versions: [String] = [], resident: String? = nil) throws -> MoEModel {
        guard ExpertLibrary.isLibrary(path) else {
            guard versions.isEmpty, resident == nil else {
                throw LibraryError("\(path): --version and --resident need an expert library, and this is a checkpoint directory")
            }
            return try MoEModel(directory: path)
        }
        let library = try ExpertLibrary(directory: path)
        return try library.loadModel(versions: try parseVersionChoices(versions), resident: try resident.map(parseExpertSet))
    }

    /// "L:E=HASH" items.
    public static func parseVersionChoices(_ items: [String]) throws -> [ExpertID: String] {
        var out: [ExpertID: String] = [:]
        for item in items {
            let parts = item.split(separator: "=", maxSplits: 1)
            guard parts.count == 2 else { throw LibraryError("version choice \"\(item)\" is not of the form LAYER:EXPERT=HASH") }
            let ids = try parseExpertSet(String(parts[0]))
            guard ids.count == 1 else { throw LibraryError("version choice \"\(item)\" names more than one expert") }
            out[ids.first!] = String(parts[1])
        }
        return out
    }

    public static func parseExpertSet(_ text: String) throws -> Set<ExpertID> {
        do {
            return Set(try ExpertID.parseList(text))
        } catch {
            throw LibraryError("\(error)")
        }
    }
}
