import Foundation
import TesseraEngine
import TesseraCore

extension ExpertLibrary {
    public struct SplitSummary: Sendable {
        public var library: String
        public var trunk: String
        public var experts: Int
        public var bytes: Int
        /// False when the library already held exactly this model: nothing was written.
        public var changed: Bool
        /// Checkpoint tensors the model does not use and the library does not keep
        /// (DeepSeek-V3's multi-token-prediction layer, which transformers ignores too).
        public var ignored: [String] = []
    }

    /// Splits a Hugging Face checkpoint into a trunk shard and one shard per routed expert.
    /// Tensor bytes are copied straight from the mapped input (no conversion, so every
    /// dtype survives bit for bit) and each tensor's pages are dropped once copied, which
    /// bounds resident memory by about one tensor.
    @discardableResult
    public static func split(checkpoint: String, into directory: String, progress: Bool = false) throws -> SplitSummary {
        let configPath = (checkpoint as NSString).appendingPathComponent("config.json")
        guard let configData = FileManager.default.contents(atPath: configPath) else {
            throw LibraryError("\(configPath): cannot read config.json")
        }
        let config = try ModelConfig.parse(configData, file: configPath)
        let files = try CheckpointFiles(directory: checkpoint)
        let layout = WeightLayout(config: config, expertLayout: MoEModel.expertLayout(of: files))
        try layout.checkCheckpoint(files)
        // Every weight is checked before anything is written: a library holds finite
        // weights only (eval would refuse them later, after the market was built on them).
        for slot in layout.tensors {
            if slot.mxfp4 {
                try checkMXFP4(slot, files, checkpoint)
                continue
            }
            guard let info = files.info(slot.name), info.dtype.isFloatingPoint, let entry = files.entries[slot.name] else { continue }
            let file = files.files[entry.file]
            var bad: Int?
            var seen = 0
            file.streamPieces(file.bytes(of: info)) { piece in
                if bad == nil, let i = info.dtype.firstNonFinite(in: piece) { bad = seen + i }
                seen += piece.count / info.dtype.byteSize
            }
            if let bad {
                throw LibraryError("\(checkpoint): tensor \(slot.name) holds a NaN or infinity (element \(bad)); a library takes finite weights only")
            }
        }
        let configSHA = ContentHash.sha256(Array(configData))
        let tokenizerData = FileManager.default.contents(atPath: (checkpoint as NSString).appendingPathComponent("tokenizer.json"))
        let fm = FileManager.default
        let shards = (directory as NSString).appendingPathComponent("shards")
        try fm.createDirectory(atPath: shards, withIntermediateDirectories: true)

        var entries: [LibraryManifest.TensorEntry] = []
        var trunkTensors: [StreamedTensor] = []
        var expertTensors: [ExpertID: [StreamedTensor]] = [:]
        let stored = layout.tensors.flatMap { $0.mxfp4 ? [MXFP4.blocksName($0.name), MXFP4.scalesName($0.name)] : [$0.name] }
        let total = stored.reduce(0) { $0 + (files.info($1)?.byteCount ?? 0) }
        let bar = ProgressBar(label: "split", total: Double(total) * 2, unit: "MB", scale: 1e6, enabled: progress && isatty(2) == 1)
        func stream(_ name: String, _ info: TensorInfo, sliceBytes: Int = 0, slice: Int = 0) -> (_ sink: (UnsafeRawBufferPointer) throws -> Void) throws -> Void {
            let file = files.files[files.entries[name]!.file]
            return { sink in
                let all = file.bytes(of: info)
                let piece = sliceBytes > 0 ? UnsafeRawBufferPointer(rebasing: all[(slice * sliceBytes)..<((slice + 1) * sliceBytes)]) : all
                try file.streamPieces(piece) { part in
                    try sink(part)
                    bar.advance(by: Double(part.count))
                }
            }
        }
        for (i, slot) in layout.tensors.enumerated() {
            // An MXFP4 weight is kept as its two stored halves, sliced by expert like a
            // fused tensor: the split's versions keep the original bytes.
            let halves: [(name: String, part: LibraryManifest.MXFP4Part?)] = slot.mxfp4
                ? [(MXFP4.blocksName(slot.name), .init(weight: slot.name, half: .blocks, weightShape: slot.shape)),
                   (MXFP4.scalesName(slot.name), .init(weight: slot.name, half: .scales, weightShape: slot.shape))]
                : [(slot.name, nil)]
            for (name, part) in halves {
                let info = files.info(name)!
                switch layout.placement(ofTensor: i) {
                case .trunk:
                    entries.append(.init(name: name, dtype: info.dtype, shape: info.shape, placement: .trunk))
                    trunkTensors.append(StreamedTensor(name: name, dtype: info.dtype, shape: info.shape, emit: stream(name, info)))
                case let .expert(id):
                    entries.append(.init(name: name, dtype: info.dtype, shape: info.shape, placement: .expert, layer: id.layer, expert: id.expert))
                    expertTensors[id, default: []].append(StreamedTensor(name: name, dtype: info.dtype, shape: info.shape, emit: stream(name, info)))
                case let .expertSlices(layer):
                    let entry = LibraryManifest.TensorEntry(name: name, dtype: info.dtype, shape: info.shape, placement: .expertSlices, layer: layer, mxfp4: part)
                    entries.append(entry)
                    let sliceShape = Array(info.shape.dropFirst())
                    let sliceBytes = info.byteCount / info.shape[0]
                    for e in 0..<info.shape[0] {
                        expertTensors[ExpertID(layer: layer, expert: e), default: []].append(
                            StreamedTensor(name: shardTensorName(entry, expert: e), dtype: info.dtype, shape: sliceShape,
                                           emit: stream(name, info, sliceBytes: sliceBytes, slice: e)))
                    }
                }
            }
        }
        let trunkHash = try storeShard(trunkTensors, metadata: ["format": "pt", "tessera.kind": "trunk", "tessera.config_sha256": configSHA,
                                                                "tessera.model_type": config.family.rawValue], in: shards)
        var experts: [LibraryManifest.ExpertEntry] = []
        for id in layout.expertIDs {
            let meta = expertMetadata(id, parent: nil, configSHA256: configSHA, modelType: config.family.rawValue)
            let hash = try storeShard(expertTensors[id] ?? [], metadata: meta, in: shards)
            CrashPoint.reach("split.shard")
            experts.append(.init(layer: id.layer, expert: id.expert,
                                 versions: [.init(hash: hash, parent: nil, producedBy: [], origin: "split")]))
        }
        let sourceFiles = files.files.map { f in
            LibraryManifest.SourceFile(name: (f.path as NSString).lastPathComponent, tensors: f.names)
        }
        let manifest = LibraryManifest(format: LibraryManifest.formatName, modelType: config.family.rawValue,
                                       expertLayout: layout.expertLayout, configSHA256: configSHA, sourceFiles: sourceFiles,
                                       tensors: entries, trunk: trunkHash, experts: experts,
                                       tokenizerSHA256: tokenizerData.map { ContentHash.sha256(Array($0)) })
        if progress {
            bar.update(Double(total) * 2)
            bar.finish()
        }
        let summary = SplitSummary(library: directory, trunk: trunkHash, experts: experts.count, bytes: total, changed: true,
                                   ignored: layout.ignoredTensors(files))
        if isLibrary(directory) {
            let existing = try ExpertLibrary(directory: directory)
            let sameBase = existing.manifest.configSHA256 == configSHA && existing.manifest.trunk == trunkHash
                && existing.manifest.tensors == entries
                && existing.manifest.experts.map { $0.versions[0].hash } == experts.map { $0.versions[0].hash }
                && existing.manifest.tokenizerSHA256 == manifest.tokenizerSHA256
            guard sameBase else {
                throw LibraryError("\(directory) already holds a library of a different model; split into an empty directory")
            }
            return SplitSummary(library: directory, trunk: trunkHash, experts: experts.count, bytes: total, changed: false,
                                ignored: layout.ignoredTensors(files))
        }
        let configCopy = (directory as NSString).appendingPathComponent("config.json")
        try AtomicFile.write(Array(configData), to: configCopy)
        if let tokenizerData { try AtomicFile.write(Array(tokenizerData), to: (directory as NSString).appendingPathComponent("tokenizer.json")) }
        CrashPoint.reach("split.manifest")
        try AtomicFile.write(try manifest.encoded(), to: manifestPath(directory))
        return summary
    }

    /// Decodes an MXFP4 weight expert by expert and refuses one that holds a non-finite
    /// value (a scale of 255, or a large code on a scale of 254), before anything is written.
    private static func checkMXFP4(_ slot: TensorSlot, _ files: CheckpointFiles, _ checkpoint: String) throws {
        let (experts, inputs, outputs) = (slot.shape[0], slot.shape[1], slot.shape[2])
        guard let blocks = files.bytes(MXFP4.blocksName(slot.name)), let scales = files.bytes(MXFP4.scalesName(slot.name)) else {
            throw LibraryError("\(checkpoint): \(slot.name) is missing its MXFP4 blocks or scales")
        }
        var scratch = [Float](repeating: 0, count: inputs * outputs)
        for e in 0..<experts {
            let bad = scratch.withUnsafeMutableBufferPointer {
                MXFP4.decodeExpert(e, ofBlocks: blocks, scales: scales, shape: slot.shape, into: $0.baseAddress!)
            }
            if let bad {
                throw LibraryError("\(checkpoint): \(slot.name) of expert \(e) decodes to a NaN or infinity (element \(bad)); a library takes finite weights only")
            }
        }
    }
}
