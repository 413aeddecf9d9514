import Foundation
import Testing
@testable import TesseraEngine
@testable import TesseraLibrary
import TesseraCore
import TesseraTestSupport

@Suite struct SplitAssembleTests {
    static let all = ReferenceFixtures.names + ReferenceFixtures.mxfp4

    @Test(arguments: all)
    func assembleReproducesEveryTensorByteForByte(_ name: String) throws {
        let s = TemporaryDirectory()
        let lib = s.sub("lib"), out = s.sub("out")
        let summary = try ExpertLibrary.split(checkpoint: ReferenceFixtures.path(name), into: lib)
        #expect(summary.changed)
        try ExpertLibrary(directory: lib).assemble(into: out)
        let source = try CheckpointFiles(directory: ReferenceFixtures.path(name))
        let rebuilt = try CheckpointFiles(directory: out)
        #expect(Set(source.tensorNames) == Set(rebuilt.tensorNames))
        #expect(Set(source.files.map { ($0.path as NSString).lastPathComponent }) == Set(rebuilt.files.map { ($0.path as NSString).lastPathComponent }))
        for tensor in source.tensorNames {
            let a = source.info(tensor)!, b = rebuilt.info(tensor)!
            #expect(a.dtype == b.dtype && a.shape == b.shape, "\(tensor)")
            #expect(Array(source.bytes(tensor)!) == Array(rebuilt.bytes(tensor)!), "\(tensor) bytes differ")
        }
        #expect(FileManager.default.contents(atPath: ReferenceFixtures.path(name) + "/config.json") == FileManager.default.contents(atPath: out + "/config.json"))
        if source.files.count == 1 {
            #expect(FileManager.default.contents(atPath: source.files[0].path) == FileManager.default.contents(atPath: out + "/model.safetensors"),
                    "a single-file checkpoint is reproduced as the same file")
        }
    }

    @Test(arguments: all)
    func libraryModelGivesTheCheckpointsLossAndGradients(_ name: String) throws {
        let s = TemporaryDirectory()
        try ExpertLibrary.split(checkpoint: ReferenceFixtures.path(name), into: s.sub("lib"))
        let direct = try MoEModel(directory: ReferenceFixtures.path(name))
        let fromLibrary = try ModelSource.load(s.sub("lib"))
        #expect(direct.parameterValues == fromLibrary.parameterValues)
        #expect(direct.sourceDTypes == fromLibrary.sourceDTypes)
        let a = try Evaluation.run(model: direct, tokensPath: ReferenceFixtures.tokens(name))
        let b = try Evaluation.run(model: fromLibrary, tokensPath: ReferenceFixtures.tokens(name))
        #expect(a.loss == b.loss && a.routerCounts == b.routerCounts)
    }

    /// DeepSeek-V3's multi-token-prediction layer (layer num_hidden_layers) is not part of
    /// the model transformers loads: the engine loads without it, split says it left it out.
    @Test func deepSeekV3MultiTokenPredictionLayerIsLeftOutAndSaid() throws {
        let s = TemporaryDirectory()
        let source = ReferenceFixtures.path("deepseekv3-tiny"), copy = s.sub("ckpt")
        try FileManager.default.createDirectory(atPath: copy, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: source + "/config.json", toPath: copy + "/config.json")
        let files = try CheckpointFiles(directory: source)
        var records = files.tensorNames.map { TensorRecord(name: $0, dtype: files.info($0)!.dtype, shape: files.info($0)!.shape, bytes: Array(files.bytes($0)!)) }
        records.append(TensorRecord(name: "model.layers.3.enorm.weight", dtype: .f32, shape: [32], bytes: Array(repeating: 0, count: 128)))
        try SafetensorsWriter.write(records, to: copy + "/model.safetensors")
        let direct = try MoEModel(directory: source), withMTP = try MoEModel(directory: copy)
        #expect(direct.parameterValues == withMTP.parameterValues)
        let summary = try ExpertLibrary.split(checkpoint: copy, into: s.sub("lib"))
        #expect(summary.ignored == ["model.layers.3.enorm.weight"])
        // Any other unknown tensor is still refused, naming it.
        records.append(TensorRecord(name: "model.layers.1.mlp.extra.weight", dtype: .f32, shape: [1], bytes: [0, 0, 0, 0]))
        try SafetensorsWriter.write(records, to: copy + "/model.safetensors")
        #expect { try MoEModel(directory: copy) } throws: { "\($0)".contains("unused tensor model.layers.1.mlp.extra.weight") }
    }

    /// An MXFP4 checkpoint's experts are kept as their original blocks and scales; a new
    /// version is kept in bf16, and assembling quantises only the experts that changed.
    @Test func mxfp4ExpertsKeepTheirBytesAndChangedOnesAreQuantisedOnAssembly() throws {
        let s = TemporaryDirectory()
        let source = ReferenceFixtures.path("gptoss-mxfp4")
        try ExpertLibrary.split(checkpoint: source, into: s.sub("lib"))
        let lib = try ExpertLibrary(directory: s.sub("lib"))
        let id = ExpertID(layer: 1, expert: 2)
        let split = try lib.openShard(lib.manifest.entry(id)!.head.hash, what: "test")
        let prefix = "model.layers.1.mlp.experts."
        #expect(Set(split.names) == Set(["gate_up_proj_blocks[2]", "gate_up_proj_scales[2]", "gate_up_proj_bias[2]",
                                         "down_proj_blocks[2]", "down_proj_scales[2]", "down_proj_bias[2]"].map { prefix + $0 }))
        #expect(lib.manifest.tensors.filter { $0.mxfp4 != nil }.count == 8)
        // The base weights read through the library are the checkpoint's decoded values.
        let direct = try MoEModel(directory: source)
        let base = try lib.expertWeights(id)
        #expect(base.weights.tensors.map(\.name) == ["gate_up_proj[2]", "gate_up_proj_bias[2]", "down_proj[2]", "down_proj_bias[2]"].map { prefix + $0 })
        #expect(base.weights.tensors.map(\.dtype) == [.bf16, .f32, .bf16, .f32])
        #expect(try lib.expertWeights(id, from: direct).flattened == base.weights.flattened)
        #expect(try lib.expertWeights(id, fromCheckpoint: source).flattened == base.weights.flattened)

        // A changed version (through a lossless delta) is stored in bf16 and loads as such.
        var changed = base.weights
        for i in changed.tensors.indices { changed.tensors[i].values = changed.tensors[i].values.map { $0 * 1.01 + 0.001 } }
        try lib.encodeDelta(id, new: changed, options: DeltaOptions(encoding: .lossless), to: s.sub("d.delta"))
        let hash = try lib.applyDelta(s.sub("d.delta"), producedBy: ["test"])
        let shard = try lib.openShard(hash, what: "test")
        #expect(shard.tensors[prefix + "down_proj[2]"]?.dtype == .bf16 && shard.names.count == 4)
        let stored = try lib.expertWeights(id).weights
        #expect(stored.flattened == changed.tensors.flatMap { DeltaCodec.decodeStorage(DeltaCodec.storageBytes($0.values, $0.dtype), $0.dtype) })
        let loaded = try lib.loadModel()
        #expect(try lib.expertWeights(id, from: loaded).flattened == stored.flattened)

        // Assembly: every other expert's blocks and scales are the source's bytes; the
        // changed one is quantised (and reported), and reads back as its quantised values.
        let report = try lib.assemble(into: s.sub("out"))
        #expect(report.map(\.expert) == [id] && report[0].version == hash && report[0].relativeError > 0 && report[0].relativeError < 0.2)
        let a = try CheckpointFiles(directory: source), b = try CheckpointFiles(directory: s.sub("out"))
        #expect(Set(a.tensorNames) == Set(b.tensorNames))
        for name in a.tensorNames {
            let x = Array(a.bytes(name)!), y = Array(b.bytes(name)!)
            guard name.hasPrefix(prefix) else {
                #expect(x == y, "\(name)")
                continue
            }
            let per = x.count / 4
            for e in [0, 1, 3] { #expect(x[(e * per)..<((e + 1) * per)] == y[(e * per)..<((e + 1) * per)], "\(name) expert \(e)") }
        }
        let reread = try MoEModel(directory: s.sub("out"))
        let down = stored.values("model.layers.1.mlp.experts.down_proj[2]")!
        let (inputs, outputs) = (32, 64)
        let encoded = down.withUnsafeBufferPointer { MXFP4.encode($0, inputs: inputs, outputs: outputs) }
        var expected = [Float](repeating: 0, count: down.count)
        _ = encoded.blocks.withUnsafeBytes { bl in encoded.scales.withUnsafeBytes { sc in
            expected.withUnsafeMutableBufferPointer { MXFP4.decodeExpert(blocks: bl, scales: sc, inputs: inputs, outputs: outputs, into: $0.baseAddress!) }
        } }
        #expect(try lib.expertWeights(id, from: reread).values("model.layers.1.mlp.experts.down_proj[2]") == expected)
        // The base versions assemble back to the source byte for byte.
        #expect(try lib.assemble(versions: [id: lib.manifest.entry(id)!.versions[0].hash], into: s.sub("base")).isEmpty)
        #expect(FileManager.default.contents(atPath: s.sub("base") + "/model.safetensors") == FileManager.default.contents(atPath: source + "/model.safetensors"))
    }

    /// A manifest whose MXFP4 halves do not pair up, or whose shapes do not match, is
    /// refused on open with the tensor named.
    @Test func manifestsWithUnpairedOrMisshapenMXFP4HalvesAreRefused() throws {
        let s = TemporaryDirectory()
        try ExpertLibrary.split(checkpoint: ReferenceFixtures.path("gptoss-mxfp4"), into: s.sub("lib"))
        let path = s.sub("lib") + "/manifest.json"
        let original = try Data(contentsOf: URL(fileURLWithPath: path))
        for (edit, fragment) in [("drop", "has its blocks but no scales"), ("shape", "is not the MXFP4 blocks of a weight")] {
            var json = try JSONSerialization.jsonObject(with: original) as! [String: Any]
            var tensors = json["tensors"] as! [[String: Any]]
            let i = tensors.firstIndex { ($0["name"] as! String) == "model.layers.0.mlp.experts.down_proj_scales" }!
            if edit == "drop" {
                tensors.remove(at: i)
                var files = json["source_files"] as! [[String: Any]]
                files[0]["tensors"] = (files[0]["tensors"] as! [String]).filter { $0 != "model.layers.0.mlp.experts.down_proj_scales" }
                json["source_files"] = files
            } else {
                let j = tensors.firstIndex { ($0["name"] as! String) == "model.layers.0.mlp.experts.down_proj_blocks" }!
                var part = tensors[j]["mxfp4"] as! [String: Any]
                part["weight_shape"] = [4, 64, 32]
                tensors[j]["mxfp4"] = part
            }
            json["tensors"] = tensors
            try JSONSerialization.data(withJSONObject: json).write(to: URL(fileURLWithPath: path))
            #expect { try ExpertLibrary(directory: s.sub("lib")) } throws: { "\($0)".contains(fragment) && "\($0)".contains("down_proj") }
        }
    }

    /// An MXFP4 scale of 255 decodes to infinity: split refuses it before writing anything.
    @Test func anMXFP4WeightThatDecodesToInfinityIsRefusedBySplit() throws {
        let s = TemporaryDirectory()
        let source = ReferenceFixtures.path("gptoss-mxfp4"), copy = s.sub("ckpt")
        try FileManager.default.createDirectory(atPath: copy, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: source + "/config.json", toPath: copy + "/config.json")
        let files = try CheckpointFiles(directory: source)
        let records = files.tensorNames.map { name in
            var bytes = Array(files.bytes(name)!)
            if name == "model.layers.0.mlp.experts.down_proj_scales" { bytes[5 * bytes.count / 8] = 255 }
            return TensorRecord(name: name, dtype: files.info(name)!.dtype, shape: files.info(name)!.shape, bytes: bytes)
        }
        try SafetensorsWriter.write(records, to: copy + "/model.safetensors")
        #expect { try ExpertLibrary.split(checkpoint: copy, into: s.sub("lib")) } throws: {
            "\($0)".contains("model.layers.0.mlp.experts.down_proj of expert 2") && "\($0)".contains("NaN or infinity")
        }
        #expect(!FileManager.default.fileExists(atPath: s.sub("lib") + "/manifest.json"))
    }

    /// A model the machine cannot hold is refused before its parameters are read, naming
    /// the way out; the same memory holds a partial model of it.
    @Test func aModelLargerThanMemoryIsRefusedAndAPartialOneFits() throws {
        let s = TemporaryDirectory()
        try ExpertLibrary.split(checkpoint: ReferenceFixtures.path("olmoe-tiny"), into: s.sub("lib"))
        let lib = try ExpertLibrary(directory: s.sub("lib"))
        let whole = try lib.loadModel().parameterCount * 4
        #expect { try lib.loadModel(availableMemory: whole - 1) } throws: { "\($0)".contains("the whole model") && "\($0)".contains("--resident") }
        let resident = Set(lib.manifest.experts.map(\.id).filter { $0.expert < 2 })
        let partial = try lib.loadModel(resident: resident, availableMemory: whole - 1)
        #expect(partial.residentExperts != nil)
    }

    @Test func splittingAgainIsANoOpAndAnotherModelIsRefused() throws {
        let s = TemporaryDirectory()
        let lib = s.sub("lib")
        try ExpertLibrary.split(checkpoint: ReferenceFixtures.path("olmoe-tiny"), into: lib)
        let manifest = FileManager.default.contents(atPath: lib + "/manifest.json")
        let shards = try FileManager.default.contentsOfDirectory(atPath: lib + "/shards").sorted()
        let again = try ExpertLibrary.split(checkpoint: ReferenceFixtures.path("olmoe-tiny"), into: lib)
        #expect(!again.changed)
        #expect(FileManager.default.contents(atPath: lib + "/manifest.json") == manifest)
        #expect(try FileManager.default.contentsOfDirectory(atPath: lib + "/shards").sorted() == shards)
        #expect(shards.count == 1 + 2 * 6)
        #expect(throws: LibraryError.self) { try ExpertLibrary.split(checkpoint: ReferenceFixtures.path("mixtral-tiny"), into: lib) }
        #expect(FileManager.default.contents(atPath: lib + "/manifest.json") == manifest)
    }

    @Test func shardsCarryProvenanceAndAreNamedByTheirHash() throws {
        let s = TemporaryDirectory()
        try ExpertLibrary.split(checkpoint: ReferenceFixtures.path("mixtral-fused-sharded"), into: s.sub("lib"))
        let lib = try ExpertLibrary(directory: s.sub("lib"))
        let entry = lib.manifest.entry(ExpertID(layer: 1, expert: 3))!
        let shard = try lib.openShard(entry.head.hash, what: "test")
        #expect(shard.metadata["tessera.kind"] == "expert" && shard.metadata["tessera.layer"] == "1" && shard.metadata["tessera.expert"] == "3")
        #expect(Set(shard.names) == ["model.layers.1.mlp.experts.gate_up_proj[3]", "model.layers.1.mlp.experts.down_proj[3]"])
        #expect(try ContentHash.sha256(file: lib.shardPath(entry.head.hash)) == entry.head.hash)
        #expect(lib.manifest.expertLayout == .fused && lib.manifest.sourceFiles.count == 3)
    }

    @Test func corruptOrMissingShardsAreNamed() throws {
        let s = TemporaryDirectory()
        try ExpertLibrary.split(checkpoint: ReferenceFixtures.path("qwen2moe-tiny"), into: s.sub("lib"))
        let lib = try ExpertLibrary(directory: s.sub("lib"))
        let victim = lib.manifest.entry(ExpertID(layer: 1, expert: 5))!.head.hash
        let path = lib.shardPath(victim)
        var bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        bytes[bytes.count - 3] ^= 0x40
        try bytes.write(to: URL(fileURLWithPath: path))
        #expect { try lib.loadModel() } throws: { "\($0)".contains("expert 1:5") && "\($0)".contains("corrupt") }
        // A partial model without that expert still loads.
        let others = Set(lib.manifest.experts.map(\.id).filter { $0 != ExpertID(layer: 1, expert: 5) })
        _ = try lib.loadModel(resident: others)
        try FileManager.default.removeItem(atPath: path)
        #expect { try lib.loadModel() } throws: { "\($0)".contains("missing") && "\($0)".contains(victim) }
        #expect { try lib.assemble(into: s.sub("out")) } throws: { "\($0)".contains("expert 1:5") }
        #expect(!FileManager.default.fileExists(atPath: s.sub("out")), "a refused assemble writes nothing")
    }

    /// A checkpoint holding a NaN or an infinity is refused by split, naming the tensor,
    /// before the library directory is made (bf16, f32 and f16 checkpoints alike).
    @Test(arguments: [DType.bf16, .f32, .f16]) func nonFiniteWeightsAreRefusedBeforeAnythingIsWritten(_ dtype: DType) throws {
        let s = TemporaryDirectory()
        let config = ModelConfig(family: .qwen3MoE, vocabSize: 32, hiddenSize: 16, layers: 2, heads: 2, kvHeads: 1, headDim: 8,
                                 experts: 4, topK: 2, expertWidth: 8, normTopKProb: true, tieWordEmbeddings: true)
        let model = MoEModel(config: config)
        model.initializeRandomly(seed: 4, std: 0.1)
        let e = model.layout.layers[1].experts[2]
        model.parameters[e.down.offset + 3] = dtype == .f32 ? .nan : .infinity
        try model.save(directory: s.sub("hf"), dtype: dtype)
        #expect { try ExpertLibrary.split(checkpoint: s.sub("hf"), into: s.sub("lib")) } throws: {
            "\($0)".contains("layers.1.mlp.experts.2.down_proj") && "\($0)".contains("NaN or infinity")
        }
        #expect(!FileManager.default.fileExists(atPath: s.sub("lib")))
    }

    /// Source file names become paths when a checkpoint is assembled: a manifest naming a
    /// path (`../`, absolute), the config or index file, a name twice, or a tensor in two
    /// files is refused when the library is opened, and nothing is written anywhere.
    @Test func manifestsWhoseFileNamesArePathsOrCollideAreRefused() throws {
        let s = TemporaryDirectory()
        try ExpertLibrary.split(checkpoint: ReferenceFixtures.path("qwen2moe-tiny"), into: s.sub("lib"))
        let path = s.sub("lib/manifest.json")
        let original = try Data(contentsOf: URL(fileURLWithPath: path))
        func edited(_ change: (inout [[String: Any]]) -> Void) throws -> Data {
            var m = try #require(try JSONSerialization.jsonObject(with: original) as? [String: Any])
            var files = try #require(m["source_files"] as? [[String: Any]])
            change(&files)
            m["source_files"] = files
            return try JSONSerialization.data(withJSONObject: m)
        }
        let cases: [(String, (inout [[String: Any]]) -> Void)] = [
            ("not a plain", { $0[0]["name"] = "../../escaped.safetensors" }),
            ("not a plain", { $0[0]["name"] = "/tmp/absolute.safetensors" }),
            ("not a plain", { $0[0]["name"] = "config.json" }),
            ("not a plain", { $0[0]["name"] = "model.safetensors.index.json" }),
            ("not a plain", { $0[0]["name"] = ".safetensors" }),
            ("listed twice", { $0.append($0[0]) }),
            ("more than one source file", { var f = $0[0]; f["name"] = "other.safetensors"; f["tensors"] = [($0[0]["tensors"] as! [String])[0]]; $0.append(f) }),
        ]
        for (fragment, change) in cases {
            try edited(change).write(to: URL(fileURLWithPath: path))
            #expect { try ExpertLibrary(directory: s.sub("lib")) } throws: { "\($0)".contains(fragment) }
        }
        #expect(!FileManager.default.fileExists(atPath: s.sub("escaped.safetensors")) && !FileManager.default.fileExists(atPath: "/tmp/absolute.safetensors"))
        try original.write(to: URL(fileURLWithPath: path))
        try ExpertLibrary(directory: s.sub("lib")).assemble(into: s.sub("out"))
    }

    @Test func partialModelRoutesAmongResidentExpertsOnly() throws {
        let s = TemporaryDirectory()
        try ExpertLibrary.split(checkpoint: ReferenceFixtures.path("qwen2moe-tiny"), into: s.sub("lib"))
        let lib = try ExpertLibrary(directory: s.sub("lib"))
        let resident: Set<ExpertID> = [.init(layer: 0, expert: 0), .init(layer: 0, expert: 2), .init(layer: 0, expert: 5),
                                        .init(layer: 1, expert: 1), .init(layer: 1, expert: 4)]
        let partial = try lib.loadModel(resident: resident)
        let report = try Evaluation.run(model: partial, tokensPath: ReferenceFixtures.tokens("qwen2moe-tiny"))
        for (l, counts) in report.routerCounts.enumerated() {
            for (e, n) in counts.enumerated() where !resident.contains(ExpertID(layer: l, expert: e)) { #expect(n == 0) }
            #expect(counts.reduce(0, +) == 2 * 9 * 2)
        }
        #expect(report.loss.isFinite)
        // Everything resident is the full model.
        let full = try Evaluation.run(model: try lib.loadModel(resident: Set(lib.manifest.experts.map(\.id))), tokensPath: ReferenceFixtures.tokens("qwen2moe-tiny"))
        #expect(abs(full.loss - Double(try ReferenceFixtures.expected("qwen2moe-tiny").floats("loss")[0])) < 1e-5)
        #expect(throws: LibraryError.self) { try lib.loadModel(resident: [.init(layer: 0, expert: 0)]) }
    }
}
