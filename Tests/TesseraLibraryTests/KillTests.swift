import Foundation
import Testing
@testable import TesseraEngine
@testable import TesseraLibrary
import TesseraCore
import TesseraTestSupport
#if canImport(Glibc)
import Glibc
#endif

/// Kills `tessera split` and `tessera delta apply` with SIGKILL at named crash points —
/// after shards are stored, right before the manifest is written — and checks that the
/// library is always either untouched or complete, never half-written, and that running
/// the command again finishes the job.
@Suite(.serialized) struct KillTests {
    /// A random model (2 layers × 8 experts) written as a checkpoint.
    static func makeCheckpoint(_ dir: String) throws {
        let config = ModelConfig(family: .qwen3MoE, vocabSize: 512, hiddenSize: 64, layers: 2, heads: 4, kvHeads: 2,
                                 experts: 8, topK: 2, expertWidth: 128, normTopKProb: true)
        let model = MoEModel(config: config)
        model.initializeRandomly(seed: 3)
        try model.save(directory: dir)
    }

    /// Opens the library and verifies every shard any version refers to.
    static func checkConsistent(_ dir: String) throws -> ExpertLibrary {
        let lib = try ExpertLibrary(directory: dir)
        _ = try lib.openShard(lib.manifest.trunk, what: "trunk")
        for e in lib.manifest.experts { for v in e.versions { _ = try lib.openShard(v.hash, what: "expert \(e.id)") } }
        _ = try lib.config()
        return lib
    }

    static var haveBinary: Bool {
        guard FileManager.default.isExecutableFile(atPath: ReferenceFixtures.binary) else {
            Issue.record("tessera binary not found at \(ReferenceFixtures.binary); build it first (swift build) or set TESSERA_BIN")
            return false
        }
        return true
    }

    @Test func killedSplitLeavesNothingOrAWholeLibrary() throws {
        guard Self.haveBinary else { return }
        let s = TemporaryDirectory()
        try Self.makeCheckpoint(s.sub("ckpt"))
        for (i, point) in ["split.shard#1", "split.shard#9", "split.shard#16", "split.manifest"].enumerated() {
            let lib = s.sub("lib\(i)")
            let (outcome, stderr) = try CrashRun.run(["split", "--model", s.sub("ckpt"), "--library", lib], crashAt: point)
            #expect(outcome == .killed, "\(point): \(stderr)")
            #expect(!ExpertLibrary.isLibrary(lib), "killed at \(point) before its manifest, yet a manifest exists")
            // Splitting again finishes the job, reusing whatever shards were stored.
            let (again, _) = try CrashRun.run(["split", "--model", s.sub("ckpt"), "--library", lib])
            #expect(again == .exited(0))
            #expect(try Self.checkConsistent(lib).manifest.experts.count == 16)
        }
    }

    @Test func killedApplyLeavesTheOldOrTheNewVersion() throws {
        guard Self.haveBinary else { return }
        let s = TemporaryDirectory()
        try Self.makeCheckpoint(s.sub("ckpt"))
        try ExpertLibrary.split(checkpoint: s.sub("ckpt"), into: s.sub("lib"))
        let id = ExpertID(layer: 1, expert: 6)
        let lib = try ExpertLibrary(directory: s.sub("lib"))
        var (_, new) = try lib.expertWeights(id)
        for t in new.tensors.indices { for j in new.tensors[t].values.indices where j % 3 == 0 { new.tensors[t].values[j] += 0.01 } }
        _ = try lib.encodeDelta(id, new: new, options: DeltaOptions(encoding: .lossless), to: s.sub("d.safetensors"))
        let apply = ["delta", "apply", "--library", s.sub("lib"), "--delta", s.sub("d.safetensors")]
        for point in ["apply.shard", "library.manifest"] {
            let (outcome, stderr) = try CrashRun.run(apply, crashAt: point)
            #expect(outcome == .killed, "\(point): \(stderr)")
            #expect(try Self.checkConsistent(s.sub("lib")).manifest.entry(id)!.versions.count == 1, "killed at \(point)")
        }
        let (outcome, _) = try CrashRun.run(apply)
        #expect(outcome == .exited(0))
        let l = try Self.checkConsistent(s.sub("lib"))
        #expect(l.manifest.entry(id)!.versions.count == 2)
        #expect(try l.loadModel().parameters.count > 0)
    }
}
