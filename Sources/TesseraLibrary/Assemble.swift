import Foundation
import TesseraEngine
import TesseraCore

extension ExpertLibrary {
    /// Writes a Hugging Face checkpoint of the chosen versions (the current ones by
    /// default) in the source's layout and file structure: same tensor names, dtypes,
    /// shapes and, for the base versions, the same bytes. An MXFP4 checkpoint's experts
    /// are written back as their original blocks and scales where the chosen version is
    /// the split's; a version made later (kept in bf16) is quantised to MXFP4 as the
    /// released models were, which rounds it: the returned report names those experts and
    /// the relative error of each.
    @discardableResult
    public func assemble(versions chosen: [ExpertID: String] = [:], into out: String) throws -> [Requantized] {
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
        let requantized = try mxfp4Encodings(versions, shard: shard)
        for file in manifest.sourceFiles {
            var streamed: [StreamedTensor] = []
            for name in file.tensors {
                guard let entry = byName[name] else { throw LibraryError("\(manifestPath): source tensor \(name) has no entry") }
                if let part = entry.mxfp4 {
                    let slices = try (0..<entry.shape[0]).map { e -> (SafetensorsFile, String)? in
                        let id = ExpertID(layer: entry.layer!, expert: e)
                        if requantized.encodings[id, default: [:]][part.weight] != nil { return nil }
                        let file = try shard(versions[id]!, "expert \(id)"), inner = Self.shardTensorName(entry, expert: e)
                        guard let info = file.tensors[inner], info.dtype == .u8, info.shape == Array(entry.shape.dropFirst()) else {
                            throw LibraryError("shard \(file.path): tensor \(inner) is missing or not U8 \(Array(entry.shape.dropFirst()))")
                        }
                        return (file, inner)
                    }
                    streamed.append(StreamedTensor(name: name, dtype: entry.dtype, shape: entry.shape) { sink in
                        for (e, slice) in slices.enumerated() {
                            if let (file, inner) = slice {
                                try sink(file.bytes(of: file.tensors[inner]!))
                            } else {
                                let encoded = requantized.encodings[ExpertID(layer: entry.layer!, expert: e)]![part.weight]!
                                try (part.half == .blocks ? encoded.blocks : encoded.scales).withUnsafeBytes { try sink($0) }
                            }
                        }
                    })
                    totalSize += streamed.last!.byteCount
                    continue
                }
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
        return requantized.report
    }

    /// An expert whose chosen version had to be quantised to MXFP4 on assembly.
    public struct Requantized: Sendable, Equatable {
        public var expert: ExpertID
        public var version: String
        /// ‖quantised − version‖ / ‖version‖ over the expert's MXFP4 weights.
        public var relativeError: Double
    }

    /// The MXFP4 encodings of the chosen versions that do not hold their original blocks
    /// and scales (versions made after the split), by expert and weight.
    private func mxfp4Encodings(_ versions: [ExpertID: String], shard: (String, String) throws -> SafetensorsFile)
        throws -> (encodings: [ExpertID: [String: (blocks: [UInt8], scales: [UInt8])]], report: [Requantized]) {
        var encodings: [ExpertID: [String: (blocks: [UInt8], scales: [UInt8])]] = [:]
        var report: [Requantized] = []
        for e in manifest.experts {
            let slots = try expertSlots(e.id).filter { $0.mxfp4 != nil }
            guard !slots.isEmpty, let hash = versions[e.id] else { continue }
            let file = try shard(hash, "expert \(e.id)")
            var errorSquared = 0.0, normSquared = 0.0
            for slot in slots where file.tensors[slot.name] != nil {
                let values = try readSlot(slot, from: file)
                let (inputs, outputs) = (slot.shape[0], slot.shape[1])
                let encoded = values.withUnsafeBufferPointer { MXFP4.encode($0, inputs: inputs, outputs: outputs) }
                var decoded = [Float](repeating: 0, count: values.count)
                _ = encoded.blocks.withUnsafeBytes { b in encoded.scales.withUnsafeBytes { s in
                    decoded.withUnsafeMutableBufferPointer { MXFP4.decodeExpert(blocks: b, scales: s, inputs: inputs, outputs: outputs, into: $0.baseAddress!) }
                } }
                for (a, b) in zip(values, decoded) {
                    errorSquared += Double(a - b) * Double(a - b)
                    normSquared += Double(a) * Double(a)
                }
                encodings[e.id, default: [:]][slot.modelTensor] = encoded
            }
            if encodings[e.id] != nil {
                report.append(Requantized(expert: e.id, version: hash, relativeError: normSquared > 0 ? (errorSquared / normSquared).squareRoot() : 0))
            }
        }
        return (encodings, report)
    }
}
