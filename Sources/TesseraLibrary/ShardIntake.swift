import Foundation
import TesseraCore
import TesseraEngine

extension ExpertLibrary {
    /// The largest an expert shard of this library can be: its tensors' bytes plus room
    /// for the safetensors header (a cap for uploads).
    public func maxExpertShardBytes() throws -> Int {
        let perExpert = try manifest.experts.map { e in try expertSlots(e.id).reduce(0) { $0 + $1.count * $1.dtype.byteSize } }
        return (perExpert.max() ?? 0) + (1 << 20)
    }

    /// Takes in an expert shard made elsewhere (an operator's merge, sent to the market's
    /// server): it must be a shard of this library's model for one of its experts, with
    /// exactly the expert's tensors, dtypes and shapes, finite values, and a parent that is
    /// a version of that expert. It is stored under its hash; the manifest does not name it
    /// until `addVersion` (the ledger's `new_version` decides that). Returns the hash, the
    /// expert and the parent.
    public func intakeShard(_ path: String) throws -> (hash: String, expert: ExpertID, parent: String) {
        let file: SafetensorsFile
        do { file = try SafetensorsFile(path: path) } catch { throw LibraryError("uploaded shard: \(error)") }
        let m = file.metadata
        guard m["tessera.kind"] == "expert", let l = m["tessera.layer"].flatMap({ Int($0) }), let e = m["tessera.expert"].flatMap({ Int($0) }),
              let parent = m["tessera.parent"] else {
            throw LibraryError("uploaded shard: its metadata does not name an expert (tessera.kind, tessera.layer, tessera.expert, tessera.parent)")
        }
        let id = ExpertID(layer: l, expert: e)
        guard m["tessera.config_sha256"] == manifest.configSHA256 else {
            throw LibraryError("uploaded shard: made for another model (config \(m["tessera.config_sha256"]?.prefix(12) ?? "none"), not \(manifest.configSHA256.prefix(12)))")
        }
        guard m["tessera.model_type"] == manifest.modelType else {
            throw LibraryError("uploaded shard: made for model type \(m["tessera.model_type"]?.prefix(40) ?? "none"), not \(manifest.modelType)")
        }
        guard let entry = manifest.entry(id) else { throw LibraryError("uploaded shard: expert \(id) is not in this library") }
        guard entry.versions.contains(where: { $0.hash == parent }) else {
            throw LibraryError("uploaded shard: parent \(parent.prefix(12)) is not a version of expert \(id)")
        }
        let slots = try expertSlots(id)
        guard Set(file.names) == Set(slots.map(\.name)) else {
            throw LibraryError("uploaded shard: tensors \(file.names.sorted()) are not expert \(id)'s \(slots.map(\.name).sorted())")
        }
        for slot in slots {
            guard let info = file.tensors[slot.name], info.dtype == slot.dtype, info.shape == slot.shape else {
                throw LibraryError("uploaded shard: tensor \(slot.name) is not \(slot.dtype.rawValue) \(slot.shape)")
            }
            guard try file.floats(slot.name).allSatisfy(\.isFinite) else {
                throw LibraryError("uploaded shard: tensor \(slot.name) holds a non-finite value")
            }
        }
        let hash = ContentHash.sha256(file.wholeFile)
        let target = shardPath(hash)
        if !FileManager.default.fileExists(atPath: target) {
            try AtomicFile.write(Array(file.wholeFile), to: target)
        }
        return (hash, id, parent)
    }
}
