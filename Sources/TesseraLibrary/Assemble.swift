import Foundation
import TesseraEngine
import TesseraCore

extension ExpertLibrary {
    /// Writes a Hugging Face checkpoint of the chosen versions (the current ones by
    /// default) in the source's layout and file structure: same tensor names, dtypes,
    /// shapes and, for the base versions, the same bytes.
    public func assemble(versions chosen: [ExpertID: String] = [:], into out: String) throws {
        let versions = try versions(chosen)
        var shards: [String: SafetensorsFile] = [:]
        func shard(_ hash: String, _ what: String) throws -> SafetensorsFile {
            if let s = shards[hash] { return s }
            let s = try openShard(hash, what: what)
            shards[hash] = s
            return s
        }
        let trunk = try shard(manifest.trunk, "trunk")
        // Everything is checked before the first file is written: a refused assemble leaves
        // nothing behind.
        guard let config = FileManager.default.contents(atPath: configPath) else { throw LibraryError("\(configPath): missing") }
        guard ContentHash.sha256(Array(config)) == manifest.configSHA256 else {
            throw LibraryError("\(configPath): does not match the manifest's config_sha256")
        }
        var tokenizer: Data?
        if let expected = manifest.tokenizerSHA256 {
            guard let data = FileManager.default.contents(atPath: tokenizerPath), ContentHash.sha256(Array(data)) == expected else {
                throw LibraryError("\(tokenizerPath): missing or does not match the manifest's tokenizer_sha256")
            }
            tokenizer = data
        }
        var plan: [(name: String, tensors: [StreamedTensor])] = []
        let byName = Dictionary(uniqueKeysWithValues: manifest.tensors.map { ($0.name, $0) })
        var totalSize = 0
        for file in manifest.sourceFiles {
            var streamed: [StreamedTensor] = []
            for name in file.tensors {
                guard let entry = byName[name] else { throw LibraryError("\(manifestPath): source tensor \(name) has no entry") }
                let pieces: [(SafetensorsFile, String)]
                switch entry.placement {
                case .trunk:
                    pieces = [(trunk, name)]
                case .expert:
                    let id = ExpertID(layer: entry.layer!, expert: entry.expert!)
                    pieces = [(try shard(versions[id]!, "expert \(id)"), name)]
                case .expertSlices:
                    let count = entry.shape[0]
                    pieces = try (0..<count).map { e in
                        let id = ExpertID(layer: entry.layer!, expert: e)
                        return (try shard(versions[id]!, "expert \(id)"), Self.shardTensorName(entry, expert: e))
                    }
                }
                let sliceShape = entry.placement == .expertSlices ? Array(entry.shape.dropFirst()) : entry.shape
                for (file, inner) in pieces {
                    guard let info = file.tensors[inner], info.dtype == entry.dtype, info.shape == sliceShape else {
                        throw LibraryError("shard \(file.path): tensor \(inner) is missing or not \(entry.dtype.rawValue) \(sliceShape)")
                    }
                }
                streamed.append(StreamedTensor(name: name, dtype: entry.dtype, shape: entry.shape) { sink in
                    for (file, inner) in pieces { try sink(file.bytes(of: file.tensors[inner]!)) }
                })
                totalSize += streamed.last!.byteCount
            }
            plan.append((file.name, streamed))
        }
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        for (name, streamed) in plan {
            try SafetensorsWriter.write(streamed: streamed, to: (out as NSString).appendingPathComponent(name))
        }
        if manifest.sourceFiles.count > 1 {
            var map: [(String, JSONValue)] = []
            for file in manifest.sourceFiles { for name in file.tensors { map.append((name, .string(file.name))) } }
            map.sort { $0.0 < $1.0 }
            let index = JSONValue.object([("metadata", .object([("total_size", .integer(Int64(totalSize)))])), ("weight_map", .object(map))])
            try AtomicFile.write(Array(index.serialized().utf8), to: (out as NSString).appendingPathComponent("model.safetensors.index.json"))
        }
        try AtomicFile.write(Array(config), to: (out as NSString).appendingPathComponent("config.json"))
        if let tokenizer { try AtomicFile.write(Array(tokenizer), to: (out as NSString).appendingPathComponent("tokenizer.json")) }
    }
}
